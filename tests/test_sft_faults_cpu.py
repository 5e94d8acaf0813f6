"""Faults in the SFT stage: a run killed with SIGKILL mid-training (after checkpoint-2 of 20) and rerun ends bit-equal to an uninterrupted run;
an unwritable output dir fails before any work with a message naming it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file


def _command(model: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "prift", "sft", "--model_name_or_path", str(model), "--dataset", str(data),
            "--method", "prift_prob", "--output_dir", str(out), "--max_steps", "20", "--per_device_train_batch_size",
            "2", "--learning_rate", "1e-3", "--save_strategy", "steps", "--save_steps", "1", "--logging_steps", "1",
            "--disable_tqdm", "true", "--seed", "3", "--dataloader_pin_memory", "false", "--data_seed", "3"]


def _env(cache: Path) -> dict:
    return {**os.environ, "PRIFT_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path, tiny_checkpoint, arith_jsonl):
    cache = tmp_path / "cache"
    subprocess.run(_command(tiny_checkpoint, arith_jsonl, tmp_path / "clean"), env=_env(cache), check=True,
                   capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_command(tiny_checkpoint, arith_jsonl, killed), env=_env(cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (killed / "checkpoint-2" / "trainer_state.json").is_file():  # 18 steps and saves still to go
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint-2 in time"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.safetensors").exists()  # it really died before finishing

    rerun = subprocess.run(_command(tiny_checkpoint, arith_jsonl, killed), env=_env(cache), capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from" in rerun.stdout
    clean, resumed = load_file(str(tmp_path / "clean" / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    for name in clean:
        assert torch.equal(clean[name], resumed[name]), name


def test_unwritable_output_dir_fails_before_any_work(tmp_path, tiny_checkpoint, arith_jsonl, sft_config, prift_cache):
    from prift.sft.train import run_sft

    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="file-not-dir"):
        run_sft(sft_config(tiny_checkpoint, arith_jsonl, blocker / "out", method="prift_prob"))
    assert not prift_cache.exists()  # no reference cache was built: it failed before the work


def test_nonfinite_loss_steps_are_skipped_and_reported(tmp_path, tiny_checkpoint, arith_jsonl, sft_config,
                                                      prift_cache):
    """power with alpha = nan makes every weight (so loss and gradient) NaN: no update may touch the weights."""
    import json

    from prift.sft.train import run_sft

    out = run_sft(sft_config(tiny_checkpoint, arith_jsonl, tmp_path / "nan", method="power",
                             rule_params='{"alpha": NaN}', max_steps=2, learning_rate=1e-2))
    run = json.loads((out / "run.json").read_text())
    assert run["skipped_nonfinite_steps"] == 2
    start, end = load_file(str(tiny_checkpoint / "model.safetensors")), load_file(str(out / "model.safetensors"))
    for name in start:
        assert torch.equal(start[name], end[name]), name


def test_finite_steps_are_not_skipped(tmp_path, tiny_checkpoint, arith_jsonl, sft_config, prift_cache):
    import json

    from prift.sft.train import run_sft

    out = run_sft(sft_config(tiny_checkpoint, arith_jsonl, tmp_path / "ok", method="power",
                             rule_params='{"alpha": 0.5}', max_steps=2, learning_rate=1e-2))
    assert json.loads((out / "run.json").read_text())["skipped_nonfinite_steps"] == 0


def test_resume_point_skips_a_checkpoint_killed_while_saving(tmp_path):
    from prift.core.checkpoints import last_complete_checkpoint

    for step, files in ((2, ("model.safetensors", "trainer_state.json", "ema_model.safetensors")),
                        (4, ("model.safetensors", "trainer_state.json")),  # complete for TRL, not for an EMA run
                        (6, ("model.safetensors",))):  # killed before trainer_state.json
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("x")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert last_complete_checkpoint(tmp_path, ("ema_model.safetensors",)) == str(tmp_path / "checkpoint-2")
    assert last_complete_checkpoint(tmp_path / "missing") is None
    assert (tmp_path / "checkpoint-6").is_dir()  # left in place, not deleted
