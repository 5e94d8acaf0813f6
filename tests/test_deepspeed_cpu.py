"""`prift sft` under DeepSpeed ZeRO-2 and ZeRO-3 on the CPU (`accelerate launch` with the recipes' configs, 2 gloo
processes) ends with the weights and losses of a plain 1-process run with the same global batch, also with a live
reference, sharded across the processes (ZeRO-3's default) or whole on each, and under ZeRO-2 with an EMA source.

Needs the `deepspeed` package and a C++ compiler: DeepSpeed's CPU backend JIT-builds its shared-memory
communication op (`deepspeed_shm_comm`, ~25 s on 2 cores, once; cached under $TORCH_EXTENSIONS_DIR) when it starts,
and fails without one. oneCCL is not needed: without it DeepSpeed communicates over gloo.

Tolerance: ZeRO reduces flattened gradient buckets in another order than one process's backward sums them, so the
gradients differ by float32 rounding. Plain SGD keeps that difference at rounding size in the weights (Adam divides
near-zero gradients by their own magnitude and turned it into 2.6e-6 on one element); after 2 SGD steps that moved
the weights by 5e-4 (prift_prob) and 9e-2 (nll), they differed by at most 1.5e-8, so atol is 1e-6, and the logged
losses are compared to 1e-5.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from launch import accelerate_launch, needs_accelerate, prift_command, run_command
from safetensors.torch import load_file

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "accelerate"
pytestmark = [
    pytest.mark.slow,
    needs_accelerate,
    pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed is not installed"),
    pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None,
                       reason="DeepSpeed's CPU backend compiles its communication op at start-up; no C++ compiler"),
]
LIVE = ("--method", "prift_prob", "--reference_mode", "live")
EMA = ("--method", "prift_prob", "--source", "ema", "--ema_rho", "0.5")


def _sft_args(model: Path, data: Path, out: Path, per_device: int, method: tuple[str, ...]) -> list[str]:
    return ["sft", "--model_name_or_path", str(model), "--dataset", str(data), *method, "--output_dir", str(out),
            "--max_steps", "2", "--per_device_train_batch_size", str(per_device), "--optim", "sgd",
            "--learning_rate", "0.5", "--lr_scheduler_type", "constant", "--logging_steps", "1", "--save_strategy", "no", "--disable_tqdm",
            "true", "--seed", "7", "--dataloader_pin_memory", "false"]


def _losses(out: Path) -> list[float]:
    return [h["loss"] for h in json.loads((out / "run.json").read_text())["log_history"] if "loss" in h]


@pytest.fixture(scope="module")
def data(tmp_path_factory, arith_rows, write_jsonl) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("ds-data") / "data.jsonl", [*arith_rows, *arith_rows[:2]])  # 8 rows


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory, tiny_checkpoint, data):
    """`plain_run(method) -> output folder` of the 1-process run with the same global batch (run once per method)."""
    runs: dict[tuple[str, ...], Path] = {}

    def run(method: tuple[str, ...]) -> Path:
        if method not in runs:
            out = tmp_path_factory.mktemp("plain")
            run_command(prift_command() + _sft_args(tiny_checkpoint, data, out / "run", 4, method), out / "cache")
            runs[method] = out / "run"
        return runs[method]

    return run


@pytest.mark.parametrize(("zero", "method", "placement"), [
    ("zero2", ("--method", "nll"), None),
    ("zero3", ("--method", "nll"), None),
    ("zero3", ("--method", "prift_prob"), None),  # the reference cache is built from the ZeRO-3-loaded start
    ("zero3", LIVE, "auto"),  # sharded
    ("zero3", LIVE, "per_rank"),
    ("zero2", EMA, None),  # the EMA is placed (whole, per rank) and updated from ZeRO-2's full parameters
])
def test_zero_run_equals_the_plain_run(tmp_path, tiny_checkpoint, data, plain_run, zero, method, placement):
    options = (*method, "--reference_placement", placement) if placement else method
    launch = accelerate_launch(2, "--config_file", str(CONFIGS / f"{zero}.yaml"))
    done = run_command(launch + _sft_args(tiny_checkpoint, data, tmp_path / "zero", 2, options), tmp_path / "cache",
                       DS_ACCELERATOR="cpu")
    if placement:
        where = "sharded across 2 processes (ZeRO-3)" if placement == "auto" else "per rank, on cpu"
        assert f"[prift] reference/live: {where}" in done.stdout
    if method == EMA:
        assert "[prift] ema: per rank, on cpu" in done.stdout

    plain = plain_run(method)
    weights = load_file(str(tmp_path / "zero" / "model.safetensors"))
    expected = load_file(str(plain / "model.safetensors"))
    start = load_file(str(tiny_checkpoint / "model.safetensors"))
    assert weights.keys() == expected.keys()
    assert max((expected[k] - start[k]).abs().max().item() for k in expected) > 1e-4  # it trained
    for name in expected:
        torch.testing.assert_close(weights[name], expected[name], atol=1e-6, rtol=1e-5)
    assert _losses(tmp_path / "zero") == pytest.approx(_losses(plain), rel=1e-5)
