"""Reference solutions of real benchmarks graded through the sandbox (data from ``$PRIFT_DATA_DIR``).

Expectations are independent of the grader: canonical/reference solutions must pass, and an empty or
deliberately wrong program must fail.
"""

from __future__ import annotations

import base64
import gzip
import json
import pickle
import zlib

import pytest

from prift.core.paths import data_root
from prift.rewards.code import TestSpec, humaneval_tests, parse_tests
from prift.rewards.sandbox import SandboxConfig, run_many

DATA = data_root()
needs_data = pytest.mark.skipif(DATA is None, reason="benchmark data dir ($PRIFT_DATA_DIR or ../shared/data) absent")
CONFIG = SandboxConfig(timeout_s=20.0, workers=2)

# Independent solutions of the 8 LiveCodeBench sample problems (AtCoder, stdin/stdout), written for this test.
LCB_SOLUTIONS = {
    "abc398_a": "n = int(input())\nk = 2 - n % 2\nside = (n - k) // 2\nprint('-' * side + '=' * k + '-' * side)",
    "abc389_b": "x = int(input())\nn, f = 1, 1\nwhile f < x:\n    n += 1\n    f *= n\nprint(n)",
    "abc391_a": "print(input().translate(str.maketrans('NESW', 'SWNE')))",
    "abc400_a": "a = int(input())\nprint(400 // a if 400 % a == 0 else -1)",
    "abc392_a": (
        "import itertools\na = list(map(int, input().split()))\n"
        "print('Yes' if any(p[0] * p[1] == p[2] for p in itertools.permutations(a)) else 'No')"
    ),
    "abc387_a": "import sys\na, b = map(int, sys.stdin.read().split())\nsys.stdout.write(str((a + b) ** 2) + '\\n')",
    "abc400_b": (
        "n, m = map(int, input().split())\nx = sum(n**i for i in range(m + 1))\nprint(x if x <= 10**9 else 'inf')"
    ),
    "abc393_a": "s = input().split()\nprint({('sick','sick'): 1, ('sick','fine'): 2, ('fine','sick'): 3}.get(tuple(s), 4))",
}


def _lcb_rows() -> list[dict]:
    with open(DATA / "livecodebench" / "release_v6-easy8.jsonl") as f:
        return [json.loads(line) for line in f]


def _lcb_cases(row: dict) -> list[dict]:
    """Public plus private cases; the private ones are base64(zlib(pickle(json string))), as LiveCodeBench ships."""
    private = json.loads(pickle.loads(zlib.decompress(base64.b64decode(row["private_test_cases"]))))
    return json.loads(row["public_test_cases"]) + private


@needs_data
def test_humaneval_canonical_solutions_pass_and_empty_bodies_fail():
    with gzip.open(DATA / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        problems = [json.loads(line) for line in f]
    specs = [humaneval_tests(p["test"], p["entry_point"]) for p in problems]
    canonical = run_many([p["prompt"] + p["canonical_solution"] for p in problems], specs, CONFIG)
    assert len(canonical) == 164
    assert [(p["task_id"], r.status, r.detail) for p, r in zip(problems, canonical, strict=True) if not r.ok] == []
    empty = run_many([p["prompt"] for p in problems], specs, CONFIG)  # docstring only: returns None
    assert [p["task_id"] for p, r in zip(problems, empty, strict=True) if r.status != "failed"] == []


@needs_data
def test_mbpp_test_split_reference_solutions_pass():
    with open(DATA / "mbpp" / "mbpp.jsonl") as f:
        rows = [row for row in map(json.loads, f) if 11 <= row["task_id"] <= 510]
    assert len(rows) == 500
    specs = [TestSpec("assert", row["test_setup_code"] + "\n" + "\n".join(row["test_list"])) for row in rows]
    results = run_many([row["code"] for row in rows], specs, CONFIG)
    assert [(row["task_id"], r.status, r.detail) for row, r in zip(rows, results, strict=True) if not r.ok] == []
    # the same tests reject another task's solution
    shifted = run_many([row["code"] for row in rows[1:] + rows[:1]], specs, CONFIG)
    assert sum(r.ok for r in shifted) == 0


@needs_data
def test_livecodebench_sample_reference_behaviour():
    rows = _lcb_rows()
    assert sorted(row["question_id"] for row in rows) == sorted(LCB_SOLUTIONS)
    specs = [parse_tests(json.dumps(_lcb_cases(row))) for row in rows]
    assert sum(len(spec.tests) for spec in specs) == 341
    programs = [LCB_SOLUTIONS[row["question_id"]] for row in rows]
    results = run_many(programs, specs, CONFIG, stop_on_failure=False)
    assert [(row["question_id"], r.detail) for row, r in zip(rows, results, strict=True) if not r.ok] == []
    assert [r.passed for r in results] == [len(spec.tests) for spec in specs]
    # printing the first sample's answer for every input passes some cases but not all
    constant = [f"print({json.dumps(spec.tests[0]['output'])})" for spec in specs]
    wrong = run_many(constant, specs, CONFIG, stop_on_failure=False)
    assert all(r.status == "failed" and 0 < r.passed < r.total for r in wrong)
