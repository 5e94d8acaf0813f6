"""`prift run RECIPE.yaml`: the whole SFT-init comparison of one recipe, stage by stage, resumable.

    prift run recipes/demo/cpu_smollm2.yaml [--dry-run] [--output_dir outputs/demo]

Validates the recipe (and that every RL init gets the same budget) before any work, prints the plan (each stage's
action: skip / resume / rerun / run, its inputs and output), runs it (eval base -> SFT variants -> eval -> diagnostics
-> RL from each init -> eval), writes the report and prints the time of every stage and the path of report.html.
Rerunning the same command skips finished stages and continues a killed one. Exit status 1 when a stage failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from prift.core.config import ConfigError


def main(argv: list[str], prog: str = "prift run") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("recipe", help="YAML recipe (see recipes/README.md)")
    parser.add_argument("--dry-run", "--dry_run", action="store_true", help="print the plan and stop")
    parser.add_argument("--output_dir", "--output-dir", default=None,
                        help="run folder (default: the recipe's output_dir, else outputs/<name>)")
    parser.add_argument("--base_model", "--base-model", default=None,
                        help="run the recipe's comparison on this model instead of its base_model (hub id, local "
                             "checkpoint or the embedded alias)")
    parser.add_argument("--verbose", action="store_true",
                        help="show the Trainer's raw metric dicts, every library progress bar and known-harmless "
                             "warnings in the training stages (sets $PRIFT_VERBOSE for them; stages do not rerun)")
    args = parser.parse_args(argv)
    if args.verbose:
        from prift.core.console import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"  # the stages' configs (and launched stage processes) read it

    from prift.recipes.pipeline import Summary, build_stages, describe_plan, execute, plan
    from prift.recipes.recipe import describe_recipe, load_recipe

    try:
        recipe = load_recipe(args.recipe, args.output_dir, args.base_model)
    except ConfigError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    run_dir = Path(recipe.output_dir or Path("outputs") / recipe.name).absolute()
    stages = plan(build_stages(recipe, run_dir), run_dir)
    print(describe_recipe(recipe))
    print(f"[prift] plan ({run_dir}):\n{describe_plan(stages)}", flush=True)
    if args.dry_run:
        return 0

    from prift.recipes.report import scores_markdown, write_run_report

    summary = execute(stages, Summary(recipe.name, run_dir, recipe.report_notes(), recipe.published))
    paths = write_run_report(run_dir)
    print("\n" + scores_markdown(run_dir))
    print(f"\n[prift] stage times (load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}):")
    for stage in summary.stages:
        print(f"  {stage.name:<24} {stage.status:<8} {stage.wall_s:7.0f} s  {stage.error or ''}")
    print(f"  {'total (this run)':<24} {'':<8} {summary.elapsed():7.0f} s")
    failed = [s.name for s in summary.stages if s.status in ("failed", "blocked")]
    if failed:
        print(f"[prift] failed or blocked stages: {', '.join(failed)} (details in {run_dir / 'pipeline.json'})")
    print(f"\n[prift] report: {paths['html']}")
    return 1 if failed else 0
