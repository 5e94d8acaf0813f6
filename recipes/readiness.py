"""RL-readiness predictors of SFT inits and how well each one ranks the realised RL gain.

Per SFT init and seed, from the readiness eval (k samples per held-out problem, `eval/ready-<v>`):

- pass@k curve: mean over problems of the unbiased pass@j = 1 - C(n - c, j) / C(n, j) (n samples, c correct),
  j = 1..k;
- coverage: the fraction of problems solved at least once among the k samples (= pass@k with n = k);
- sample entropy: mean over problems of H = -sum_a f_a log f_a (nats), f_a the fraction of the problem's samples
  whose extracted answer is a (no answer counts as one more answer): how spread the init's answers are;

and from the diagnostics stage (teacher-forced held-out rows, see `prift.recipes.diagnostics`): held-out NLL,
KL to the base model and the online-vs-reference Pearson r.

Each predictor x is compared with the RL gain y over all (init, seed) points by Spearman's rho (Pearson correlation
of average ranks); its interval is the percentile bootstrap over resampled points (draws where either side is
constant have no rank correlation and are skipped).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from prift.eval.metrics import pass_at_k

# predictor -> the diagnostics.json checkpoint field it reads
DIAGNOSTIC_PREDICTORS = {"held-out NLL": "nll", "KL to base": "kl_to_base", "online-vs-reference r": "pearson"}


def pass_at_k_curve(correct: list[list[bool]], k: int) -> list[float]:
    """Mean over problems of pass@j for j = 1..k; every problem needs at least k samples."""
    if any(len(c) < k for c in correct):
        raise ValueError(f"pass@{k} needs at least {k} samples per problem")
    return [sum(pass_at_k(len(c), sum(c), j) for c in correct) / len(correct) for j in range(1, k + 1)]


def coverage(correct: list[list[bool]]) -> float:
    """The fraction of problems with at least one correct sample."""
    return sum(any(c) for c in correct) / len(correct)


def answer_entropy(answers: list[list[str | None]]) -> float:
    """Mean over problems of the entropy (nats) of the empirical distribution of the samples' answers."""
    total = 0.0
    for samples in answers:
        counts = Counter(samples).values()
        total -= sum(c / len(samples) * math.log(c / len(samples)) for c in counts)
    return total / len(answers)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share the mean of the ranks they span)."""
    order = values.argsort(axis=-1, kind="stable")
    ranks = np.empty_like(values, dtype=np.float64)
    np.put_along_axis(ranks, order, np.arange(values.shape[-1], dtype=np.float64)[None].repeat(len(values), 0), -1)
    for row, vals in zip(ranks, values, strict=True):  # ties: average the ranks of equal values
        for v in np.unique(vals):
            tied = vals == v
            row[tied] = row[tied].mean()
    return ranks


def spearman(x, y) -> float:
    """Spearman's rho of paired values (nan when either side is constant)."""
    return float(_spearman_rows(np.asarray([x], dtype=np.float64), np.asarray([y], dtype=np.float64))[0])


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    rx, ry = _ranks(x), _ranks(y)
    rx -= rx.mean(-1, keepdims=True)
    ry -= ry.mean(-1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry).sum(-1) / denom, np.nan)


def spearman_interval(x, y, *, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of Spearman's rho over resampled (x, y) points (nan, nan if no draw has one)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    draws = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    rho = _spearman_rows(x[draws], y[draws])
    rho = rho[~np.isnan(rho)]
    if not len(rho):
        return math.nan, math.nan
    tail = (1 - level) / 2
    low, high = np.quantile(rho, [tail, 1 - tail])
    return float(low), float(high)


def eval_predictors(correct: list[list[bool]], answers: list[list[str | None]], k: int) -> dict[str, float]:
    """The readiness eval's predictors of one init and seed (pass@1, pass@k, coverage, sample entropy)."""
    curve = pass_at_k_curve(correct, k)
    return {"pass@1": curve[0], f"pass@{k}": curve[-1], "coverage": coverage(correct),
            "sample entropy": answer_entropy(answers)}
