"""Paired bootstrap intervals for the difference between two inits scored on the same problems (and seeds).

``a[i][s]`` and ``b[i][s]`` are the per-problem scores (e.g. avg@k) of two inits on problem i under seed s. The
statistic is the mean paired difference ``mean_{i,s} (a[i][s] - b[i][s])``. Each of ``resamples`` bootstrap draws
takes problems with replacement and, independently, seeds with replacement (two-level: problems and training runs
both vary), and the interval is the percentile interval of the resampled means (``level``, default 95%). Pairing
keeps each problem's (and seed's) difficulty on both sides, which is what makes a few points resolvable on a few
hundred problems. A difference is *resolved* when its interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedDifference:
    mean: float  # mean paired difference a - b
    low: float
    high: float
    level: float
    problems: int
    seeds: int

    @property
    def resolved(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0

    def describe(self, a: str, b: str, unit: str = "points", scale: float = 100.0) -> str:
        """One sentence a reader can act on, e.g. 'a beats b by 6.3 points (95% CI 2.1 to 10.4): resolved'."""
        mean, low, high = self.mean * scale, self.low * scale, self.high * scale
        ci = f"{self.level:.0%} CI {low:+.1f} to {high:+.1f}"
        if not self.resolved:
            return f"{a} vs {b}: {mean:+.1f} {unit} ({ci}): not resolved, the interval includes 0"
        verb = "beats" if mean > 0 else "trails"
        return f"{a} {verb} {b} by {abs(mean):.1f} {unit} ({ci}): resolved"


def paired_bootstrap(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], *, resamples: int = 2000,
                     level: float = 0.95, seed: int = 0) -> PairedDifference:
    """The mean paired difference a - b and its two-level (problems, seeds) percentile bootstrap interval."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.ndim != 2 or diff.size == 0:
        raise ValueError(f"paired scores must be [problems][seeds] with the same shape on both sides, got {diff.shape}")
    problems, seeds = diff.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, problems, size=(resamples, problems))
    cols = rng.integers(0, seeds, size=(resamples, seeds))
    # mean over the resampled problems x seeds grid = mean over rows of (mean over the resampled seeds of each row)
    by_seed = diff[:, cols].mean(axis=2)  # [problems, resamples]: each problem's mean over that draw's seeds
    means = np.take_along_axis(by_seed.T, rows, axis=1).mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return PairedDifference(float(diff.mean()), float(low), float(high), level, problems, seeds)
