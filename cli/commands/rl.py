"""`prift rl`: continue a checkpoint with GRPO/DAPO on verifiable rewards under a recorded budget.

    prift rl --model_name_or_path outputs/sft/prift_prob --dataset gsm8k --rewards math_accuracy \
        --dynamic_sampling --budget 256 --budget_unit completions --output_dir outputs/rl

Prints where the checkpoint is and what the run spent (also in <output_dir>/run.json).
"""

from __future__ import annotations

import json
import sys

from prift.core.config import ConfigError, parse_config

DESCRIPTION = (
    "GRPO/DAPO on TRL's GRPOTrainer with prift rewards: loss_type grpo|dr_grpo|dapo|bnpo, clip-higher "
    "(epsilon/epsilon_high), KL beta (0 as in DAPO), overlong filtering (mask_truncated_completions) and soft "
    "punishment (overlong_buffer), DAPO dynamic sampling, an exact budget in steps, prompts, completions or tokens, "
    "and vLLM or HF rollouts. prift options come last in the list below, after TRL's GRPOConfig options."
)


def main(argv: list[str]) -> int:
    from prift.rl.config import PriftRLConfig
    from prift.rl.train import run_rl

    try:
        config = parse_config(PriftRLConfig, argv, prog="prift rl", description=DESCRIPTION)
        out = run_rl(config)
    except (ConfigError, OSError, ValueError) as err:  # DatasetError, TemplateError: ValueError; disk: OSError
        print(f"prift rl: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    from accelerate import PartialState

    if PartialState().is_main_process:  # once, not once per launched rank
        record = json.loads((out / "run.json").read_text())
        print(f"\n[prift] checkpoint: {out}")
        print(f"[prift] spent: {json.dumps(record['budget']['spent'])}")
    return 0
