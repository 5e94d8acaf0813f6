"""pass@k / avg@k / maj@k / stderr against values computed by hand (and pass@k against the binomial formula)."""

from __future__ import annotations

import math

import pytest

from prift.eval.metrics import (
    ProblemSamples,
    avg_at_k,
    default_ks,
    maj_at_k,
    mean_stderr,
    pass_at_k,
    summarize,
    summarize_subsets,
)


def test_pass_at_k_hand_values():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 6, 5) == 1.0  # n - c < k
    assert pass_at_k(16, 16, 16) == 1.0


def test_pass_at_k_matches_binomial_and_is_stable_for_large_n():
    for n, c, k in [(16, 3, 4), (20, 7, 10), (50, 1, 25), (100, 37, 64)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), rel=1e-12)
    value = pass_at_k(2000, 3, 1000)  # comb() of these sizes overflows floats; the product form does not
    assert value == pytest.approx(1 - (1000 * 999 * 998) / (2000 * 1999 * 1998), rel=1e-9)


@pytest.mark.parametrize("n,c,k", [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_avg_and_majority_hand_values():
    assert avg_at_k([True, False, False, True]) == 0.5
    # "7" wins 2 votes to 1; it was graded correct
    assert maj_at_k(["7", "3", "7", None], [True, False, True, False]) == 1.0
    # "3" wins although the single correct sample said "7"
    assert maj_at_k(["3", "7", "3"], [False, True, False]) == 0.0
    # tie: the answer seen first wins
    assert maj_at_k(["5", "9"], [False, True]) == 0.0
    assert maj_at_k(["9", "5"], [True, False]) == 1.0
    assert maj_at_k([None, " "], [False, False]) == 0.0


def test_stderr_hand_value():
    mean, stderr = mean_stderr([1.0, 0.0, 0.0, 1.0])
    assert mean == 0.5
    assert stderr == pytest.approx(math.sqrt((4 * 0.25 / 3) / 4))  # sample var 1/3, over N = 4
    assert mean_stderr([0.3])[1] is None


def test_summarize_over_problems():
    problems = [
        ProblemSamples("a", ["correct", "wrong", "timeout", "correct"], ["1", "2", None, "1"], subset="x"),
        ProblemSamples("b", ["wrong", "wrong", "error", "memory"], ["4", "4", None, None], subset="y"),
    ]
    out = summarize(problems, 4)
    metrics = out["metrics"]
    assert default_ks(4) == [1, 2, 4]
    assert metrics["avg@4"]["value"] == pytest.approx((0.5 + 0.0) / 2)
    assert metrics["pass@1"]["value"] == pytest.approx(0.25)
    assert metrics["pass@2"]["value"] == pytest.approx((1 - 1 / 6 + 0.0) / 2)  # a: 1 - C(2,2)/C(4,2)
    assert metrics["pass@4"]["value"] == pytest.approx(0.5)
    assert metrics["maj@4"]["value"] == pytest.approx(0.5)
    assert metrics["avg@4"]["stderr"] == pytest.approx(math.sqrt(0.125 / 2))  # scores 0.5, 0: var 0.125
    assert out["counts"] == {"correct": 2, "wrong": 3, "timeout": 1, "memory": 1, "error": 1}
    subsets = summarize_subsets(problems, 4)
    assert subsets["macro_average"]["avg@4"] == pytest.approx(0.25)
    assert subsets["subsets"]["x"]["metrics"]["pass@4"]["value"] == 1.0
    with pytest.raises(ValueError):
        summarize([ProblemSamples("c", ["correct"], ["1"])], 2)
