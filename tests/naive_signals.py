"""Independent float64 reference for the per-token signals, written with plain loops (docs/design.md, "The math").

Shared by the signal and priority-rule tests; nothing here calls prift code.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def row_stats(z: list[float], y: int) -> dict[str, float]:
    """logp, p, mass (ties with the target count as above) and top-20 entropy of one logit row."""
    peak = max(z)
    exps = [math.exp(v - peak) for v in z]
    total = sum(exps)
    probs = [e / total for e in exps]
    logp = z[y] - peak - math.log(total)
    mass = probs[y]
    for v in range(len(z)):
        if z[v] < z[y]:  # strictly below; a tie with the target counts as above
            mass += probs[v]
    top = sorted(z, reverse=True)[: min(20, len(z))]
    top_exps = [math.exp(v - top[0]) for v in top]
    top_total = sum(top_exps)
    ent = 0.0
    for e in top_exps:
        q = e / top_total
        if q > 0:
            ent -= q * math.log(q)
    return {"logp": logp, "p": math.exp(logp), "mass": mass, "ent20": ent}


def naive_signals(logits: torch.Tensor, labels: torch.Tensor, fill: float = float("nan")) -> dict[str, np.ndarray]:
    """{name: float64 [B, T]} of the logits' exact values (bf16 upcast); `fill` where labels == -100."""
    z = logits.detach().double().numpy()
    lab = labels.numpy()
    b_, t_, _ = z.shape
    out = {k: np.full((b_, t_), fill) for k in ("logp", "p", "mass", "ent20")}
    for b in range(b_):
        for t in range(t_):
            if lab[b, t] == -100:
                continue
            for k, v in row_stats([float(x) for x in z[b, t]], int(lab[b, t])).items():
                out[k][b, t] = v
    return out


def random_batch(seed: int, b: int = 3, t: int = 7, v: int = 50, scale: float = 3.0):
    """Random logits [b, t, v] and labels [b, t] for the rule tests: ~25% masked positions (-100), ~30% of the labels
    set to their row's argmax (high p), at least one masked and one scored position."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, v, generator=gen) * scale
    labels = torch.randint(0, v, (b, t), generator=gen)
    argmax = logits.argmax(dim=-1)
    use_argmax = torch.rand(b, t, generator=gen) < 0.3
    labels = torch.where(use_argmax, argmax, labels)
    masked = torch.rand(b, t, generator=gen) < 0.25
    masked[0, 0] = True
    masked[0, 1] = False
    return logits, labels.masked_fill(masked, -100)
