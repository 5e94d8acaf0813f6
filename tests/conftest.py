"""Shared fixtures for the CPU SFT tests: a tiny checkpoint, arithmetic prompt/completion rows, a private cache
root, and factories for small `PriftSFTConfig`s and for trainers that tokenize data the way `run_sft` does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

_PROBLEMS = ((47, "+", 38), (12, "*", 5), (93, "-", 17), (20, "+", 22), (7, "*", 8), (61, "+", 14))


def _solve(a: int, op: str, b: int) -> int:
    return {"+": a + b, "-": a - b, "*": a * b}[op]


@pytest.fixture(scope="session")
def arith_rows() -> tuple[dict, ...]:
    """Six prompt/completion string rows (copy a row before changing it: the tuple is shared by the session)."""
    return tuple(
        {"prompt": f"What is {a} {op} {b}?",
         "completion": f"{a} {op} {b} = {_solve(a, op, b)}. The answer is \\boxed{{{_solve(a, op, b)}}}."}
        for a, op, b in _PROBLEMS
    )


@pytest.fixture(scope="session")
def write_jsonl():
    """`write_jsonl(path, rows) -> path`: one JSON object per line."""

    def write(path, rows) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return path

    return write


@pytest.fixture(scope="session")
def arith_jsonl(tmp_path_factory, arith_rows, write_jsonl) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "arith.jsonl", arith_rows)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny random Qwen2 checkpoint (vocab 384) with a trained BPE tokenizer and a ChatML template."""
    from prift.models.tiny import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "qwen2-seed0", arch="qwen2", seed=0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny models on one thread: they gain nothing from more, and on a busy 2-core machine the
    thread pool's spin-waiting made a 3-step run ~100x slower (3 s instead of 0.03 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def prift_cache(tmp_path, monkeypatch) -> Path:
    """Point $PRIFT_CACHE_DIR at a fresh folder so no test writes to ~/.cache."""
    root = tmp_path / "prift-cache"
    monkeypatch.setenv("PRIFT_CACHE_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def sft_config():
    """`sft_config(model, dataset, output_dir, **overrides) -> PriftSFTConfig`, sized for a CPU test."""
    from prift.sft.config import PriftSFTConfig

    def make(model, dataset, output_dir, **overrides):
        fields = dict(
            model_name_or_path=str(model), dataset=str(dataset), method="nll", output_dir=str(output_dir),
            max_steps=3, per_device_train_batch_size=2, logging_steps=1, save_strategy="no", disable_tqdm=True,
            report_to="none", dataloader_pin_memory=False,
        )
        fields.update(overrides)
        return PriftSFTConfig(**fields)

    return make


@pytest.fixture(scope="session")
def prepare_trainer():
    """`prepare_trainer(config) -> PriorityTrainer` built as `run_sft` builds it (plain online source, no reference
    yet); its `train_dataset` is the TRL-tokenized data, its `model` the freshly loaded start checkpoint."""
    from prift.models.loading import load_causal_lm, load_tokenizer
    from prift.sft.data import load_sft_dataset
    from prift.sft.sources import OnlineSource
    from prift.sft.trainer import PriorityTrainer

    def make(config):
        tokenizer = load_tokenizer(config.model_name_or_path)
        model = load_causal_lm(config.model_name_or_path, config.dtype)
        dataset, _ = load_sft_dataset(config.dataset, chat_template=config.use_chat_template,
                                      messages_loss=config.messages_loss)
        return PriorityTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                               method=config.resolved_method(), source=OnlineSource())

    return make


@pytest.fixture(scope="module")
def arith_benchmark(tmp_path_factory, write_jsonl) -> Path:
    """A 2-row NAME=PATH math benchmark file (question + answer)."""
    rows = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(2)]
    return write_jsonl(tmp_path_factory.mktemp("bench") / "arith.jsonl", rows)


@pytest.fixture
def free_bytes(monkeypatch):
    """`free_bytes(folder, n)`: shutil.disk_usage (the OS call) reports n free bytes for `folder` and below."""
    real = shutil.disk_usage

    def limit(folder: Path, n: int) -> None:
        def fake(path):
            usage = real(path)
            return usage._replace(free=n) if Path(path).resolve().is_relative_to(folder.resolve()) else usage

        monkeypatch.setattr(shutil, "disk_usage", fake)

    return limit


@pytest.fixture(scope="session")
def other_reference(tmp_path_factory):
    """A reference that is not the start checkpoint (same tokenizer, other weights): with the start checkpoint as
    reference, rho1's excess loss is 0 on every token and its top-k is decided by ties."""
    from prift.models.tiny import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny-other") / "qwen2-seed1", arch="qwen2", seed=1)
