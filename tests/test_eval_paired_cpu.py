"""Paired bootstrap intervals (``prift.eval.paired``): the vectorised resampling against a plain loop over the same
draws, the two levels (problems and seeds), coverage of a known effect in simulation, and the report's wording."""

from __future__ import annotations

import numpy as np
import pytest

from prift.eval.paired import paired_bootstrap


def _naive(a, b, resamples, level, seed):
    """The definition, one draw at a time: the same generator calls, then loops over the resampled grid."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    problems, seeds = diff.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, problems, size=(resamples, problems))
    cols = rng.integers(0, seeds, size=(resamples, seeds))
    means = []
    for r in range(resamples):
        total = 0.0
        for i in rows[r]:
            for s in cols[r]:
                total += diff[i, s]
        means.append(total / (problems * seeds))
    tail = (1 - level) / 2
    return float(diff.mean()), *np.quantile(means, [tail, 1 - tail])


@pytest.mark.parametrize("seeds", [1, 3])
def test_the_interval_is_the_plain_loop_s_on_the_same_draws(seeds):
    rng = np.random.default_rng(7)
    a = rng.integers(0, 5, size=(40, seeds)) / 4  # avg@4 scores
    b = np.clip(a - rng.integers(-1, 2, size=(40, seeds)) / 4, 0, 1)
    got = paired_bootstrap(a, b, resamples=300, level=0.9, seed=11)
    mean, low, high = _naive(a, b, 300, 0.9, 11)
    assert (got.mean, got.low, got.high) == pytest.approx((mean, low, high), abs=1e-12)
    assert (got.problems, got.seeds) == (40, seeds)


def test_a_known_effect_is_covered_at_the_nominal_rate():
    """200 simulated comparisons of 120 paired 0/1 problems with a true difference of 0.1: the 90% interval
    covers 0.1 in about 90% of them (binomial sd ~2%), and pairing resolves it most of the time."""
    rng = np.random.default_rng(0)
    covered = resolved = 0
    for trial in range(200):
        difficulty = rng.uniform(0, 1, size=(120, 1))
        b = (rng.uniform(size=(120, 1)) < difficulty * 0.6).astype(float)
        gain = (rng.uniform(size=(120, 1)) < 0.1 / np.maximum(1e-9, 1 - difficulty * 0.6)) & (b == 0)
        a = np.maximum(b, gain.astype(float))
        true = float(np.mean(np.minimum(1, 0.1 / np.maximum(1e-9, 1 - difficulty * 0.6)) * (1 - difficulty * 0.6)))
        got = paired_bootstrap(a, b, resamples=400, level=0.9, seed=trial)
        covered += got.low <= true <= got.high
        resolved += got.resolved
    assert 0.84 <= covered / 200 <= 0.96
    assert resolved / 200 > 0.5


def test_the_report_sentence_says_whether_it_is_resolved():
    same = paired_bootstrap([[1], [0], [1], [0]], [[1], [0], [1], [0]], resamples=50)
    assert same.mean == 0 and not same.resolved and "not resolved" in same.describe("a", "b")
    better = paired_bootstrap([[1]] * 30, [[0]] * 30, resamples=50)
    assert better.resolved and better.describe("prift_mass", "nll").startswith("prift_mass beats nll by 100.0 points")
    with pytest.raises(ValueError, match=r"\[problems\]\[seeds\]"):
        paired_bootstrap([1, 2], [1, 2])
