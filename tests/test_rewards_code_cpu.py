"""Code answers: program extraction, test formats, and how stdio / functional cases are judged."""

from __future__ import annotations

import json

import pytest

from prift.rewards.code import TestSpec, extract_code, functional_tests, parse_tests, stdio_tests
from prift.rewards.sandbox import SandboxConfig, run_many, run_tests

CONFIG = SandboxConfig(timeout_s=5.0, workers=2)


@pytest.mark.parametrize(
    ("completion", "code"),
    [
        ("text\n```python\na = 1\n```\nmore\n```python\nb = 2\n```\nbye", "b = 2\n"),
        ("```py\nx = 1\n```", "x = 1\n"),
        ("```\nuntagged = 1\n```", "untagged = 1\n"),
        ("```python\na = 1\n```\n```bash\nls\n```", "a = 1\n"),
        ("```python\ntruncated = [1,\n", "truncated = [1,\n"),
        ("def plain():\n    return 1\n", "def plain():\n    return 1\n"),
    ],
)
def test_extract_code(completion, code):
    assert extract_code(completion) == code


def test_parse_tests_recognises_every_format():
    assert parse_tests("assert f(1) == 2").kind == "assert"
    assert parse_tests(json.dumps("assert True")).kind == "assert"
    assert parse_tests([{"input": "1\n", "output": "2\n"}]).kind == "stdio"
    assert parse_tests(json.dumps({"inputs": ["1"], "outputs": ["2"]})).kind == "stdio"
    assert parse_tests({"inputs": ["1"], "outputs": ["2"], "fn_name": "f"}).kind == "functional"
    with pytest.raises(ValueError):
        parse_tests(42)
    with pytest.raises(ValueError):
        TestSpec("stdio", "not a list")


def test_stdio_cases_compare_stripped_lines_and_floats():
    program = "import sys\nn = int(sys.stdin.readline())\nprint(n * 2, '  ')\nprint(1 / 3)\n"
    specs = [
        stdio_tests(["4\n"], ["8\n0.333333333\n"]),  # trailing spaces and float precision differ
        stdio_tests(["4\n"], ["8\n0.34\n"]),  # float outside 1e-6
        stdio_tests(["4\n"], ["9\n0.3333333333333333\n"]),
        stdio_tests(["4\n"], ["8\n0.3333333333333333\nextra\n"]),
    ]
    assert [r.status for r in run_many([program] * 4, specs, CONFIG)] == ["passed", "failed", "failed", "failed"]


def test_stdio_counts_cases_and_accepts_exit_zero():
    program = "import sys\nx = int(input())\nprint(x if x != 3 else -1)\nsys.exit(0)\n"
    spec = stdio_tests([str(i) for i in range(5)], [str(i) for i in range(5)])
    result = run_many([program], [spec], CONFIG, stop_on_failure=False)[0]
    assert (result.status, result.passed, result.total) == ("failed", 4, 5)


def test_functional_cases_call_solution_methods():
    program = (
        "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
        "        for i, n in enumerate(nums):\n            if target - n in seen:\n"
        "                return [seen[target - n], i]\n            seen[n] = i\n"
    )
    inputs = ["[2, 7, 11, 15]\n9", "[3, 2, 4]\n6"]
    good = functional_tests("twoSum", inputs, ["[0, 1]", "[1, 2]"])
    bad = functional_tests("twoSum", inputs, ["[0, 1]", "[0, 2]"])
    assert [r.status for r in run_many([program, program], [good, bad], CONFIG)] == ["passed", "failed"]


def test_functional_rejects_lookalike_objects():
    program = "class Any:\n    def __eq__(self, other):\n        return True\ndef f():\n    return Any()\n"
    spec = functional_tests("f", [""], ["[1, 2]"])
    assert run_many([program], [spec], CONFIG)[0].status == "failed"


@pytest.mark.parametrize(
    ("program", "tests", "status"),
    [
        ("def f(:\n", "assert True", "failed"),  # the program does not compile
        ("raise ValueError('boom')", "assert True", "failed"),
        ("x = 1", "assert x ==", "error"),  # the tests do not compile: grading error, not the program's fault
        ("x = 1", "", "failed"),  # no test case at all is never a pass
    ],
)
def test_statuses_of_broken_inputs(program, tests, status):
    assert run_tests(program, tests, timeout_s=5, memory_mb=512).status == status
