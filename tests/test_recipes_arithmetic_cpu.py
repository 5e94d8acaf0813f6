"""The CPU recipes' generated arithmetic tasks (``arith``, ``addsub``): the shipped files are exactly what the seeded
generator writes, the splits never share a problem, every SFT completion is graded correct (and a wrong gold
wrong) by the math verifier, and a test split read as a local-file benchmark (``NAME=PATH``) asks the prompts it
ships and grades its gold answers as correct."""

from __future__ import annotations

import json

import pytest

from prift.eval.benchmarks import get_benchmark
from prift.recipes.arithmetic import TASKS
from prift.rewards.math import grade


@pytest.fixture(params=sorted(TASKS))
def task(request):
    return TASKS[request.param]


def test_shipped_splits_are_what_the_seeded_generator_writes(task, tmp_path):
    for split, path in task.write_splits(tmp_path).items():
        assert path.read_bytes() == (task.data_dir() / f"{split}.jsonl").read_bytes(), split


def test_splits_are_disjoint_and_sized(task):
    splits = task.draw_problems()
    assert {k: len(v) for k, v in splits.items()} == task.splits
    seen = [set(problems) for problems in splits.values()]
    assert sum(len(s) for s in seen) == len(set().union(*seen))


def test_every_sft_completion_grades_correct_and_a_wrong_gold_wrong(task):
    for a, op, b in task.draw_problems()["sft"][:64]:
        completion, answer = task.solve(a, op, b)
        assert answer == eval(f"{a} {op} {b}")  # noqa: S307 - two integers and an operator
        assert grade(completion, str(answer))
        assert not grade(completion, str(answer + 1))


def test_arith_keeps_its_boxed_answers_and_addsub_has_none():
    assert TASKS["arith"].solve(47, "+", 38)[0].endswith("\\boxed{85}.")
    assert TASKS["addsub"].solve(47, "+", 8) == (" 47 + 8 = 55.", 55)  # plain text: the completion starts with a space
    assert TASKS["addsub"].prompt(47, "+", 8) == "Question: What is 47 + 8?\nAnswer:"


def test_test_split_as_a_local_benchmark_keeps_its_prompts_and_gold(task):
    path = task.data_dir() / "test.jsonl"
    bench = get_benchmark(f"{task.name}={path}")
    loaded = bench.load()
    assert len(loaded.problems) == task.splits["test"] and not any(p.error for p in loaded.problems)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for problem, row in zip(loaded.problems, rows, strict=True):
        assert problem.id.startswith(f"{task.name}/") and problem.gold == row["answer"]
        assert bench.instruction(problem) == row["prompt"]
        assert grade(bench.reference(problem), problem.gold)
        assert grade(row["completion"], problem.gold)
