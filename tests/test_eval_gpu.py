"""GPU checks of the generation backends (skipped without CUDA; the vLLM one also without vLLM): HF generate on
the GPU and vLLM agree with the CPU HF backend on greedy completions of a tiny model, through `evaluate`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from prift.eval.config import EvalConfig
from prift.eval.runner import evaluate
from prift.models.tiny import save_tiny_checkpoint

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vLLM (prift[vllm])")
ROWS = [{"question": f"What is {a} + {b}?", "answer": f"#### {a + b}"} for a, b in [(1, 2), (30, 12), (7, 8)]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-eval")
    (root / "data" / "gsm8k").mkdir(parents=True)
    (root / "data" / "gsm8k" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return save_tiny_checkpoint(root / "tiny", arch="llama", seed=0), root


def _completions(config: EvalConfig) -> list[str]:
    evaluate(config)
    lines = (Path(config.output_dir) / "samples" / "gsm8k.jsonl").read_text().splitlines()
    return [json.loads(line)["completion"] for line in sorted(lines)]


def _config(model, root, name, **overrides) -> EvalConfig:
    return EvalConfig(model_name_or_path=str(model), benchmarks="gsm8k", data_dir=str(root / "data"), max_tokens=12,
                      dtype="float32", output_dir=str(root / name), progress=False, **overrides)


@needs_cuda
def test_hf_backend_on_gpu_matches_cpu(setup):
    model, root = setup
    cpu = _completions(_config(model, root, "cpu", device="cpu"))
    gpu = _completions(_config(model, root, "gpu", device="cuda"))
    assert sum(a == b for a, b in zip(cpu, gpu, strict=True)) >= len(cpu) - 1  # fp32 kernels may differ on a tie


@needs_cuda
@needs_vllm
def test_vllm_backend_matches_hf(setup):
    model, root = setup
    hf = _completions(_config(model, root, "hf", device="cuda"))
    vllm = _completions(_config(model, root, "vllm", backend="vllm", vllm_gpu_memory_utilization=0.3))
    results = json.loads((root / "vllm" / "results.json").read_text())
    assert results["model"]["backend"] == "vllm" and results["model"]["vllm"]
    assert sum(a == b for a, b in zip(hf, vllm, strict=True)) >= len(hf) - 1
