"""`prift demo`: `prift run` of the packaged CPU demo recipe (recipes/demo/cpu_smollm2.yaml) on the embedded
SmolLM2-135M-Instruct: nll / dft / prift_prob / prift_mass, a short RL stage from each under one budget, 640 held-out
arithmetic problems evaluated before and after (paired intervals for every difference), the report. Takes `prift run`'s options (`--dry-run`, `--output_dir`)."""

from __future__ import annotations

from importlib import resources

from prift.commands import run


def main(argv: list[str]) -> int:
    recipe = str(resources.files("prift.recipes") / "demo" / "cpu_smollm2.yaml")
    return run.main([recipe, *argv], prog="prift demo")
