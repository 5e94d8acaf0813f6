"""Generated short-answer arithmetic tasks for the CPU recipes: data drawn once from a fixed seed.

Two tasks, each a folder ``recipes/data/<name>/`` with ``test``, ``sft`` and ``rl`` splits that never share a problem:

- ``arith`` (the CPU ablations and the tests): ``a op b`` with two-digit operands (``+``, ``-``, ``*`` by a one-digit
  number), asked as ``What is 47 + 38? Put the final answer in \\boxed{}.``; SFT rows carry a short worked solution
  (tens and units split) ending in ``The answer is \\boxed{85}.``.
- ``addsub`` (the CPU demo, issue 19): a two-digit number plus or minus a one-digit one, asked as ``What is 47 + 8?``;
  SFT rows answer ``47 + 8 = 55.\\nThe answer is 55.`` No ``\\boxed{}``: SmolLM2's tokenizer has a single token
  ``{}`` that its reference ranks above ``{`` after ``\\boxed``, so PriFT-mass drops the ``{`` from the loss and learns
  empty boxes (the finding in ``recipes/demo/cpu_smollm2.yaml``). Sized so that every rule learns it in the demo's
  budget while a T=1 sample is still often wrong (reward variance for RL), with enough test problems (256) for
  paired intervals of a few points.

    python -m prift.recipes.arithmetic     # (re)writes recipes/data/{arith,addsub}/*.jsonl, byte-identical every time

The recipes evaluate a test split as the local-file benchmark item ``arith=../data/arith/test.jsonl`` (see
``prift.eval.bench_math.LocalMath``): its rows carry ``question``, ``answer`` and the ``prompt`` the model is asked,
and grade with the math verifier like every math benchmark.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

Problem = tuple[int, str, int]  # (a, op, b)


@dataclass(frozen=True)
class Task:
    name: str                                           # the folder under recipes/data
    seed: int
    splits: dict[str, int]                              # problems per split, drawn in this order
    prompt_format: str                                  # the prompt, from ``{question}``
    draw: Callable[[random.Random], Problem]            # one problem from the seeded stream
    solve: Callable[[int, str, int], tuple[str, int]]   # (completion an SFT row carries, the integer answer)

    def data_dir(self) -> Path:
        """The packaged folder holding ``<split>.jsonl`` files."""
        return Path(str(resources.files("prift.recipes") / "data" / self.name))

    def question(self, a: int, op: str, b: int) -> str:
        return f"What is {a} {op} {b}?"

    def prompt(self, a: int, op: str, b: int) -> str:
        return self.prompt_format.format(question=self.question(a, op, b))

    def draw_problems(self) -> dict[str, list[Problem]]:
        """Distinct problems per split (test first), drawn from one seeded stream."""
        rng = random.Random(self.seed)
        seen: set[Problem] = set()
        ordered: list[Problem] = []
        while len(ordered) < sum(self.splits.values()):
            problem = self.draw(rng)
            if problem not in seen:
                seen.add(problem)
                ordered.append(problem)
        splits, start = {}, 0
        for name, size in self.splits.items():
            splits[name] = ordered[start:start + size]
            start += size
        return splits

    def split_rows(self, split: str, problems: list[Problem]) -> list[dict]:
        """``sft``: prompt/completion rows; ``rl``: prompt + gold ``answer``; ``test``: ``question`` + ``answer`` (the
        benchmark) plus prompt/completion (the held-out rows of the diagnostics)."""
        out = []
        for a, op, b in problems:
            solution, answer = self.solve(a, op, b)
            if split == "sft":
                out.append({"prompt": self.prompt(a, op, b), "completion": solution})
            elif split == "rl":
                out.append({"prompt": self.prompt(a, op, b), "answer": str(answer)})
            else:
                out.append({"question": self.question(a, op, b), "answer": str(answer),
                            "prompt": self.prompt(a, op, b), "completion": solution})
        return out

    def write_splits(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for split, problems in self.draw_problems().items():
            paths[split] = folder / f"{split}.jsonl"
            paths[split].write_text("".join(json.dumps(row) + "\n" for row in self.split_rows(split, problems)))
        return paths


def _draw_arith(rng: random.Random) -> Problem:
    op = rng.choice("+-*")
    a = rng.randint(10, 99)
    return a, op, rng.randint(2, 9) if op == "*" else rng.randint(10, a if op == "-" else 99)


def _worked_solution(a: int, op: str, b: int) -> tuple[str, int]:
    """Tens and units split, ending in the boxed answer."""
    tens, units = a - a % 10, a % 10
    if op == "+":
        answer = a + b
        steps = f"{a} + {b} = {a} + {b - b % 10} + {b % 10} = {a + b - b % 10} + {b % 10} = {answer}."
    elif op == "-":
        answer = a - b
        steps = f"{a} - {b} = {a} - {b - b % 10} - {b % 10} = {a - b + b % 10} - {b % 10} = {answer}."
    else:
        answer = a * b
        steps = f"{a} * {b} = {tens} * {b} + {units} * {b} = {tens * b} + {units * b} = {answer}."
    return f"{steps}\nThe answer is \\boxed{{{answer}}}.", answer


def _draw_addsub(rng: random.Random) -> Problem:
    return rng.randint(10, 99), rng.choice("+-"), rng.randint(1, 9)


def _equation(a: int, op: str, b: int) -> tuple[str, int]:
    """The equation, on the prompt's line (plain text: the completion starts with its space)."""
    answer = a + b if op == "+" else a - b
    return f" {a} {op} {b} = {answer}.", answer


TASKS = {
    "arith": Task("arith", 20240607, {"test": 64, "sft": 512, "rl": 128},
                  "{question} Put the final answer in \\boxed{{}}.", _draw_arith, _worked_solution),
    "addsub": Task("addsub", 20261201, {"test": 640, "sft": 512, "rl": 256}, "Question: {question}\nAnswer:",
                   _draw_addsub, _equation),
}


if __name__ == "__main__":
    for task in TASKS.values():
        for split, path in task.write_splits(task.data_dir()).items():
            print(f"{task.name} {split}: {path}")
