"""GPU checks of the SFT stage (need CUDA; skipped elsewhere): bf16 training, the on-the-fly reference, and cached
== live reference signals on the device."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def gpu_config(tmp_path, monkeypatch):
    from prift.models.tiny import save_tiny_checkpoint
    from prift.sft.config import PriftSFTConfig

    monkeypatch.setenv("PRIFT_CACHE_DIR", str(tmp_path / "cache"))
    tiny = save_tiny_checkpoint(tmp_path / "tiny", arch="llama", seed=0)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What is {a} + {a}?", "completion": f"{a} + {a} = {2 * a}."})
                            + "\n" for a in range(8)))

    def make(method: str, **overrides):
        fields = dict(model_name_or_path=str(tiny), dataset=str(data), method=method, max_steps=3,
                      per_device_train_batch_size=4, logging_steps=1, save_strategy="no", disable_tqdm=True,
                      output_dir=str(tmp_path / method / overrides.get("reference_mode", "cache")))
        return PriftSFTConfig(**{**fields, **overrides})

    return make


def test_gpu_defaults_to_bf16(gpu_config):
    config = gpu_config("nll")
    assert config.bf16 == torch.cuda.is_bf16_supported()


@pytest.mark.parametrize("method", ["nll", "dft", "prift_prob", "prift_mass"])
@pytest.mark.parametrize("mode", ["cache", "live"])
def test_bf16_training_runs_on_gpu(gpu_config, method, mode):
    from prift.sft.train import run_sft

    out = run_sft(gpu_config(method, reference_mode=mode))
    run = json.loads((out / "run.json").read_text())
    losses = [entry["loss"] for entry in run["log_history"] if "loss" in entry]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))


def test_cached_equals_live_signals_on_gpu(gpu_config):
    from prift.models.loading import load_causal_lm
    from prift.sft.signals import signals_from_logits
    from prift.sft.sources import model_signals

    config = gpu_config("prift_mass")
    model = load_causal_lm(config.model_name_or_path, "bfloat16", "cuda")
    ids = torch.randint(0, model.config.vocab_size, (2, 16), device="cuda")
    labels = ids.clone()
    labels[:, :4] = -100
    streamed = model_signals(model, ids, torch.ones_like(ids), labels, ("logp", "mass", "ent20"), vocab_chunk=64)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, :-1]
    full = signals_from_logits(logits, labels[:, 1:], ("logp", "mass", "ent20"))
    for name in full:
        torch.testing.assert_close(streamed[name], full[name], atol=2e-2, rtol=2e-2)
