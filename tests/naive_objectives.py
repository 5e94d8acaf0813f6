"""Independent float64 full-vocabulary references for the top-k objectives (docs/design.md, "Reference-guided
objectives on the top-k cache"). Written from the formulas with plain numpy and loops; nothing here calls prift code.
"""

from __future__ import annotations

import math

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q, strict=True) if pi > 0))


def gift_soft_ce(ref_logits: np.ndarray, online_logits: np.ndarray, y: int, beta: float) -> float:
    """-sum_v T_v log p(v), T = softmax(log p_ref + beta * 1[v = y]) over the whole vocabulary."""
    target = np.log(softmax(ref_logits))
    target[y] += beta
    t = softmax(target)
    logp = np.log(softmax(online_logits))
    return float(-(t * logp).sum())


def top_fraction(scores: list[float], ratio: float) -> set[int]:
    """Indices of the ceil(ratio * n) largest scores."""
    keep = math.ceil(ratio * len(scores))
    return set(sorted(range(len(scores)), key=lambda i: -scores[i])[:keep])


def pear_row(log_ratio: list[float], segments: list[int], level: str, gamma: float, clip: float,
             block: int) -> list[float]:
    """PEAR weights of one row by loops: per position, the clipped exp of its sequence's / suffix's log-ratio."""
    n = len(log_ratio)
    out = []
    for t in range(n):
        same = [s for s in range(n) if segments[s] == segments[t]]
        if level == "sequence":
            g = sum(log_ratio[s] for s in same)
        else:
            start = min(same)
            anchor = t if level == "token" else min(start + ((t - start) // block + 1) * block - 1, n - 1)
            if segments[anchor] != segments[t]:
                g = 0.0
            else:
                g = sum(gamma ** (s - anchor - 1) * log_ratio[s] for s in same if s > anchor)
        out.append(math.exp(min(max(g, -clip), clip)))
    return out
