"""`prift report RUN_DIR...`: one table across checkpoints (rows) and benchmark x metric (columns, ± stderr) as
markdown and HTML, plus a PNG bar plot, from the results.json of each `prift eval` run folder. Given one `prift run`
folder (it holds pipeline.json), it (re)writes that run's full report in <run>/report instead."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from prift.eval.report import build_table, markdown, write_report

    parser = argparse.ArgumentParser(prog="prift report", description=__doc__)
    parser.add_argument("runs", nargs="+", help="prift eval output folders (or their results.json files)")
    parser.add_argument("--output_dir", default="outputs/report", help="where report.md/.html/.png are written")
    parser.add_argument("--labels", default=None, help="comma-separated row labels, one per run (default: model)")
    args = parser.parse_args(argv)
    if len(args.runs) == 1 and (Path(args.runs[0]) / "pipeline.json").is_file():
        from prift.recipes.report import write_run_report

        paths = write_run_report(args.runs[0])
        print("\n".join(f"[prift] {kind}: {path}" for kind, path in paths.items()))
        return 0
    labels = args.labels.split(",") if args.labels else None
    if labels and len(labels) != len(args.runs):
        print("prift report: error: --labels needs one label per run", file=sys.stderr)
        return 2
    try:
        paths = write_report(args.runs, args.output_dir, labels)
    except (FileNotFoundError, ValueError) as err:
        print(f"prift report: error: {err}", file=sys.stderr)
        return 1
    print(markdown(build_table(args.runs, labels)))
    print("\n".join(f"[prift] {kind}: {path}" for kind, path in paths.items()))
    return 0
