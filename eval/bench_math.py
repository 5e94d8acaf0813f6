"""Math benchmarks: GSM8K (test 1319), MATH (test 5000), MATH-500 (test 500).

Gold answers (``../shared/data/*/SOURCE.md``): GSM8K = text after the last ``####``, stripped, commas removed;
MATH = the last ``\\boxed{...}`` of ``solution``; MATH-500 = its ``answer`` field. All grade through
``prift.rewards.math`` (numeric fast path, then math-verify with gold first), the verifier RL rewards use.

Base-model prompts: GSM8K follows lm-evaluation-harness ``gsm8k`` (``Question: ...\\nAnswer: ...`` shots, stop at
``Question:``) with the first 5 train rows as shots (lm-eval samples 5 with a fixed seed); MATH/MATH-500 use the
Minerva layout (``Problem:\\n...\\n\\nSolution:``) with the first 4 MATH train rows as shots.
"""

from __future__ import annotations

from pathlib import Path

from prift.eval.benchmarks import BENCHMARKS, Benchmark, Problem, read_jsonl
from prift.rewards.answers import last_boxed

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
GSM8K_TRAIN = ("gsm8k/train.jsonl", ("openai/gsm8k", "main", "train"))
MATH_TRAIN = ("math/train.jsonl", ("DigitalLearningGmbH/MATH-lighteval", "default", "train"))


class MathBenchmark(Benchmark):
    task = "math"
    default_template = "qwen-boxed"
    shots_source: tuple[str, tuple] = MATH_TRAIN
    num_shots = 4

    def read_local(self, root: Path) -> list[dict]:
        return read_jsonl(root / self.files[0])

    def instruction(self, problem: Problem) -> str:
        return f"{problem.question}\n{BOXED_INSTRUCTION}"

    def reference(self, problem: Problem) -> str:
        return f"The final answer is \\boxed{{{problem.gold}}}."

    def shot_pairs(self) -> list[tuple[str, str]]:
        rows = self.read_extra(*self.shots_source)[: self.num_shots]
        return [(row["problem"], row["solution"]) for row in rows]

    def base_prompt(self, problem: Problem) -> str:
        shots = "".join(f"Problem:\n{q}\n\nSolution:\n{a}\n\n" for q, a in self._cached_shots())
        return f"{shots}Problem:\n{problem.question}\n\nSolution:\n"

    def _cached_shots(self) -> list[tuple[str, str]]:
        if not hasattr(self, "_shots"):
            self._shots = self.shot_pairs()
        return self._shots

    base_stop = ("\nProblem:",)


def gsm8k_gold(answer: str) -> str:
    """GSM8K gold: text after the last ``####``, stripped, thousands commas removed (``1,000`` -> ``1000``)."""
    if "####" not in answer:
        raise ValueError("answer has no '####' line")
    return answer.rpartition("####")[2].strip().replace(",", "")


@BENCHMARKS.register("gsm8k")
class GSM8K(MathBenchmark):
    name, split, rows = "gsm8k", "test", 1319
    files = ("gsm8k/test.jsonl",)
    hub = ("openai/gsm8k", "main", "test")
    base_stop = ("Question:",)
    num_shots = 5

    def to_problem(self, row: dict, index: int) -> Problem:
        return Problem(f"gsm8k/{index}", row["question"], gsm8k_gold(row["answer"]))

    def shot_pairs(self) -> list[tuple[str, str]]:
        rows = self.read_extra(*GSM8K_TRAIN)[: self.num_shots]
        return [(row["question"], row["answer"]) for row in rows]

    def base_prompt(self, problem: Problem) -> str:
        shots = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in self._cached_shots())
        return f"{shots}Question: {problem.question}\nAnswer:"


@BENCHMARKS.register("math")
class MATH(MathBenchmark):
    name, split, rows = "math", "test", 5000
    files = ("math/test.jsonl",)
    hub = ("DigitalLearningGmbH/MATH-lighteval", "default", "test")

    def to_problem(self, row: dict, index: int) -> Problem:
        gold = last_boxed(row["solution"])
        if not gold:
            raise ValueError("solution has no \\boxed{} answer")
        return Problem(row.get("unique_id", f"math/{index}"), row["problem"], gold, {"subject": row.get("type")})


@BENCHMARKS.register("math500")
class MATH500(MathBenchmark):
    name, split, rows = "math500", "test", 500
    files = ("math500/test.jsonl",)
    hub = ("HuggingFaceH4/MATH-500", None, "test")

    def to_problem(self, row: dict, index: int) -> Problem:
        if not str(row["answer"]).strip():
            raise ValueError("empty answer")
        return Problem(row["unique_id"], row["problem"], str(row["answer"]), {"subject": row.get("subject")})
