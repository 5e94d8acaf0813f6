"""Training-argument defaults shared by the SFT and RL config dataclasses.

TRL's configs default to bf16 and activation checkpointing, which make CPU training ~15x slower. `HardwareDefaults`
is a dataclass mixin placed before the TRL config in the bases: its fields replace the inherited ones with
"decided by the hardware" defaults, and `resolve_hardware()` (called first in the config's `__post_init__`) turns
them into values. Launched CPU processes (WORLD_SIZE > 1, no GPU) become gloo DDP ranks (`use_cpu`) instead of N
independent runs. `reference_placement` says where a frozen reference that runs during training lives.
`parse_mapping` reads the JSON/YAML mapping flags (`--rule_params`, `--reward_settings`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import torch

REFERENCE_PLACEMENTS = ("auto", "per_rank", "sharded")


@dataclass
class HardwareDefaults:
    bf16: bool | None = field(
        default=None, metadata={"help": "bf16 mixed precision; default: on when a bf16-capable CUDA GPU is present."})
    activation_checkpointing: bool | None = field(
        default=None,
        metadata={"help": "Activation (gradient) checkpointing; default: on when a CUDA GPU is present.", "nargs": "?",
                  "const": True})
    report_to: None | str | list[str] = field(
        default="none", metadata={"help": "Loggers for metrics: none, tensorboard, wandb, trackio, ..."})
    reference_placement: str = field(
        default="auto",
        metadata={"help": "Where a frozen reference that runs during training lives (SFT: --reference_mode live): "
                          "per_rank (a whole copy on every process's device; no communication), sharded (DeepSpeed "
                          "ZeRO-3 only: partitioned across processes like the policy and gathered layer by layer in "
                          "each forward, as TRL places its reference models; ~1/N of the memory) or auto (sharded "
                          "under ZeRO-3, else per_rank). RL's KL reference (beta > 0) is placed by TRL, as auto."})

    def resolve_hardware(self) -> None:
        if self.reference_placement not in REFERENCE_PLACEMENTS:
            raise ValueError(f"reference_placement: unknown value {self.reference_placement!r}; valid: "
                             f"{', '.join(REFERENCE_PLACEMENTS)}")
        cuda = torch.cuda.is_available()
        if self.bf16 is None:
            self.bf16 = cuda and torch.cuda.is_bf16_supported()
        if self.activation_checkpointing is None:
            self.activation_checkpointing = cuda
        self.gradient_checkpointing = self.activation_checkpointing  # TRL's deprecated alias follows
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not cuda:
            self.use_cpu = True


def parse_mapping(name: str, text: str, example: str) -> dict:
    """A JSON (or YAML) mapping given as a string flag; anything else raises a ValueError naming the flag."""
    import yaml

    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a mapping such as '{example}', got {text!r}")
    return value
