"""`prift eval` killed with a real SIGKILL in the middle of a run, then rerun into the same folder: it keeps the
samples already written, generates only the missing ones, and ends with the samples and metrics of an
uninterrupted run (sampling is seeded per chunk, so this is exact on CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prift.recipes.arithmetic import TASKS

data_dir = TASKS["arith"].data_dir


def eval_command(model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "prift", "eval", "--model", str(model), "--output_dir", str(out),
            "--benchmarks", f"arith={data_dir() / 'test.jsonl'}", "--limit", "48", "--n", "2", "--temperature", "1.0",
            "--max_tokens", "24", "--batch_size", "2", "--chunk_size", "1", "--seed", "11", "--progress", "false"]


def run_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}


def run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def samples(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "samples" / "arith.jsonl").read_text().splitlines()]
    return {(r["problem_id"], r["sample"]): (r["completion"], r["status"]) for r in rows}


@pytest.mark.slow
def test_sigkill_mid_eval_then_rerun_equals_an_uninterrupted_run(tmp_path, tiny_checkpoint):
    killed = tmp_path / "killed"
    child = subprocess.Popen(eval_command(tiny_checkpoint, killed), env=run_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    store = killed / "samples" / "arith.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and child.poll() is None:  # kill once a few chunks are on disk
        if store.is_file() and len(store.read_text().splitlines()) >= 6:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the eval finished before it could be killed: make it longer"
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    written = len(store.read_text().splitlines())
    assert 6 <= written < 96

    run(eval_command(tiny_checkpoint, killed))  # resume
    run(eval_command(tiny_checkpoint, tmp_path / "whole"))  # uninterrupted
    assert samples(killed) == samples(tmp_path / "whole")
    assert len(samples(killed)) == 96
    first, second = (json.loads((p / "results.json").read_text())["results"]["arith"]
                     for p in (killed, tmp_path / "whole"))
    assert first["metrics"] == second["metrics"]
