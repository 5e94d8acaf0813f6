"""`prift sft`: train one or more token-priority SFT variants from one start checkpoint.

    prift sft --method nll,dft,prift_prob,prift_mass --dataset gsm8k --max_samples 256 --output_dir outputs/sft

Each method trains into <output_dir>/<method> (or <output_dir> for a single method); reference-fed methods share
one reference-signal cache. Prints where each checkpoint is.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from prift.core.config import ConfigError, parse_config, replace_config

DESCRIPTION = (
    "Token-priority SFT on TRL: L = sum_t m_t*CE_t*mask_t / D, with m_t from a priority rule fed by a signal source "
    "(online model, frozen reference via an on-disk signal cache, or EMA). Presets: nll, dft, prift_prob, "
    "prift_mass, profit, talr, eaft, power, rho1, signed. prift options come last in the list below, after TRL's "
    "SFTConfig/TrainingArguments options."
)


def run_methods(config) -> list[tuple[str, Path, float]]:
    """Train every method of `config` in turn; return (method, checkpoint folder, seconds) for each."""
    from prift.sft.train import run_sft

    methods = config.methods
    results = []
    for method in methods:
        output_dir = config.output_dir if len(methods) == 1 else str(Path(config.output_dir) / method)
        print(f"[prift] === sft {method} -> {output_dir}", flush=True)
        started = time.time()
        out = run_sft(replace_config(config, method=method, output_dir=output_dir))
        results.append((method, out, time.time() - started))
    return results


def print_checkpoints(results: list[tuple[str, Path, float]]) -> None:
    print("\n[prift] checkpoints:")
    for method, out, seconds in results:
        print(f"  {method:<12} {out}  ({seconds:.0f} s)")


def main(argv: list[str]) -> int:
    from prift.sft.config import PriftSFTConfig

    try:
        config = parse_config(PriftSFTConfig, argv, prog="prift sft", description=DESCRIPTION)
        results = run_methods(config)
    except (ConfigError, OSError, ValueError) as err:  # DatasetError: ValueError; disk, permission: OSError
        print(f"prift sft: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    from accelerate import PartialState

    if PartialState().is_main_process:  # once, not once per launched rank
        print_checkpoints(results)
    return 0
