"""`prift demo`: the CPU demo recipe on the embedded SmolLM2-135M-Instruct.

Stage 1 (now): SFT variants nll, dft, prift_prob, prift_mass on a shipped 64-row GSM8K sample, sharing one
reference cache; prints each stage's wall time, where the checkpoints are, and a comparison of the variants' last
logged unweighted NLL, mean weight and kept fraction. Extra flags override the recipe (`prift demo --max_steps 2`).
"""

from __future__ import annotations

import json
import sys
import time
from importlib import resources

from prift.commands.sft import print_checkpoints, run_methods
from prift.config import ConfigError, parse_config


def _recipe_file(name: str) -> str:
    return str(resources.files("prift.recipes") / name)


def _last(history: list[dict], key: str) -> float | None:
    values = [entry[key] for entry in history if key in entry]
    return values[-1] if values else None


def comparison_table(results) -> str:
    """Markdown table of each variant's training summary read back from its run.json."""
    lines = ["| method | rule | source | last NLL | last mean m_t | last kept fraction | train loss | wall (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for method, out, seconds in results:
        run = json.loads((out / "run.json").read_text())
        history = run.get("log_history", [])
        cells = [_last(history, k) for k in ("nll", "mean_weight", "kept_fraction")]
        lines.append(f"| {method} | {run['method']['rule']} | {run['method']['source']} | "
                     + " | ".join(f"{c:.4f}" if c is not None else "-" for c in cells)
                     + f" | {run['metrics'].get('train_loss', float('nan')):.4f} | {seconds:.0f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from prift.sft.config import PriftSFTConfig

    started = time.time()
    sample = _recipe_file("data/gsm8k_train_sample.jsonl")
    try:
        config = parse_config(PriftSFTConfig, ["--config", _recipe_file("configs/demo_cpu_sft.yaml"),
                                               "--dataset", sample, *argv], prog="prift demo", description=__doc__)
        results = run_methods(config)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"prift demo: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    print_checkpoints(results)
    print("\n" + comparison_table(results))
    print(f"\n[prift] demo stage times: sft {time.time() - started:.0f} s")
    return 0
