"""`prift sft` under `accelerate launch` with 2 CPU processes (gloo) equals a 1-process run with the same global
batch, padded or packed, and the reference-cache build is split between the ranks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from launch import accelerate_launch, needs_accelerate, prift_command, run_command
from safetensors.torch import load_file

pytestmark = [needs_accelerate, pytest.mark.slow]


def _sft_args(model: Path, data: Path, out: Path, per_device: int, packing: bool = False) -> list[str]:
    # packed: ~40-token rows in 96-token sequences, two rows to a sequence
    packed = ["--packing", "true", "--max_length", "96"] if packing else []
    return ["sft", "--model_name_or_path", str(model), "--dataset", str(data), "--method", "prift_mass",
            "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", str(per_device),
            "--learning_rate", "1e-3", "--lr_scheduler_type", "constant", "--logging_steps", "1",
            "--save_strategy", "no", "--disable_tqdm", "true", "--seed", "7", "--reference_shard_rows", "2",
            "--dataloader_pin_memory", "false", *packed]


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_two_processes_equal_one_with_the_same_global_batch(packing, tmp_path, tiny_checkpoint, arith_rows,
                                                            write_jsonl):
    data = write_jsonl(tmp_path / "data.jsonl", [*arith_rows, *arith_rows[:2]])  # 8 rows
    per_device = 1 if packing else 2  # sequences per rank: a packed sequence holds two rows
    # torchrun-style launch of 2 processes; without a GPU prift's config switches them to gloo DDP on the CPU
    run_command(accelerate_launch(2) + _sft_args(tiny_checkpoint, data, tmp_path / "two", per_device, packing),
                tmp_path / "cache-two")
    run_command(prift_command() + _sft_args(tiny_checkpoint, data, tmp_path / "one", 2 * per_device, packing),
                tmp_path / "cache-one")

    two, one = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("two", "one"))
    start = load_file(str(tiny_checkpoint / "model.safetensors"))
    assert two.keys() == one.keys()
    moved = max((one[k] - start[k]).abs().max().item() for k in one)
    assert moved > 1e-4  # training happened, so equality below is not trivial
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=2e-6, rtol=1e-5)

    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["world_size"] == 2
    assert ("packing" in run["data"]) == packing and (not packing or run["data"]["packing"]["sequences"] == 4)
    build = run["reference_cache_build"]  # rank 0's share: shards 0, 2 of the 4 two-row shards
    assert (build["rank"], build["world_size"], build["shards"], build["built_shards"]) == (0, 2, 4, 2)
    caches = list((tmp_path / "cache-two" / "reference-signals").iterdir())
    assert len(caches) == 1 and len(list(caches[0].glob("shard-*.safetensors"))) == 4
    # the split cache holds the same signals as the one built by a single process
    single = next((tmp_path / "cache-one" / "reference-signals").iterdir())
    for shard in sorted(caches[0].glob("shard-*.safetensors")):
        a, b = load_file(str(shard)), load_file(str(single / shard.name))
        for key in a:
            torch.testing.assert_close(a[key], b[key])
    shutil.rmtree(tmp_path / "two")
