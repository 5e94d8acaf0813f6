"""The reference-signal cache: reuse without work, a new key for every changed input, and resuming a killed build
with only the missing shards computed (and the same result as a clean build)."""

from __future__ import annotations

import dataclasses
import errno
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from prift.core.diskspace import DiskSpaceError
from prift.sft.reference_cache import ReferenceCache
from prift.sft.signals import SIGNAL_NAMES
from prift.sft.train import reference_cache_for

SHARD_ROWS = 2  # 6 rows -> 3 shards

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def prepared(one_torch_thread, tmp_path_factory, tiny_checkpoint, arith_jsonl, sft_config, prepare_trainer):
    """(config, tokenizer, TRL-tokenized dataset) as `run_sft` sees them."""
    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path_factory.mktemp("out"), method="prift_prob")
    trainer = prepare_trainer(config)
    assert len(trainer.train_dataset) == 6
    return config, trainer.processing_class, trainer.train_dataset


class CountingBackbone:
    """Counts (and optionally fails) the reference model's backbone forwards: a hook on the *input* model, so the
    cache under test runs unchanged. `fail_on=n` raises on the n-th forward, like a process killed mid-build."""

    def __init__(self, model, fail_on: int | None = None):
        self.calls, self.fail_on = 0, fail_on
        model.base_model.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise KeyboardInterrupt("simulated kill")


def _cache(prepared, root, **changes) -> ReferenceCache:
    config, tokenizer, dataset = prepared
    key = reference_cache_for(config, tokenizer, dataset, config.model_name_or_path).key
    return ReferenceCache(root, dataclasses.replace(key, **changes), shard_rows=SHARD_ROWS)


def _build(cache, prepared, model_path=None, fail_on=None):
    config, tokenizer, dataset = prepared
    model = AutoModelForCausalLM.from_pretrained(model_path or config.model_name_or_path)
    counter = CountingBackbone(model, fail_on)
    # batch_size = shard_rows: one backbone forward per shard
    stats = cache.build(model, dataset, batch_size=SHARD_ROWS, pad_token_id=tokenizer.pad_token_id, progress=False)
    return stats, counter.calls


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b) == set(SIGNAL_NAMES)
    for name in SIGNAL_NAMES:
        assert len(a[name]) == len(b[name]) == 6
        for x, y in zip(a[name], b[name], strict=True):
            np.testing.assert_array_equal(x, y)


def test_second_build_does_no_work(prepared, tmp_path):
    cache = _cache(prepared, tmp_path)
    assert not cache.is_complete()
    stats, calls = _build(cache, prepared)
    assert (stats["shards"], stats["built_shards"], calls) == (3, 3, 3)
    assert stats["tokens_scored"] == sum(len(ids) for ids in prepared[2]["input_ids"])
    first = cache.load()
    again = _cache(prepared, tmp_path)
    assert again.dir == cache.dir and again.is_complete()
    stats, calls = _build(again, prepared)
    assert (stats["built_shards"], stats["tokens_scored"], calls) == (0, 0, 0)
    _same(first, again.load())


def test_cached_values_line_up_with_labels(prepared, tmp_path):
    """Entry t scores labels[t]: 0 at the first position and wherever labels == -100, a log-prob < 0 elsewhere."""
    cache = _cache(prepared, tmp_path)
    _build(cache, prepared)
    attached = cache.attach(prepared[2])
    for row in attached:
        labels = np.asarray(row["labels"])
        logp = np.asarray(row["ref_logp"])
        assert logp.shape == labels.shape and logp[0] == 0
        assert (logp[labels == -100] == 0).all() and (logp[labels != -100] < 0).all()


def _tokenized(prepare_trainer, sft_config, tiny_checkpoint, tmp_path, data, **overrides):
    config = sft_config(tiny_checkpoint, data, tmp_path / "out", method="prift_prob", **overrides)
    trainer = prepare_trainer(config)
    return config, trainer.processing_class, trainer.train_dataset


def test_changed_data_row_gives_new_key(prepared, tmp_path, tiny_checkpoint, arith_rows, write_jsonl, sft_config,
                                        prepare_trainer):
    rows = [dict(row) for row in arith_rows]
    rows[3]["completion"] = rows[3]["completion"].replace("42", "43")
    changed = _tokenized(prepare_trainer, sft_config, tiny_checkpoint, tmp_path,
                         write_jsonl(tmp_path / "changed.jsonl", rows))
    config, tokenizer, dataset = changed
    key = reference_cache_for(config, tokenizer, dataset, config.model_name_or_path).key
    base = _cache(prepared, tmp_path)
    assert key.data != base.key.data and key.digest != base.key.digest
    _build(base, prepared)
    fresh = ReferenceCache(tmp_path, key, shard_rows=SHARD_ROWS)
    assert fresh.dir != base.dir and not fresh.is_complete()
    stats, calls = _build(fresh, changed)
    assert stats["built_shards"] == 3 and calls == 3


def test_changed_max_length_gives_new_key(prepared, tmp_path, tiny_checkpoint, arith_jsonl, sft_config,
                                          prepare_trainer):
    config, tokenizer, dataset = prepared
    base = reference_cache_for(config, tokenizer, dataset, config.model_name_or_path).key
    longest = max(len(ids) for ids in dataset["input_ids"])
    # a max_length above every row: the same tokens, still a different key
    roomy = _tokenized(prepare_trainer, sft_config, tiny_checkpoint, tmp_path, arith_jsonl, max_length=longest + 100)
    assert roomy[2]["input_ids"] == dataset["input_ids"]
    roomy_key = reference_cache_for(roomy[0], roomy[1], roomy[2], config.model_name_or_path).key
    assert roomy_key.data == base.data and roomy_key.digest != base.digest
    # a max_length that truncates: different tokens and a different key again
    short = _tokenized(prepare_trainer, sft_config, tiny_checkpoint, tmp_path, arith_jsonl, max_length=longest - 5)
    short_key = reference_cache_for(short[0], short[1], short[2], config.model_name_or_path).key
    assert short_key.data != base.data and len({base.digest, roomy_key.digest, short_key.digest}) == 3


def test_changed_reference_weights_give_new_key_and_values(prepared, tmp_path):
    from prift.models.tiny import save_tiny_checkpoint

    config, tokenizer, dataset = prepared
    other = save_tiny_checkpoint(tmp_path / "other-seed", seed=1)
    base = reference_cache_for(config, tokenizer, dataset, config.model_name_or_path)
    changed = reference_cache_for(config, tokenizer, dataset, str(other))
    assert changed.key.tokenizer == base.key.tokenizer and changed.key.data == base.key.data
    assert changed.key.reference != base.key.reference and changed.key.digest != base.key.digest
    first, second = (ReferenceCache(tmp_path / "cache", c.key, shard_rows=SHARD_ROWS) for c in (base, changed))
    _build(first, prepared)
    stats, calls = _build(second, prepared, model_path=other)
    assert stats["built_shards"] == 3 and calls == 3
    assert not np.allclose(first.load()["logp"][0], second.load()["logp"][0])


def test_killed_build_resumes_with_only_missing_shards(prepared, tmp_path):
    clean = _cache(prepared, tmp_path / "clean")
    _build(clean, prepared)
    killed = _cache(prepared, tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        _build(killed, prepared, fail_on=2)  # dies while scoring the second shard
    assert not killed.is_complete()
    assert sorted(p.name for p in killed.dir.glob("shard-*")) == ["shard-00000.safetensors"]
    assert not list(killed.dir.glob(".*tmp")), "no half-written shard is left behind"
    with pytest.raises(FileNotFoundError):
        killed.load()
    stats, calls = _build(killed, prepared)
    assert (stats["built_shards"], calls) == (2, 2)
    assert killed.is_complete()
    _same(killed.load(), clean.load())


def test_lost_shard_of_incomplete_cache_is_rebuilt(prepared, tmp_path):
    cache = _cache(prepared, tmp_path)
    _build(cache, prepared)
    expected = cache.load()
    (cache.dir / "shard-00002.safetensors").unlink()
    meta = json.loads(cache.meta_path.read_text())
    cache.meta_path.write_text(json.dumps({**meta, "complete": False}))
    assert not cache.is_complete()
    stats, calls = _build(cache, prepared)
    assert (stats["built_shards"], calls) == (1, 1)
    _same(cache.load(), expected)


def test_cache_is_keyed_by_every_input(prepared):
    """Each key field on its own changes the digest (reference, dtype, tokenizer, template, max length, data,
    signal names)."""
    config, tokenizer, dataset = prepared
    key = reference_cache_for(config, tokenizer, dataset, config.model_name_or_path).key
    changes = dict(reference="x", dtype=str(torch.bfloat16), tokenizer="x", chat_template="x", max_length=7,
                   data="x", signals=("logp",))
    digests = {name: dataclasses.replace(key, **{name: value}).digest for name, value in changes.items()}
    assert key.digest not in digests.values() and len(set(digests.values())) == len(changes)


def test_a_change_to_the_signal_code_gives_a_new_key(prepared, monkeypatch):
    from prift.sft import reference_cache, sources

    config, tokenizer, dataset = prepared
    key = reference_cache_for(config, tokenizer, dataset, config.model_name_or_path).key
    before = key.digest
    source = inspect.getsource(sources.model_signals)
    real = inspect.getsource
    reference_cache.signal_code_version.cache_clear()
    monkeypatch.setattr(inspect, "getsource", lambda obj: real(obj).replace("[:, :-1]", "[:, 1:]")
                        if obj is sources.model_signals else real(obj))  # an edit of the reference's forward path
    assert "[:, :-1]" in source and key.digest != before
    reference_cache.signal_code_version.cache_clear()
    monkeypatch.undo()
    assert key.digest == before


def test_a_hub_reference_is_keyed_by_its_cached_commit(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from prift.sft.reference_cache import checkpoint_fingerprint

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # read when snapshot_download is called
    assert checkpoint_fingerprint("org/model") == "hub:org/model@unknown"  # nothing cached yet
    repo = tmp_path / "models--org--model"
    for commit in ("a" * 40, "b" * 40):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        assert checkpoint_fingerprint("org/model") == f"hub:org/model@{commit}"


def test_too_little_space_fails_before_any_scoring(prepared, tmp_path, free_bytes):
    dataset = prepared[2]
    tokens = sum(len(ids) for ids in dataset["input_ids"])
    need = tokens * 4 * len(SIGNAL_NAMES) + len(dataset) * 8  # a float32 per token and signal, an int64 per row
    cache = _cache(prepared, tmp_path)
    free_bytes(tmp_path, need - 1)
    with pytest.raises(DiskSpaceError) as err:
        _build(cache, prepared)
    assert "reference_cache_dir" in str(err.value) and f"({need} bytes)" in str(err.value)
    assert not list(cache.dir.glob("shard-*"))
    free_bytes(tmp_path, need)
    stats, calls = _build(cache, prepared)
    assert (stats["built_shards"], calls) == (3, 3)
    written = sum(p.stat().st_size for p in cache.dir.glob("shard-*"))
    assert need <= written < need + 3 * 1024, "the estimate is the shards' payload (plus small headers)"


def test_disk_full_mid_build_keeps_finished_shards_and_resumes(prepared, tmp_path, monkeypatch):
    import safetensors.numpy

    clean = _cache(prepared, tmp_path / "clean")
    _build(clean, prepared)
    real, saved = safetensors.numpy.save_file, []

    def fills_up(arrays, filename, *args, **kwargs):
        if saved:
            Path(filename).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        saved.append(filename)
        return real(arrays, filename, *args, **kwargs)

    full = _cache(prepared, tmp_path / "full")
    monkeypatch.setattr(safetensors.numpy, "save_file", fills_up)
    with pytest.raises(DiskSpaceError, match=r"shard 1\).*finished shards \(1\) are kept.*resumes") as err:
        _build(full, prepared)
    assert err.value.errno == errno.ENOSPC
    assert sorted(p.name for p in full.dir.iterdir()) == ["shard-00000.safetensors"], "no partial temp file left"
    monkeypatch.setattr(safetensors.numpy, "save_file", real)
    stats, calls = _build(full, prepared)
    assert (stats["built_shards"], calls) == (2, 2)
    _same(full.load(), clean.load())
