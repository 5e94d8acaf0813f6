"""Code benchmarks: HumanEval (164), MBPP (test 500), MBPP-sanitized (test 257); LiveCodeBench
is in :mod:`.bench_lcb`.

Every program runs only in the sandbox (``prift.rewards.sandbox.run_many``); a problem is solved when all its
tests pass (pass@1 per sample, as in Chen et al. 2021 / evalplus / LiveCodeBench).

- HumanEval: tests = ``test`` + ``check(entry_point)`` (``prift.rewards.code.humaneval_tests``). The program is
  the fenced code when it defines the entry point (chat models; the prompt's imports are prepended), else
  ``prompt + completion`` (base-model completion; Codex stop strings).
- MBPP: test split = task ids 11-510; tests = ``test_setup_code`` + the 3 asserts of ``test_list``. Base prompt =
  the original paper's / lm-evaluation-harness layout, 3 shots (tasks 2, 3, 4), ``[BEGIN]``...``[DONE]``.
- MBPP-sanitized: task ids 11-510 of sanitized-mbpp.json; tests = ``test_imports`` + ``test_list``.
- HumanEval+ and MBPP+ (evalplus's protocol, base and plus verdicts) are in :mod:`.bench_evalplus`.
"""

from __future__ import annotations

import re
from pathlib import Path

from prift.core.datasets import CODE_INSTRUCTION, DATASETS, MBPP_SPLITS, mbpp_task
from prift.eval.benchmarks import BENCHMARKS, Benchmark, Problem, read_json_array, read_jsonl, spec_files
from prift.rewards.code import TestSpec, extract_code, humaneval_tests

EVALPLUS_INSTRUCTION = ("Please provide a self-contained Python script that solves the following problem in a "
                        "markdown code block:")
CODEX_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


class CodeBenchmark(Benchmark):
    """Code benchmarks. Generation defaults: evalplus, whose instruction prompt this family uses
    (``evalplus/provider/base.py`` at evalplus/evalplus 8cad67231f9d6af122987d8e3ae49444cd5ca5f6: ``max_new_tokens
    = 768``; its ``--greedy`` protocol samples at temperature 0)."""

    generation = {"max_tokens": 768, "temperature": 0.0}
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
    test_ids = MBPP_SPLITS["test"]
    shot_ids = (2, 3, 4)

    def keep(self, row: dict) -> bool:
        return int(row["task_id"]) in self.test_ids

    def tests_of(self, row: dict) -> str:
        raise NotImplementedError

    def to_problem(self, row: dict, index: int) -> Problem:
        tests = self.tests_of(row)
        asserts = "\n".join(row["test_list"])
        text = row.get("text") or row["prompt"]
        return Problem(f"{self.name}/{row['task_id']}", mbpp_task(text, asserts), TestSpec("assert", tests),
                       {"reference": row["code"]})

    def instruction(self, problem: Problem) -> str:
        return f"{problem.question}{CODE_INSTRUCTION}"  # the mbpp spec's prompt (prift.core.datasets)

    def base_prompt(self, problem: Problem) -> str:
        if not hasattr(self, "_shots"):
            rows = {int(r["task_id"]): r for r in self._all_rows if "task_id" in r}
            self._shots = "".join(
                f"{mbpp_task(rows[i].get('text') or rows[i]['prompt'], chr(10).join(rows[i]['test_list']))}"
                f"[BEGIN]\n{rows[i]['code']}\n[DONE]\n" for i in self.shot_ids if i in rows)
        return f"{self._shots}{problem.question}[BEGIN]\n"

    def read_hub(self) -> list[dict]:
        self._all_rows = super().read_hub()
        return self._all_rows


@BENCHMARKS.register("mbpp")
class MBPP(MBPPBase):
    name, split, rows = "mbpp", "test", 500
    dataset = DATASETS.get("mbpp")
    files, hub = spec_files(dataset, split)

    def read_local(self, root: Path) -> list[dict]:
        self._all_rows = read_jsonl(root / self.files[0])
        return self._all_rows

    def tests_of(self, row: dict) -> str:
        return self.dataset.gold(row)


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
