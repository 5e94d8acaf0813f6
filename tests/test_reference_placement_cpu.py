"""Placement of the live reference (`reference_placement`): per rank under 2-process gloo DDP it scores like the
reference cache of a single process (same weights after training on its signals); the settings that cannot apply are
errors. The ZeRO-3 sharded placement is compared in tests/test_deepspeed_cpu.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from launch import accelerate_launch, needs_accelerate, prift_command, run_command
from safetensors.torch import load_file

from prift.rl.config import PriftRLConfig
from prift.sft.sources import place_frozen


def _sft_args(model: Path, data: Path, out: Path, per_device: int, mode: str) -> list[str]:
    return ["sft", "--model_name_or_path", str(model), "--dataset", str(data), "--method", "prift_prob",
            "--reference_mode", mode, "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size",
            str(per_device), "--optim", "sgd", "--learning_rate", "0.5", "--lr_scheduler_type", "constant",
            "--logging_steps", "1", "--save_strategy", "no", "--disable_tqdm", "true", "--seed", "7",
            "--dataloader_pin_memory", "false"]


@pytest.mark.slow
@needs_accelerate
def test_per_rank_reference_under_ddp_equals_the_cache_of_one_process(tmp_path, tiny_checkpoint, arith_rows,
                                                                       write_jsonl):
    data = write_jsonl(tmp_path / "data.jsonl", [*arith_rows, *arith_rows[:2]])  # 8 rows
    done = run_command(accelerate_launch(2) + _sft_args(tiny_checkpoint, data, tmp_path / "two", 2, "live"),
                       tmp_path / "c2")
    assert "[prift] reference/live: per rank, on cpu" in done.stdout
    run_command(prift_command() + _sft_args(tiny_checkpoint, data, tmp_path / "one", 4, "cache"), tmp_path / "c1")

    two, one = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("two", "one"))
    start = load_file(str(tiny_checkpoint / "model.safetensors"))
    assert max((one[k] - start[k]).abs().max().item() for k in one) > 1e-4  # the reference's weights moved them
    for name in one:  # SGD: the weights differ only by the rounding of DDP's gradient all-reduce
        torch.testing.assert_close(two[name], one[name], atol=1e-6, rtol=1e-5)


def test_sharded_placement_needs_zero3():
    without_deepspeed = SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=None), device=torch.device("cpu"))
    with pytest.raises(ValueError, match="sharded needs DeepSpeed ZeRO-3.*no DeepSpeed"):
        place_frozen(torch.nn.Linear(2, 2), without_deepspeed, "sharded")
    with pytest.raises(ValueError, match="unknown value 'everywhere'"):
        place_frozen(torch.nn.Linear(2, 2), without_deepspeed, "everywhere")
    model = torch.nn.Linear(2, 2)
    assert place_frozen(model, without_deepspeed, "auto") == (model, None) and not model.weight.requires_grad


def test_placement_setting_is_checked(tmp_path, sft_config, tiny_checkpoint, arith_jsonl):
    with pytest.raises(ValueError, match=r"reference_placement: unknown value 'gpu0'; valid: auto, per_rank, sharded"):
        sft_config(tiny_checkpoint, arith_jsonl, tmp_path, reference_placement="gpu0")
    with pytest.raises(ValueError, match="TRL places the RL stage's KL reference"):
        PriftRLConfig(output_dir=str(tmp_path), reference_placement="per_rank")
