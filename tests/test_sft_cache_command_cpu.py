"""`prift cache` builds the reference-signal cache of an SFT setup without training; a later `prift sft` with the
same settings reuses it (builds nothing) and trains to the same weights as a run that built its own cache."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from prift import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sft_args(model, data, *extra: str) -> list[str]:
    return ["--model_name_or_path", str(model), "--dataset", str(data), "--method", "prift_mass", "--max_steps", "2",
            "--per_device_train_batch_size", "2", "--save_strategy", "no", "--disable_tqdm", "true",
            "--report_to", "none", "--dataloader_pin_memory", "false", "--reference_shard_rows", "2", *extra]


def test_cache_command_builds_what_sft_then_reuses(tmp_path, tiny_checkpoint, arith_jsonl, monkeypatch, capsys):
    monkeypatch.setenv("PRIFT_CACHE_DIR", str(tmp_path / "prebuilt"))
    assert main(["cache", *sft_args(tiny_checkpoint, arith_jsonl, "--output_dir", str(tmp_path / "unused"))]) == 0
    printed = capsys.readouterr().out
    assert "reference cache built" in printed
    caches = list((tmp_path / "prebuilt" / "reference-signals").iterdir())
    rows = sum(1 for line in arith_jsonl.read_text().splitlines() if line.strip())
    assert len(caches) == 1 and len(list(caches[0].glob("shard-*.safetensors"))) == -(-rows // 2)
    assert not (tmp_path / "unused").exists()  # nothing trained, no output folder

    assert main(["cache", *sft_args(tiny_checkpoint, arith_jsonl, "--method", "prift_prob")]) == 0
    assert "reference cache reused" in capsys.readouterr().out  # the method does not change the cache

    assert main(["sft", *sft_args(tiny_checkpoint, arith_jsonl, "--output_dir", str(tmp_path / "a"))]) == 0
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert "reference_cache_build" not in record  # reused, not built
    assert record["fingerprints"]["reference_cache"] == caches[0].name

    monkeypatch.setenv("PRIFT_CACHE_DIR", str(tmp_path / "own"))  # a run that builds its own cache
    assert main(["sft", *sft_args(tiny_checkpoint, arith_jsonl, "--output_dir", str(tmp_path / "b"))]) == 0
    a, b = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("a", "b"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
