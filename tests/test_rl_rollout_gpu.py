"""RL on a CUDA GPU: the hardware defaults (bf16, activation checkpointing), HF rollouts with dynamic sampling, and
TRL's vLLM colocate rollouts when vLLM is installed. Skipped without CUDA (and the vLLM test without vLLM)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from prift.rl.config import PriftRLConfig
from prift.rl.train import run_rl

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _run(tiny_checkpoint, tmp_path, **overrides) -> dict:
    config = PriftRLConfig(model_name_or_path=str(tiny_checkpoint), dataset="recipes/data/gsm8k_train_sample.jsonl",
                           max_samples=32, output_dir=str(tmp_path / "rl"), rewards=["math_accuracy", "format_boxed"],
                           num_generations=4, per_device_train_batch_size=8, max_completion_length=16, budget=2,
                           save_strategy="no", disable_tqdm=True, **overrides)
    out = run_rl(config)
    return json.loads((out / "run.json").read_text())


def test_gpu_defaults_and_hf_rollouts_with_dynamic_sampling(tiny_checkpoint, tmp_path):
    run = _run(tiny_checkpoint, tmp_path, backend="hf", dynamic_sampling=True, max_refill_rounds=1)
    assert run["config"]["bf16"] == torch.cuda.is_bf16_supported() and run["config"]["activation_checkpointing"]
    assert run["rollout"]["backend"] == "hf" and run["budget"]["spent"]["steps"] == 2


@pytest.mark.skipif(not HAS_VLLM, reason="needs the vllm extra")
def test_vllm_colocate_rollouts(tiny_checkpoint, tmp_path):
    run = _run(tiny_checkpoint, tmp_path, backend="vllm", vllm_mode="colocate",
               vllm_gpu_memory_utilization=0.2)
    assert run["rollout"] == {"backend": "vllm", "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.2}
    assert run["budget"]["spent"]["completions"] == 16
