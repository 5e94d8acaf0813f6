"""`prift eval`: generate, grade and score benchmarks for one checkpoint; resumable.

    prift eval --model_name_or_path smollm2-135m-instruct --benchmarks gsm8k,math500,humaneval --n 16 --temperature 1.0 \
        --template qwen-boxed --output_dir outputs/eval/base

Writes <output_dir>/samples/<benchmark>.jsonl (one graded sample per line) and <output_dir>/results.json, and
prints the results table. Rerunning the same command after a kill generates only the missing samples.
"""

from __future__ import annotations

import sys

from prift.core.config import ConfigError, parse_config

DESCRIPTION = ("Evaluate a checkpoint on math, code and medical benchmarks: avg@k, unbiased pass@k, maj@k with "
               "standard errors; per-sample jsonl and a results.json with full provenance. Resumable.")


def main(argv: list[str]) -> int:
    from prift.eval.config import EvalConfig
    from prift.eval.report import build_table, markdown
    from prift.eval.runner import evaluate
    from prift.eval.samples import SettingsMismatch

    try:
        config = parse_config(EvalConfig, argv, prog="prift eval", description=DESCRIPTION)
        path = evaluate(config)
    except (ConfigError, SettingsMismatch, OSError, ValueError, ImportError) as err:
        print(f"prift eval: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    from accelerate import PartialState

    if PartialState().is_main_process:  # once, not once per launched rank
        print(f"\n[prift] results: {path}\n")
        print(markdown(build_table([path.parent])))
    return 0
