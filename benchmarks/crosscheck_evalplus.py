"""HumanEval+ / MBPP+ verdicts of prift (``prift.eval.bench_evalplus``) vs the ``evalplus`` package's own evaluation,
problem by problem, base and plus, on the canonical solutions and on mutants of them.

For each benchmark the first ``--limit`` tasks (default all) of the shared data file are written to a temporary
data file; both sides read that same file. Programs: the canonical solution (``prompt + canonical_solution``)
and, per task, mutants of it: the entry point is rebound to a wrapper around the canonical one that

- ``off_by_one``: returns a value off by one (``r + 1`` for a number, ``not r`` for a bool, one item fewer for a
  str/list/tuple -- one more when empty --, ``1`` for ``None``; other values unchanged);
- ``wrong_type``: returns ``str(r)``;
- ``raises``: raises ``ValueError``;
- ``prints``: prints the result and returns ``None``;
- ``slow``: sleeps ``--slow_s`` seconds (default 2, over the 1 s minimum limit) and then returns the right value;
- ``as_float``: returns ``float(r)`` for an int result (equal under ``==``; tests the exact / float-tolerance path);
- ``as_tuple``: returns ``tuple(r)`` for a list result (never ``==`` a list).

evalplus side: ``evalplus.evaluate.evaluate(dataset, samples=<jsonl of {"task_id", "solution"}>)`` in a subprocess,
offline (``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH`` = the temporary data file, ``HOME`` and
``XDG_CACHE_HOME`` in a temporary folder: its ground-truth cache goes there, nothing into ``/work/shared``); its
``*_eval_results.json`` holds ``base_status`` / ``plus_status`` per sample. prift side: the same programs (fenced, as a
model would answer) graded through ``prift.eval.grading.grade`` with evalplus's 4 GiB memory limit and the
benchmark's own per-problem wall clock;
base verdict = :meth:`EvalPlusBenchmark.base_status`, plus-solved = status ``correct``. evalplus's plus-solved is
``base_status == plus_status == "pass"``.

Output: per benchmark and program kind, ``base: N/M identical`` and ``plus: N/M identical``, the disagreements with
both sides' statuses and prift's detail, and the timeouts of each side (evalplus ``timeout`` status / prift
``timeout`` status), counted apart.

Run: ``.venv/bin/python benchmarks/crosscheck_evalplus.py [--limit N] [--tasks ID,...]
[--benchmarks humaneval_plus,mbpp_plus] [--kinds canonical,off_by_one,...] [--workers N] [--json PATH]``
(needs ``pip install -e .[crosscheck]``, i.e. evalplus 0.3.1, and the benchmark data in ``$PRIFT_DATA_DIR`` or
``../shared/data``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from prift.core.paths import data_root
from prift.eval.bench_code import fenced
from prift.eval.benchmarks import get_benchmark, read_json_rows
from prift.eval.grading import GradingSettings, grade
from prift.rewards.sandbox import SandboxConfig

DATASETS = {"humaneval_plus": ("humaneval", "HUMANEVAL_OVERRIDE_PATH"), "mbpp_plus": ("mbpp", "MBPP_OVERRIDE_PATH")}
KINDS = ("canonical", "off_by_one", "wrong_type", "raises", "prints", "slow", "as_float", "as_tuple")
WRAPPER = """

import time as _prift_time
_prift_original = {entry}


def _prift_off_by_one(r):
    if isinstance(r, bool):
        return not r
    if isinstance(r, (int, float)):
        return r + 1
    if isinstance(r, (str, list, tuple)):
        return r[:-1] if r else r + type(r)("0" if isinstance(r, str) else [0])
    return 1 if r is None else r


def {entry}(*args, **kwargs):
{body}
"""
BODIES = {
    "off_by_one": "    return _prift_off_by_one(_prift_original(*args, **kwargs))",
    "wrong_type": "    return str(_prift_original(*args, **kwargs))",
    "raises": "    raise ValueError('mutant')",
    "prints": "    print(_prift_original(*args, **kwargs))",
    "slow": "    _prift_time.sleep({slow_s})\n    return _prift_original(*args, **kwargs)",
    "as_float": "    r = _prift_original(*args, **kwargs)\n    return float(r) if type(r) is int else r",
    "as_tuple": "    r = _prift_original(*args, **kwargs)\n    return tuple(r) if type(r) is list else r",
}


def program(row: dict, kind: str, slow_s: float) -> str:
    code = row["prompt"] + row["canonical_solution"]
    if kind == "canonical":
        return code
    return code + WRAPPER.format(entry=row["entry_point"], body=BODIES[kind].format(slow_s=slow_s))


def run_evalplus(dataset: str, override: str, data_file: Path, samples: Path, workdir: Path, workers: int) -> dict:
    """evalplus's own evaluation of ``samples``, offline; {task_id: [per-sample result dicts in sample order]}."""
    env = {**os.environ, "HOME": str(workdir / "home"), "XDG_CACHE_HOME": str(workdir / "cache"),
           override: str(data_file), "TOKENIZERS_PARALLELISM": "false"}
    # os._exit: evaluate() leaves a non-daemon "stucking checker" thread sleeping up to 20 s after it has written
    # its results; the results file is complete when evaluate() returns
    code = ("import os, sys; from evalplus.evaluate import evaluate; "
            f"evaluate({dataset!r}, samples={str(samples)!r}, parallel={workers}, i_just_wanna_run=True); "
            "sys.stdout.flush(); sys.stderr.flush(); os._exit(0)")
    log = workdir / f"evalplus-{dataset}.log"
    with open(log, "w") as handle:
        proc = subprocess.run([sys.executable, "-c", code], env=env, stdout=handle, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"evalplus failed (status {proc.returncode}); see {log}:\n{log.read_text()[-3000:]}")
    results = json.loads(samples.with_name(samples.stem + "_eval_results.json").read_text())
    return results["eval"]


def crosscheck(name: str, limit: int | None, kinds: list[str], workers: int, slow_s: float, workdir: Path,
               tasks: set[str] | None = None) -> dict:
    dataset, override = DATASETS[name]
    bench = get_benchmark(name)
    source = data_root() / bench.files[0]
    rows = [r for r in read_json_rows(source) if "__error__" not in r and (not tasks or r["task_id"] in tasks)]
    rows = rows[:limit] if limit else rows
    if not rows:
        raise SystemExit(f"{name}: no task selected")
    data_dir = workdir / f"data-{name}"
    data_file = data_dir / bench.files[0]  # *.jsonl.gz: what evalplus's loader reads, and prift's layout
    data_file.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(data_file, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    samples = workdir / f"samples-{name}.jsonl"
    programs = [(row, kind, program(row, kind, slow_s)) for row in rows for kind in kinds]
    samples.write_text("".join(json.dumps({"task_id": row["task_id"], "solution": code}) + "\n"
                               for row, _, code in programs))

    started = time.perf_counter()
    theirs = run_evalplus(dataset, override, data_file, samples, workdir, workers)
    evalplus_s = time.perf_counter() - started

    started = time.perf_counter()
    ours_bench = get_benchmark(name, data_dir=data_dir)
    loaded = ours_bench.load()
    oracle_s = time.perf_counter() - started
    by_id = {p.id: p for p in loaded.problems}
    problems = [by_id[row["task_id"]] for row, _, _ in programs]
    # evalplus's memory limit (EVALPLUS_MAX_MEMORY_BYTES, 4 GiB); each run's wall clock is the benchmark's own
    # per-problem limit (sandbox_limits), this 10 s being only the floor
    settings = GradingSettings(sandbox=SandboxConfig(timeout_s=10.0, memory_mb=4096, workers=workers))
    started = time.perf_counter()
    grades = grade(ours_bench, problems, [fenced(code) for _, _, code in programs], settings)
    prift_s = time.perf_counter() - started

    seen: Counter = Counter()
    per_kind: dict[str, Counter] = {kind: Counter() for kind in kinds}
    disagreements, samples_out = [], []
    for (row, kind, _), problem, verdict in zip(programs, problems, grades, strict=True):
        task = row["task_id"]
        result = theirs[task][seen[task]]
        seen[task] += 1
        their_base = result["base_status"] == "pass"
        their_plus = result["base_status"] == result["plus_status"] == "pass"
        sample = {"status": verdict.status, "passed": verdict.extra.get("passed", 0)}
        our_base = ours_bench.base_status(problem, sample) == "correct"
        our_plus = verdict.status == "correct"
        theirs_row = [result["base_status"], result["plus_status"]]
        ours_row = [ours_bench.base_status(problem, sample), verdict.status]
        samples_out.append({"task": task, "kind": kind, "evalplus": theirs_row, "prift": ours_row,
                            "detail": verdict.detail[:200]})
        counts = per_kind[kind]
        counts["n"] += 1
        counts["base_same"] += their_base == our_base
        counts["plus_same"] += their_plus == our_plus
        counts["evalplus_base_pass"] += their_base
        counts["evalplus_plus_pass"] += their_plus
        counts["evalplus_timeouts"] += "timeout" in (result["base_status"], result["plus_status"])
        counts["prift_timeouts"] += verdict.status == "timeout"
        if their_base != our_base or their_plus != our_plus:
            disagreements.append({"task": task, "kind": kind, "evalplus": theirs_row, "prift": ours_row,
                                  "detail": verdict.detail[:300]})
    return {"benchmark": name, "tasks": len(rows), "kinds": {k: dict(v) for k, v in per_kind.items()},
            "disagreements": disagreements, "samples": samples_out,
            "seconds": {"evalplus (ground truth + evaluation)": round(evalplus_s, 1),
                        "prift expected outputs": round(oracle_s, 1), "prift grading": round(prift_s, 1)}}


def report(result: dict) -> None:
    print(f"\n== {result['benchmark']}: {result['tasks']} tasks; times {result['seconds']}")
    for kind, c in result["kinds"].items():
        print(f"{kind:>11}: base {c['base_same']}/{c['n']} identical, plus {c['plus_same']}/{c['n']} identical "
              f"(evalplus passes base {c['evalplus_base_pass']}, plus {c['evalplus_plus_pass']}; timeouts: evalplus "
              f"{c['evalplus_timeouts']}, prift {c['prift_timeouts']})")
    for d in result["disagreements"]:
        print(f"  DISAGREE {d['task']} {d['kind']}: evalplus base/plus {d['evalplus']}, prift base/status "
              f"{d['prift']}: {d['detail']}")


def common_parser(description: str, benchmarks: tuple[str, ...], example_tasks: str) -> argparse.ArgumentParser:
    """The options every cross-check script takes (task selection, program kinds, workers, output)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--limit", type=int, default=None, help="first N tasks of each benchmark (default all)")
    parser.add_argument("--tasks", default="", help=f"only these task ids (comma-separated, e.g. {example_tasks})")
    parser.add_argument("--benchmarks", default=",".join(benchmarks))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--slow_s", type=float, default=2.0, help="seconds the slow mutant sleeps")
    parser.add_argument("--json", default=None, help="also write the results (with disagreements) here")
    return parser


def checked_kinds(args: argparse.Namespace) -> list[str]:
    """The ``--kinds`` asked for, after checking the benchmark data is there and every kind is known."""
    if data_root() is None:
        sys.exit("no benchmark data: set $PRIFT_DATA_DIR or put the shared data at ../shared/data")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        sys.exit(f"unknown kinds {sorted(unknown)}; valid: {', '.join(KINDS)}")
    return kinds


def main() -> None:
    args = common_parser(__doc__.split("\n\n")[0], tuple(DATASETS), "Mbpp/392,HumanEval/15").parse_args()
    kinds = checked_kinds(args)
    results = []
    with tempfile.TemporaryDirectory(prefix="prift-crosscheck-") as tmp:
        os.environ["PRIFT_CACHE_DIR"] = str(Path(tmp) / "prift-cache")  # prift's expected outputs: computed afresh
        for name in [b.strip() for b in args.benchmarks.split(",") if b.strip()]:
            tasks = {t.strip() for t in args.tasks.split(",") if t.strip()}
            result = crosscheck(name, args.limit, kinds, args.workers, args.slow_s, Path(tmp), tasks)
            report(result)
            results.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
