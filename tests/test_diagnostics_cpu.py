"""The diagnostics' correlations against a naive float implementation: Spearman counts ties as ties (average ranks),
so its value does not depend on the order of the tokens."""

from __future__ import annotations

import math
import random

import pytest

from prift.recipes.diagnostics import correlation


def _pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def _average_ranks(values: list[float]) -> list[float]:
    """Rank of v = (number of values below v) + (number equal to v - 1) / 2, straight from the definition."""
    return [sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]


def _spearman(x: list[float], y: list[float]) -> float:
    return _pearson(_average_ranks(x), _average_ranks(y))


@pytest.mark.parametrize("seed", range(5))
def test_spearman_with_ties_is_the_naive_one_and_ignores_token_order(seed):
    rng = random.Random(seed)
    # near-deterministic tokens tie at p = 1.0, as they do in float32 for a confident model
    x = [rng.choice([1.0, 1.0, 0.5, rng.random()]) for _ in range(40)]
    y = [rng.choice([0.0, 0.0, rng.random()]) for _ in range(40)]
    got = correlation(x, y)
    assert got["spearman"] == pytest.approx(_spearman(x, y), abs=1e-5)
    assert got["pearson"] == pytest.approx(_pearson(x, y), abs=1e-5)
    order = list(range(40))
    for _ in range(3):
        rng.shuffle(order)
        assert correlation([x[i] for i in order], [y[i] for i in order]) == got


def test_spearman_of_a_monotone_map_is_one_even_with_ties():
    x = [0.1, 0.5, 0.5, 0.9, 0.9, 0.9, 0.2]
    assert correlation(x, [v ** 3 for v in x])["spearman"] == pytest.approx(1.0)
