"""Code benchmarks: HumanEval (164), MBPP (test 500), MBPP-sanitized (test 257), MBPP+ v0.1.0 (399), LiveCodeBench.

Every program runs only in the sandbox (``prift.rewards.sandbox.run_many``); a problem is solved when all its
tests pass (pass@1 per sample, as in Chen et al. 2021 / evalplus / LiveCodeBench).

- HumanEval: tests = ``test`` + ``check(entry_point)`` (``prift.rewards.code.humaneval_tests``). The program is
  the fenced code when it defines the entry point (chat models; the prompt's imports are prepended), else
  ``prompt + completion`` (base-model completion; Codex stop strings).
- MBPP: test split = task ids 11-510; tests = ``test_setup_code`` + the 3 asserts of ``test_list``. Base prompt =
  the original paper's / lm-evaluation-harness layout, 3 shots (tasks 2, 3, 4), ``[BEGIN]``...``[DONE]``.
- MBPP-sanitized: task ids 11-510 of sanitized-mbpp.json; tests = ``test_imports`` + ``test_list``.
- MBPP+ (evalplus schema, v0.1.0 in the shared data): the candidate must match the canonical solution's output on
  every base and plus input (floats within ``atol``, or 1e-6 when ``atol`` is 0; objects without value equality,
  such as ``re.Match``, by type and repr); inputs are deep-copied per call. Inputs stay as JSON decodes them (lists
  where evalplus converts some tasks' inputs to tuples), so where the reference raises on an input the candidate
  must raise the same exception type. Treat MBPP+ v0.1.0 as a secondary metric (see its SOURCE.md).
- LiveCodeBench (code_generation_lite): tests = public + private cases (private = base64 -> zlib -> pickle ->
  JSON); stdin/stdout for AtCoder/Codeforces rows, functional (``Solution().fn``) when ``metadata.func_name``
  is set. Settings ``start_date``/``end_date`` (ISO, inclusive) select the contest-date window.
"""

from __future__ import annotations

import base64
import json
import pickle
import re
import zlib
from pathlib import Path

from prift.eval.benchmarks import BENCHMARKS, Benchmark, Problem, read_json_array, read_jsonl
from prift.rewards.code import TestSpec, extract_code, humaneval_tests, parse_tests

EVALPLUS_INSTRUCTION = ("Please provide a self-contained Python script that solves the following problem in a "
                        "markdown code block:")
CODEX_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


class CodeBenchmark(Benchmark):
    task = "code"
    default_template = "chat"

    def instruction(self, problem: Problem) -> str:
        return f"{EVALPLUS_INSTRUCTION}\n```\n{problem.question.strip()}\n```"

    def base_prompt(self, problem: Problem) -> str:
        return problem.question

    def program(self, problem: Problem, completion: str) -> str:
        """The program the sandbox runs for ``completion`` (the last fenced Python block, else the text)."""
        return extract_code(completion)

    def reference(self, problem: Problem) -> str:
        if "reference" not in problem.meta:
            raise NotImplementedError(f"{self.name}: the data carry no reference solution")
        return fenced(problem.meta["reference"])


@BENCHMARKS.register("humaneval")
class HumanEval(CodeBenchmark):
    name, split, rows = "humaneval", "test", 164
    files = ("humaneval/HumanEval.jsonl.gz",)
    hub = ("openai/openai_humaneval", None, "test")
    base_stop = CODEX_STOP

    def read_local(self, root: Path) -> list[dict]:
        return read_jsonl(root / self.files[0])

    def to_problem(self, row: dict, index: int) -> Problem:
        meta = {"entry_point": row["entry_point"], "reference": row["prompt"] + row["canonical_solution"]}
        return Problem(row["task_id"], row["prompt"], humaneval_tests(row["test"], row["entry_point"]), meta)

    def program(self, problem: Problem, completion: str) -> str:
        code = extract_code(completion)
        if re.search(rf"def\s+{re.escape(problem.meta['entry_point'])}\s*\(", code):
            imports = [line for line in problem.question.splitlines() if line.startswith(("import ", "from "))]
            return "\n".join([*imports, code])
        return problem.question + code


class MBPPBase(CodeBenchmark):
    base_stop = ("[DONE]",)
    test_ids = range(11, 511)
    shot_ids = (2, 3, 4)

    def keep(self, row: dict) -> bool:
        return int(row["task_id"]) in self.test_ids

    def tests_of(self, row: dict) -> str:
        raise NotImplementedError

    def task_text(self, text: str, tests: str) -> str:
        return f"You are an expert Python programmer, and here is your task: {text} Your code should pass these tests:\n\n{tests}\n"

    def to_problem(self, row: dict, index: int) -> Problem:
        tests = self.tests_of(row)
        asserts = "\n".join(row["test_list"])
        text = row.get("text") or row["prompt"]
        return Problem(f"{self.name}/{row['task_id']}", self.task_text(text, asserts), TestSpec("assert", tests),
                       {"reference": row["code"]})

    def instruction(self, problem: Problem) -> str:
        return f"{problem.question}Write the function in a ```python code block."

    def base_prompt(self, problem: Problem) -> str:
        if not hasattr(self, "_shots"):
            rows = {int(r["task_id"]): r for r in self._all_rows if "task_id" in r}
            self._shots = "".join(
                f"{self.task_text(rows[i].get('text') or rows[i]['prompt'], chr(10).join(rows[i]['test_list']))}"
                f"[BEGIN]\n{rows[i]['code']}\n[DONE]\n" for i in self.shot_ids if i in rows)
        return f"{self._shots}{problem.question}[BEGIN]\n"

    def read_hub(self) -> list[dict]:
        self._all_rows = super().read_hub()
        return self._all_rows


@BENCHMARKS.register("mbpp")
class MBPP(MBPPBase):
    name, split, rows = "mbpp", "test", 500
    files = ("mbpp/mbpp.jsonl",)
    hub = ("google-research-datasets/mbpp", "full", "test")

    def read_local(self, root: Path) -> list[dict]:
        self._all_rows = read_jsonl(root / self.files[0])
        return self._all_rows

    def tests_of(self, row: dict) -> str:
        return row.get("test_setup_code", "") + "\n" + "\n".join(row["test_list"])


@BENCHMARKS.register("mbpp_sanitized")
class MBPPSanitized(MBPPBase):
    name, split, rows = "mbpp_sanitized", "test", 257
    files = ("mbpp/sanitized-mbpp.json",)
    hub = ("google-research-datasets/mbpp", "sanitized", "test")

    def read_local(self, root: Path) -> list[dict]:
        self._all_rows = read_json_array(root / self.files[0])
        return self._all_rows

    def tests_of(self, row: dict) -> str:
        return "\n".join(row["test_imports"]) + "\n" + "\n".join(row["test_list"])


MBPP_PLUS_HARNESS = """
import copy as _copy, json as _json, math as _math
_ref_ns = {{}}
exec({canonical!r}, _ref_ns)
_ATOL = {atol!r}

def _close(got, exp):
    if isinstance(exp, float) or isinstance(got, float):
        if isinstance(got, (int, float)) and isinstance(exp, (int, float)):
            return got == exp or _math.isclose(got, exp, rel_tol=1e-07, abs_tol=_ATOL or 1e-06)
    if isinstance(exp, (list, tuple)) and isinstance(got, (list, tuple)) and len(got) == len(exp):
        return type(got) is type(exp) and all(_close(g, e) for g, e in zip(got, exp))
    if type(exp).__eq__ is object.__eq__:  # no value equality (re.Match): same type and repr
        return type(got) is type(exp) and repr(got) == repr(exp)
    return got == exp

def _run(fn, args):
    try:
        return fn(*_copy.deepcopy(args)), None
    except Exception as exc:
        return None, type(exc)

for _args in _json.loads({inputs!r}):
    _expected, _expected_exc = _run(_ref_ns[{entry!r}], _args)
    _got, _got_exc = _run({entry}, _args)
    assert _got_exc is _expected_exc, f"raised {{_got_exc}} (reference: {{_expected_exc}}) for input {{_args!r:.200}}"
    assert _close(_got, _expected), f"wrong output for input {{_args!r:.200}}"
"""


@BENCHMARKS.register("mbpp_plus")
class MBPPPlus(CodeBenchmark):
    name, split, rows = "mbpp_plus", "test", 399
    files = ("mbpp/MbppPlus-v0.1.0.json",)
    hub = ("evalplus/mbppplus", None, "test")

    def read_local(self, root: Path) -> list[dict]:
        return read_json_array(root / self.files[0])

    def to_problem(self, row: dict, index: int) -> Problem:
        entry = row["entry_point"] if "entry_point" in row else None
        if "base_input" in row:  # the evalplus release schema: compare with the canonical solution's outputs
            inputs = list(row["base_input"]) + list(row.get("plus_input") or [])
            tests = MBPP_PLUS_HARNESS.format(canonical=row["canonical_solution"], atol=float(row.get("atol") or 0),
                                             inputs=json.dumps(inputs), entry=entry)
            reference = row["canonical_solution"]
        else:  # the hub dataset: a self-contained `test` string
            tests, reference = row["test"], row["code"]
        return Problem(str(row["task_id"]), row["prompt"], TestSpec("assert", tests), {"reference": reference})


LCB_SYSTEM = ("You are an expert Python programmer. You will be given a question (problem specification) and will "
              "generate a correct Python program that matches the specification and passes all tests.")
LCB_STDIN = ("### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not directly "
             "test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python "
             "program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n```python\n"
             "# YOUR CODE HERE\n```\n\n")
LCB_STARTER = ("### Format: You will use the following starter code to write the solution to the problem and enclose "
               "your code within delimiters.\n```python\n{starter}\n```\n\n")


def lcb_cases(row: dict) -> list[dict]:
    """Public plus private test cases; private ones are base64(zlib(pickle(JSON string))) as LiveCodeBench ships."""
    private = row["private_test_cases"]
    if isinstance(private, str) and not private.lstrip().startswith("["):
        private = pickle.loads(zlib.decompress(base64.b64decode(private)))  # noqa: S301 - the benchmark's format
    return json.loads(row["public_test_cases"]) + json.loads(private)


@BENCHMARKS.register("livecodebench")
class LiveCodeBench(CodeBenchmark):
    name, split, rows = "livecodebench", "test", 8  # the shared data hold an 8-problem release_v6 sample
    files = ("livecodebench/release_v6-easy8.jsonl",)
    hub = ("livecodebench/code_generation_lite", "release_v6", "test")

    @classmethod
    def settings_defaults(cls) -> dict:
        return {"start_date": None, "end_date": None}

    def read_local(self, root: Path) -> list[dict]:
        return read_jsonl(root / self.files[0])

    def keep(self, row: dict) -> bool:
        date = str(row.get("contest_date", ""))[:10]
        start, end = self.settings["start_date"], self.settings["end_date"]
        return (not start or date >= str(start)) and (not end or date <= str(end))

    def to_problem(self, row: dict, index: int) -> Problem:
        cases = lcb_cases(row)
        fn_name = json.loads(row.get("metadata") or "{}").get("func_name")
        inputs, outputs = [c["input"] for c in cases], [c["output"] for c in cases]
        spec = parse_tests({"inputs": inputs, "outputs": outputs, **({"fn_name": fn_name} if fn_name else {})})
        question = f"### Question:\n{row['question_content']}\n\n"
        starter = row.get("starter_code") or ""
        fmt = LCB_STARTER.format(starter=starter) if starter else LCB_STDIN
        return Problem(row["question_id"], question, spec,
                       {"format": fmt, "contest_date": row.get("contest_date"), "platform": row.get("platform")})

    def instruction(self, problem: Problem) -> str:
        return f"{LCB_SYSTEM}\n\n{problem.question}{problem.meta['format']}### Answer: (use the provided format with backticks)\n\n"

    base_prompt = instruction
