"""pass@k / avg@k / maj@k / stderr against values computed by hand (and pass@k against the binomial formula); maj@k
over math-verify equivalence classes against a naive vote by true value."""

from __future__ import annotations

import math
import random
from fractions import Fraction

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
from prift.rewards.math import vote_keys


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


# maj@k over math-verify equivalence classes: checked against a naive vote that groups samples by their true value
# (each answer string below is written for a known exact value), so it does not share the verifier or its rule.
SPELLINGS = {
    Fraction(1, 2): ["\\frac12", "\\dfrac{1}{2}", "0.5", "1/2"],
    Fraction(3): ["3", "3.0", "\\boxed{3}"],
    Fraction(2, 3): ["\\frac{2}{3}", "\\tfrac23"],
    Fraction(-1): ["-1", "-1.00"],
}


def naive_majority(values: list[Fraction | None], gold: Fraction) -> float:
    """Sample i's vote count is how many samples have its value; the first sample with the most votes wins."""
    counts = [sum(v == w for v in values) if w is not None else 0 for w in values]
    if not any(counts):
        return 0.0
    return float(values[counts.index(max(counts))] == gold)


@pytest.fixture(scope="module")
def pool():
    from prift.rewards.math_workers import VerifierPool

    pool = VerifierPool(workers=2, timeout_s=20.0)
    yield pool
    pool.close()


def test_majority_counts_equivalent_spellings_as_one_vote(pool):
    answers = ["3", "\\frac12", "3", "0.5", "\\dfrac{1}{2}", None]
    correct = [False, True, False, True, True, False]
    assert maj_at_k(answers, correct) == 0.0  # as strings "3" wins 2 to 1
    votes = vote_keys([answers], pool=pool)[0]
    assert votes == ["3", "\\frac12", "3", "\\frac12", "\\frac12", None]
    assert maj_at_k(votes, correct) == 1.0


def test_majority_over_classes_matches_naive_vote_on_random_samples(pool):
    rng = random.Random(18)
    values = list(SPELLINGS)
    problems = []
    for _ in range(24):  # with seed 18, a vote over raw strings gets 4 of these 24 problems wrong
        gold = rng.choice(values)
        picked = [rng.choice([*values[: rng.randint(1, 4)], None]) for _ in range(8)]
        problems.append((gold, picked, [None if v is None else rng.choice(SPELLINGS[v]) for v in picked]))
    votes = vote_keys([texts for _, _, texts in problems], pool=pool)
    for (gold, picked, texts), vote in zip(problems, votes, strict=True):
        correct = [v == gold for v in picked]
        assert maj_at_k(vote, correct) == naive_majority(picked, gold), (texts, vote, gold)


def test_majority_votes_are_letters_for_choice_benchmarks():
    from prift.eval.benchmarks import get_benchmark
    from prift.eval.grading import majority_votes

    assert majority_votes(get_benchmark("medqa"), [["A", None, "B"]]) == [["A", None, "B"]]
