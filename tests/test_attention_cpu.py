"""`attn_implementation`: the kernel a user names reaches every model prift loads (SFT policy and live reference,
RL policy, eval's HF backend), is recorded, and a kernel that cannot run is an error naming the setting."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from prift.eval.backends import make_backend
from prift.models.loading import load_causal_lm
from prift.rl.config import PriftRLConfig
from prift.rl.train import run_rl

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_an_unknown_kernel_names_the_setting(tiny_checkpoint):
    with pytest.raises(ValueError, match="attn_implementation='fast_please' cannot be used"):
        load_causal_lm(str(tiny_checkpoint), attn_implementation="fast_please")


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash-attn is installed here")
def test_flash_attention_without_its_package_names_the_setting(tiny_checkpoint):
    with pytest.raises(ValueError, match="attn_implementation='flash_attention_2' cannot be used"):
        load_causal_lm(str(tiny_checkpoint), attn_implementation="flash_attention_2")


@pytest.mark.parametrize("kernel", ("eager", "sdpa"))
def test_sft_policy_runs_the_kernel(kernel, tmp_path, prift_cache, tiny_checkpoint, arith_jsonl,
                                                      sft_config):
    from prift.sft.train import run_sft

    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path, method="prift_mass", reference_mode="live",
                        attn_implementation=kernel, max_steps=1)
    run = json.loads((run_sft(config) / "run.json").read_text())
    assert run["attn_implementation"] == kernel


def test_live_reference_is_loaded_with_the_kernel(tmp_path, tiny_checkpoint, arith_jsonl, sft_config):
    from prift.core.provenance import RunRecord
    from prift.models.loading import load_tokenizer
    from prift.sft.train import _Setup

    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path, method="prift_mass", reference_mode="live",
                        reference_model=str(tiny_checkpoint), attn_implementation="eager")
    policy = load_causal_lm(str(tiny_checkpoint), attn_implementation="eager")
    reference = _Setup(config, policy, load_tokenizer(str(tiny_checkpoint)), RunRecord("sft", config)).reference_model(allow_policy=False)
    assert reference is not policy and reference.config._attn_implementation == "eager"


def test_eager_and_sdpa_score_alike(tiny_checkpoint):
    ids = torch.randint(0, 300, (2, 12))
    logits = {kernel: load_causal_lm(str(tiny_checkpoint), "float32", attn_implementation=kernel)(ids).logits
              for kernel in ("eager", "sdpa")}
    torch.testing.assert_close(logits["eager"], logits["sdpa"], rtol=1e-4, atol=1e-5)


def test_eval_hf_backend_runs_and_describes_the_kernel(tiny_checkpoint):
    backend = make_backend("hf", str(tiny_checkpoint), dtype="float32", device="cpu", attn_implementation="eager")
    assert backend.model.config._attn_implementation == "eager"
    assert backend.describe()["attn_implementation"] == "eager"


def test_rl_policy_runs_the_kernel(tmp_path, tiny_checkpoint):
    config = PriftRLConfig(model_name_or_path=str(tiny_checkpoint), dataset="recipes/data/gsm8k_train_sample.jsonl",
                           output_dir=str(tmp_path / "rl"), rewards=["math_accuracy"], num_generations=4,
                           per_device_train_batch_size=4, max_completion_length=4, max_samples=4, budget=1,
                           save_strategy="no", disable_tqdm=True, dataloader_pin_memory=False,
                           attn_implementation="eager")
    run = json.loads((run_rl(config) / "run.json").read_text())
    assert run["attn_implementation"] == "eager"
