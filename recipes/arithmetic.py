"""The CPU demo's short-answer arithmetic task: data generated from a fixed seed.

Problems are `a op b` with two-digit operands (`+`, `-`, `*` by a one-digit number), asked as
`What is 47 + 38? Put the final answer in \\boxed{}.`; the gold answer is the integer result. SFT rows carry a short
worked solution (tens and units split) ending in `The answer is \\boxed{85}.`, so token priorities have something to
weigh. The distinct problems are drawn once from `random.Random(SEED)` and cut into `test`, `sft` and `rl`
splits, so no problem appears in two splits.

    python -m prift.recipes.arithmetic     # (re)writes recipes/data/arith/*.jsonl, byte-identical every time

The demo evaluates the test split as the local-file benchmark item `arith=../data/arith/test.jsonl` (see
`prift.eval.bench_math.LocalMath`): its rows carry `question`, `answer` and the `prompt` the model is asked, and
grade with the math verifier like every math benchmark.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

SEED = 20240607
SPLITS = {"test": 64, "sft": 512, "rl": 128}  # problems per split, in this order
INSTRUCTION = "Put the final answer in \\boxed{}."


def data_dir() -> Path:
    """The packaged folder holding `<split>.jsonl` files."""
    return Path(str(resources.files("prift.recipes") / "data" / "arith"))


def worked_solution(a: int, op: str, b: int) -> tuple[str, int]:
    """(short worked solution ending in the boxed answer, the answer)."""
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


def question(a: int, op: str, b: int) -> str:
    return f"What is {a} {op} {b}? {INSTRUCTION}"


def draw_problems(seed: int = SEED) -> dict[str, list[tuple[int, str, int]]]:
    """Distinct problems per split (test first), drawn from one seeded stream."""
    rng = random.Random(seed)
    seen: set[tuple[int, str, int]] = set()
    ordered: list[tuple[int, str, int]] = []
    while len(ordered) < sum(SPLITS.values()):
        op = rng.choice("+-*")
        a = rng.randint(10, 99)
        b = rng.randint(2, 9) if op == "*" else rng.randint(10, a if op == "-" else 99)
        if (a, op, b) not in seen:
            seen.add((a, op, b))
            ordered.append((a, op, b))
    splits, start = {}, 0
    for name, size in SPLITS.items():
        splits[name] = ordered[start:start + size]
        start += size
    return splits


def split_rows(split: str, problems: list[tuple[int, str, int]]) -> list[dict]:
    """`sft`: prompt/completion rows; `rl`: prompt + gold `answer`; `test`: `question` + `answer` (the benchmark)
    plus prompt/completion (the held-out rows of the diagnostics)."""
    out = []
    for a, op, b in problems:
        solution, answer = worked_solution(a, op, b)
        if split == "sft":
            out.append({"prompt": question(a, op, b), "completion": solution})
        elif split == "rl":
            out.append({"prompt": question(a, op, b), "answer": str(answer)})
        else:
            out.append({"question": f"What is {a} {op} {b}?", "answer": str(answer), "prompt": question(a, op, b),
                        "completion": solution})
    return out


def write_splits(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, problems in draw_problems().items():
        paths[split] = folder / f"{split}.jsonl"
        paths[split].write_text("".join(json.dumps(row) + "\n" for row in split_rows(split, problems)))
    return paths


if __name__ == "__main__":
    for split, path in write_splits(data_dir()).items():
        print(f"{split}: {path}")
