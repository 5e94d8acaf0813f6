"""The CPU demo's arithmetic task: the shipped files are exactly what the seeded generator writes, the splits never
share a problem, every worked solution is graded correct by the math verifier, and the test split read as the demo's
`arith=PATH` benchmark asks the prompts it ships and grades its gold answers as correct."""

from __future__ import annotations

import json

from prift.eval.benchmarks import get_benchmark
from prift.recipes import arithmetic
from prift.rewards.math import grade


def test_shipped_splits_are_what_the_seeded_generator_writes(tmp_path):
    fresh = arithmetic.write_splits(tmp_path)
    for split, path in fresh.items():
        assert path.read_bytes() == (arithmetic.data_dir() / f"{split}.jsonl").read_bytes(), split


def test_splits_are_disjoint_and_sized():
    splits = arithmetic.draw_problems()
    assert {k: len(v) for k, v in splits.items()} == arithmetic.SPLITS
    seen = [set(problems) for problems in splits.values()]
    assert sum(len(s) for s in seen) == len(set().union(*seen))


def test_every_worked_solution_grades_correct_and_ends_boxed():
    for a, op, b in arithmetic.draw_problems()["sft"][:64]:
        solution, answer = arithmetic.worked_solution(a, op, b)
        assert answer == eval(f"{a} {op} {b}")  # noqa: S307 - two integers and an operator
        assert solution.endswith(f"\\boxed{{{answer}}}.")
        assert grade(solution, str(answer))
        assert not grade(solution, str(answer + 1))


def test_arith_test_split_as_a_local_benchmark_keeps_its_prompts_and_gold():
    bench = get_benchmark(f"arith={arithmetic.data_dir() / 'test.jsonl'}")
    loaded = bench.load()
    assert len(loaded.problems) == arithmetic.SPLITS["test"] and not any(p.error for p in loaded.problems)
    rows = [json.loads(line) for line in (arithmetic.data_dir() / "test.jsonl").read_text().splitlines()]
    for problem, row in zip(loaded.problems, rows, strict=True):
        assert problem.id.startswith("arith/") and problem.gold == row["answer"]
        assert bench.instruction(problem) == row["prompt"] == f"{row['question']} {arithmetic.INSTRUCTION}"
        assert grade(bench.reference(problem), problem.gold)
        assert grade(row["completion"], problem.gold)
