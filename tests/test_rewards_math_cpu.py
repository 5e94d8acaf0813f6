"""Math verifier: equal / not-equal table, extraction, fast path, timeouts, threads, bad input."""

from __future__ import annotations

import os
import signal
import threading
import time
from fractions import Fraction

import pytest

from prift.rewards.answers import decimal_comma, extract_answer, parse_number
from prift.rewards.math import check_many, grade, grade_many, grade_numeric, math_equal
from prift.rewards.math_workers import VerifierPool

EQUAL = [
    ("85", "85"),
    ("42", "42.0"),
    ("1000", "1,000"),
    ("18", "$18"),
    ("18", "\\$18.00"),
    ("7", "7."),
    ("\\frac{1}{2}", "0.5"),
    ("\\frac{1}{2}", "$\\frac12$"),
    ("\\dfrac{3}{4}", "0.75"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\{1,2,3\\}", "\\{3,2,1\\}"),
    ("(1,2]", "(1, 2]"),
    ("[-1, \\infty)", "[-1,\\infty)"),
    ("10\\%", "10"),
    ("10\\%", "0.1"),
    ("\\boxed{5}", "5"),
    ("5\\text{ cm}", "5"),
    ("x^2+2x+1", "(x+1)^2"),
    ("\\pi", "\\pi"),
    ("0.111", "0,111"),  # a decimal comma after a leading 0 (math-verify's reading), not 111
    ("1000.99", "1000,99"),
    ("1,22", "1.22"),
    ("9", "Answer $$ 9 $$"),  # display math inside a sentence: plain math-verify finds it
]

NOT_EQUAL = [
    ("85", "58"),
    ("42", "42.5"),
    ("1000", "100"),
    ("\\frac{1}{2}", "\\frac{1}{3}"),
    ("\\{1,2\\}", "\\{1,3\\}"),
    ("(1,2]", "[1,2]"),
    ("(1,2)", "(1,2]"),
    ("2\\sqrt{2}", "\\sqrt{2}"),
    ("10\\%", "20"),
    ("x^2", "x^3"),
    ("3", ""),
    ("-3", "3"),
    ("111", "0,111"),
    ("5x - 7y + 11z + 4 = 0", "0"),  # the gold is read whole, not by its last number
    ("1,22", "1.23"),
]


@pytest.fixture(scope="module")
def pool():
    pool = VerifierPool(workers=2, timeout_s=10.0)
    pool.warm_up()
    yield pool
    pool.close()


def test_equal_table(pool):
    golds, preds = zip(*EQUAL, strict=True)
    verdicts = check_many(golds, preds, pool=pool)
    assert [pair for pair, v in zip(EQUAL, verdicts, strict=True) if not v.equal] == []


def test_not_equal_table(pool):
    golds, preds = zip(*NOT_EQUAL, strict=True)
    verdicts = check_many(golds, preds, pool=pool)
    assert [pair for pair, v in zip(NOT_EQUAL, verdicts, strict=True) if v.equal] == []


def test_math_equal_contract_on_simple_pairs():
    assert math_equal("\\frac{1}{2}", "0.5") is True
    assert math_equal("\\frac{1}{2}", "0.6") is False


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        ("47 + 38 = 85, so the answer is \\boxed{85}.", "85"),
        ("first \\boxed{1} then \\boxed{\\frac{2}{3}} done", "\\frac{2}{3}"),
        ("nested \\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}"),
        ("so \\boxed 7 is it", "7"),
        ("She pays 3 * 6 = 18 dollars.\n#### 18", "18"),
        ("Thus the answer is 3.5.", "3.5"),
        ("The answer is $\\frac{1}{2}$.\nDone", "$\\frac{1}{2}$"),
        ("Answer: 12", "12"),
        ("I had 3 apples and bought 1,250 more", "1,250"),
        ("no digits here", None),
        ("unbalanced \\boxed{12", "12"),
    ],
)
def test_extract_answer(completion, answer):
    assert extract_answer(completion) == answer


def test_demo_task_grades_true_through_fast_path():
    start = time.perf_counter()
    assert grade("... so the answer is \\boxed{85}.", "85") is True
    assert grade("... so the answer is \\boxed{86}.", "85") is False
    assert time.perf_counter() - start < 0.05  # no worker process involved


def test_parse_number_reads_gsm8k_forms_exactly():
    assert parse_number("1,234.50").value * 2 == 2469
    assert parse_number("\\$5").value == 5
    assert parse_number("12%").percent
    assert parse_number("1,2") is None  # a tuple, not a number
    assert parse_number("0,111") is None  # math-verify reads a decimal comma here
    assert decimal_comma("0,111") == Fraction(111, 1000) and decimal_comma("1,234") is None
    assert parse_number("\\frac{1}{2}") is None


def test_grade_numeric_is_numbers_only():
    assert grade_numeric("Total: 3 + 4 = 7\n#### 7", "7")
    assert grade_numeric("#### 1,000", 1000)
    assert not grade_numeric("\\boxed{\\frac{14}{2}}", "7")  # not a plain number: the fast path declines


def test_adversarial_expression_returns_within_timeout(pool):
    start = time.perf_counter()
    verdicts = check_many(["9^{9^{9^{9}}}", "1"], ["1", "9^{9^{9^{9}}}"], pool=pool, timeout_s=2.0)
    assert time.perf_counter() - start < 2 * 2.0 + 2.0
    assert [v.equal for v in verdicts] == [False, False]
    assert all(v.timed_out for v in verdicts)


def test_hard_timeout_kills_and_replaces_a_stuck_worker():
    pool = VerifierPool(workers=1, timeout_s=5.0)
    try:
        pool.warm_up()
        first = pool._idle.queue[0].proc.pid
        os.kill(first, signal.SIGSTOP)  # a worker that never answers (as when stuck inside one C call)
        start = time.perf_counter()
        stuck = pool.verify("\\frac{1}{2}", "0.5", timeout_s=0.5)
        assert time.perf_counter() - start < 3.0
        assert stuck.timed_out and not stuck.equal
        assert pool.timeouts == 1
        assert pool.verify("\\frac{1}{2}", "0.5").equal  # a fresh worker answers
        assert pool._idle.queue[0].proc.pid != first
    finally:
        pool.close()


def test_calling_from_threads(pool):
    results: dict[int, bool] = {}

    def work(i: int) -> None:
        results[i] = check_many([f"\\frac{{{i}}}{{2}}"], [str(i / 2)], pool=pool)[0].equal

    threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {1: True, 2: True, 3: True, 4: True}


@pytest.mark.parametrize("bad", [None, 3.5j, ["1"], "", "\\frac{", "}}}{{{", "\x00" * 10, "\\boxed{" * 200])
def test_bad_input_never_raises(bad, pool):
    assert check_many(["1"], [bad], pool=pool)[0].equal is False
    assert check_many([bad], ["1"], pool=pool)[0].equal is False


def test_one_bad_completion_only_fails_its_row(pool):
    verdicts = grade_many(["\\boxed{4}", None, "\\boxed{\\frac{", "answer is 6"], ["4", "5", "1", "6"], pool=pool)
    assert [v.equal for v in verdicts] == [True, False, False, True]
