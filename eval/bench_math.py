"""Math benchmarks: GSM8K (test 1319), MATH (test 5000), MATH-500 (test 500), the rest of the PriFT paper's suite
(Minerva Math 272, OlympiadBench 675, AIME24 30, AMC23 40), and ``NAME=PATH`` local files of the user's own.

Gold answers (``../shared/data/*/SOURCE.md``): GSM8K = text after the last ``####``, stripped, commas removed;
MATH = the last ``\\boxed{...}`` of ``solution``; MATH-500 = its ``answer`` field. Minerva, OlympiadBench, AIME24,
AMC23 and local files read any of their published layouts through one getter, :func:`math_gold` (the choices of the
Qwen2.5-Math evaluation harness's ``parse_ground_truth``). All grade through ``prift.rewards.math`` (numeric fast
path, then math-verify with gold first), the verifier RL rewards use.

Base-model prompts: GSM8K follows lm-evaluation-harness ``gsm8k`` (``Question: ...\\nAnswer: ...`` shots, stop at
``Question:``) with the first 5 train rows as shots (lm-eval samples 5 with a fixed seed); the others use the
Minerva layout (``Problem:\\n...\\n\\nSolution:``) with the first 4 MATH train rows as shots.
"""

from __future__ import annotations

from pathlib import Path

from prift.core.boxed import last_boxed
from prift.core.datasets import BOXED_INSTRUCTION, DATASETS
from prift.eval.benchmarks import BENCHMARKS, Benchmark, Problem, read_json_rows, read_jsonl, spec_files, spec_split

GSM8K_TRAIN = spec_split(DATASETS.get("gsm8k"), "train")
MATH_TRAIN = spec_split(DATASETS.get("math"), "train")


class MathBenchmark(Benchmark):
    """Math benchmarks. Generation defaults: the Qwen2.5-Math evaluation harness (``evaluation/math_eval.py`` at
    QwenLM/Qwen2.5-Math ab5097e42776099b57d59fe8541ce67e98d2b54a: ``--max_tokens_per_call 2048``, ``--temperature
    0``, ``--top_p 1``), whose ``qwen-boxed`` prompt is this family's default."""

    generation = {"max_tokens": 2048, "temperature": 0.0, "top_p": 1.0}
    task = "math"
    default_template = "qwen-boxed"
    shots_source: tuple[str, tuple] = MATH_TRAIN
    num_shots = 4

    def read_local(self, root: Path) -> list[dict]:
        return read_jsonl(root / self.files[0])

    def instruction(self, problem: Problem) -> str:
        return f"{problem.question}\n{BOXED_INSTRUCTION}"  # the math specs' prompt (prift.core.datasets)

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


@BENCHMARKS.register("gsm8k")
class GSM8K(MathBenchmark):
    name, split, rows = "gsm8k", "test", 1319
    dataset = DATASETS.get("gsm8k")
    files, hub = spec_files(dataset, split)
    base_stop = ("Question:",)
    num_shots = 5

    def to_problem(self, row: dict, index: int) -> Problem:
        # row and answer: lm-eval parity (prift.eval.lmeval) draws shots by row and matches against the full answer
        return Problem(f"gsm8k/{index}", self.dataset.question(row), self.dataset.gold(row),
                       {"row": index, "answer": row["answer"]})

    def shot_pairs(self) -> list[tuple[str, str]]:
        rows = self.read_extra(*GSM8K_TRAIN)[: self.num_shots]
        return [(row["question"], row["answer"]) for row in rows]

    def base_prompt(self, problem: Problem) -> str:
        shots = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in self._cached_shots())
        return f"{shots}Question: {problem.question}\nAnswer:"


@BENCHMARKS.register("math")
class MATH(MathBenchmark):
    name, split, rows = "math", "test", 5000
    dataset = DATASETS.get("math")
    files, hub = spec_files(dataset, split)

    def to_problem(self, row: dict, index: int) -> Problem:
        return Problem(row.get("unique_id", f"math/{index}"), self.dataset.question(row), self.dataset.gold(row),
                       {"subject": row.get("type"), "solution": row["solution"]})  # solution: lm-eval math_verify


@BENCHMARKS.register("math500")
class MATH500(MathBenchmark):
    name, split, rows = "math500", "test", 500
    files = ("math500/test.jsonl",)
    hub = ("HuggingFaceH4/MATH-500", None, "test")

    def to_problem(self, row: dict, index: int) -> Problem:
        if not str(row["answer"]).strip():
            raise ValueError("empty answer")
        return Problem(row["unique_id"], row["problem"], str(row["answer"]), {"subject": row.get("subject")})


def math_question(row: dict) -> str:
    """The problem text: ``question`` (OlympiadBench, AMC23, math-ai/minervamath), else ``problem`` (MATH-style
    files, AIME24, Qwen2.5-Math's minerva_math); ``ValueError`` when neither holds text."""
    text = str(row.get("question") or row.get("problem") or "").strip()
    if not text:
        raise ValueError("no `question` or `problem` text")
    return text


def math_gold(row: dict) -> str:
    """The gold answer of a row in any competition-math layout, first that holds one:

    - ``answer`` (AIME24, AMC23, math-ai/minervamath, local files); an integral float (AMC23's ``27.0``) -> ``27``;
    - ``final_answer`` (OlympiadBench): a list's first entry, or a string, surrounding ``$`` stripped;
    - the last ``\\boxed{}`` of ``solution`` (Qwen2.5-Math's minerva_math, math-ai/aime24); a list is joined.

    ``ValueError`` when none gives a non-empty answer (the row is then recorded as an error, not evaluated).
    """
    answer, final, solution = row.get("answer"), row.get("final_answer"), row.get("solution")
    if answer is not None and str(answer).strip():
        gold = str(int(answer)) if isinstance(answer, float) and answer.is_integer() else str(answer)
    elif final:
        gold = str(final[0] if isinstance(final, list) else final).strip().strip("$")
    elif solution:
        gold = last_boxed("\n".join(map(str, solution)) if isinstance(solution, list) else str(solution)) or ""
    else:
        gold = ""
    if not gold.strip():
        raise ValueError("no gold answer: expected `answer`, `final_answer` or a \\boxed{} answer in `solution`")
    return gold.strip()


class CompetitionMath(MathBenchmark):
    """One jsonl file of competition problems: question by :func:`math_question`, gold by :func:`math_gold`."""

    def to_problem(self, row: dict, index: int) -> Problem:
        return Problem(f"{self.name}/{index}", math_question(row), math_gold(row))


@BENCHMARKS.register("minerva")
class Minerva(CompetitionMath):
    """Minerva Math (OCWCourses, 272): Qwen2.5-Math's file has ``problem`` + ``solution``, the hub ``question`` +
    ``answer``."""

    name, rows = "minerva", 272
    files = ("minerva_math/test.jsonl",)
    hub = ("math-ai/minervamath", None, "test")


@BENCHMARKS.register("olympiadbench")
class OlympiadBench(CompetitionMath):
    """OlympiadBench OE_TO_maths_en_COMP (text-only English open-ended competition maths): ``question`` +
    ``final_answer``. Qwen2.5-Math's file has 675 rows; the hub config has 674."""

    name, rows = "olympiadbench", 675
    files = ("olympiadbench/test.jsonl",)
    hub = ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train")


@BENCHMARKS.register("aime24")
class AIME24(CompetitionMath):
    """AIME 2024 I and II (30): ``problem`` + ``answer`` (Qwen2.5-Math), ``problem`` + boxed ``solution`` (hub)."""

    name, rows = "aime24", 30
    files = ("aime24/test.jsonl",)
    hub = ("math-ai/aime24", None, "test")


@BENCHMARKS.register("amc23")
class AMC23(CompetitionMath):
    """AMC 2023 (40): ``question`` + numeric ``answer`` (a float such as ``27.0``)."""

    name, rows = "amc23", 40
    files = ("amc23/test.jsonl",)
    hub = ("math-ai/amc23", None, "test")


class LocalMath(CompetitionMath):
    """``NAME=PATH``: a short-answer math benchmark named ``NAME`` from a local file (what ``get_benchmark`` builds
    for such an item; ``data_dir`` plays no part). ``PATH`` (relative to the working directory) is JSON lines or a
    JSON array of rows with ``question`` (or ``problem``) and ``answer`` (or the other layouts of
    :func:`math_gold`). A row's ``prompt``, when present, is the ``chat`` template's user message verbatim; else it
    is the question plus the boxed-answer instruction. The default template is ``qwen-boxed``, like every math
    benchmark. Provenance records the file's path and sha256."""

    split, rows, hub = "local", None, None

    def __init__(self, name: str, path: str | Path, data_dir: str | Path | None = None, **settings) -> None:
        self.name, self.path = name, Path(path)
        self.files = (self.path.name,)
        super().__init__(data_dir, **settings)

    def local_root(self) -> Path:
        if not self.path.is_file():
            raise FileNotFoundError(f"benchmark {self.name}={self.path}: no such file")
        return self.path.parent

    def read_local(self, root: Path) -> list[dict]:
        return read_json_rows(self.path)

    def to_problem(self, row: dict, index: int) -> Problem:
        problem = super().to_problem(row, index)
        if row.get("prompt"):
            problem.meta["prompt"] = str(row["prompt"])
        return problem

    def instruction(self, problem: Problem) -> str:
        return problem.meta.get("prompt") or super().instruction(problem)
