"""`math_equal` is never worse than plain math-verify on math-verify's own public test cases.

The cases are the literal ``(gold, pred, expected)`` parametrizations of huggingface/Math-Verify's tests, at the
commit named in the fixture's first line (``tests/fixtures/math_verify_cases.jsonl``, made by
``tests/fixtures/collect_parametrize.py``; see ``tests/fixtures/README.md``). Two rules, both against the
reference run live here:

1. wherever ``verify(parse(gold), parse(pred))`` (math-verify's defaults) is True, ``math_equal`` is True, except
   on the pairs in ``DELIBERATE`` (a True of math-verify that is mathematically wrong), which must stay exactly those;
2. wherever math-verify's test expects False, ``math_equal`` is False, except on the cases where plain math-verify
   itself says True (its test ran a narrower extraction config there); rule 1 governs those.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from math_verify import parse, verify

from prift.rewards.math import check_many
from prift.rewards.math_workers import VerifierPool

FIXTURE = Path(__file__).parent / "fixtures" / "math_verify_cases.jsonl"
# math-verify fails on \mathrm{e}, keeps "1" of each side and calls 1 - 1/e equal to 1 + 1/e; prift reads the gold
# whole (boxed), never by its last number, because that same raw reading grades "0" correct against the MATH-500
# gold "5x - 7y + 11z + 4 = 0" (tests/test_eval_benchmarks_cpu.py, always-zero model).
DELIBERATE = {("$1 - \\frac{1}{\\mathrm{e}}$", "$1 + \\frac{1}{\\mathrm{e}}$")}


def _cases() -> tuple[dict, list[dict]]:
    header, *rows = (json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines())
    return header["source"], rows


@pytest.fixture(scope="module")
def verdicts():
    """Per case: (row, expected, plain math-verify's verdict, prift's verdict)."""
    _, rows = _cases()
    golds = [r["case"]["gold"] for r in rows]
    preds = [r["case"]["pred"] for r in rows]
    expected = [bool(r["case"].get("expected", r["case"].get("result"))) for r in rows]
    reference = [bool(verify(parse(g), parse(p))) for g, p in zip(golds, preds, strict=True)]
    pool = VerifierPool(workers=2, timeout_s=30.0)
    try:
        ours = [v.equal for v in check_many(golds, preds, pool=pool)]
    finally:
        pool.close()
    return list(zip(rows, expected, reference, ours, strict=True))


def test_fixture_names_its_source_and_holds_the_cases():
    source, rows = _cases()
    assert source["repo"] == "https://github.com/huggingface/Math-Verify" and len(source["commit"]) == 40
    assert len(rows) >= 250 and all({"gold", "pred"} <= r["case"].keys() for r in rows)


def _show(row: dict) -> str:
    return f"{row['file']}::{row['test']} gold={row['case']['gold']!r:.60} pred={row['case']['pred']!r:.60}"


def test_true_wherever_plain_math_verify_is_true(verdicts):
    losses = {(row["case"]["gold"], row["case"]["pred"]) for row, _, reference, ours in verdicts if reference and not ours}
    assert losses == DELIBERATE


def test_false_wherever_math_verify_tests_expect_false(verdicts):
    wrong = [_show(row) for row, expected, reference, ours in verdicts if not expected and not reference and ours]
    assert wrong == []


def test_reference_and_its_own_tests_disagree_only_on_narrow_configs(verdicts):
    """The exemption of rule 2 covers only cases whose math-verify test used a narrower extraction (latex-only or
    expr-only ``match_types``)."""
    conflicts = [row for row, expected, reference, _ in verdicts if not expected and reference]
    assert {row["test"] for row in conflicts} <= {"test_latex_notation", "test_number_extraction",
                                                  "test_latex_notation_math", "test_relations_math",
                                                  "test_matrix_extraction"}
