"""The top-k reference cache end to end: what it stores equals the reference's own top-k, it is keyed by k and shared
by every variant, and a trainer fed from it computes the full-vocabulary loss exactly when k = |V|."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from prift.core.provenance import RunRecord
from prift.sft.topk import topk_logprobs
from prift.sft.train import _Setup, reference_cache_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VOCAB = 384  # the tiny checkpoint's


@pytest.fixture(scope="module")
def prepared(one_torch_thread, tmp_path_factory, tiny_checkpoint, arith_jsonl, sft_config, prepare_trainer):
    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path_factory.mktemp("out"), method="gift", top_k=8)
    trainer = prepare_trainer(config)
    return config, trainer.processing_class, trainer.train_dataset


def test_the_cache_stores_the_reference_top_k_in_16_bits_and_keys_it_by_k(prepared, tmp_path):
    config, tokenizer, dataset = prepared
    cache = reference_cache_for(config, tokenizer, dataset, config.model_name_or_path)
    cache.dir = tmp_path / cache.key.digest
    model = AutoModelForCausalLM.from_pretrained(config.model_name_or_path)
    cache.build(model, dataset, batch_size=4, pad_token_id=tokenizer.pad_token_id, vocab_chunk=100, progress=False)
    stored = cache.load()
    shard_bytes = sum(p.stat().st_size for p in cache.dir.glob("shard-*.safetensors"))
    tokens = sum(len(ids) for ids in dataset["input_ids"])
    assert cache.shard_bytes(tokens, len(dataset)) <= shard_bytes < cache.shard_bytes(tokens, len(dataset)) + 4096
    with torch.no_grad():
        for row in range(len(dataset)):
            ids = torch.tensor(dataset[row]["input_ids"])[None]
            scored = np.asarray(dataset[row]["labels"]) != -100  # the cache scores response tokens only
            scored[0] = False
            want = topk_logprobs(model(ids).logits[0, :-1][torch.from_numpy(scored[1:])], 8)
            assert not stored["topk_logp"][row][~scored].any() and not stored["topk_tail"][row][~scored].any()
            np.testing.assert_array_equal(stored["topk_ids"][row][scored], want["topk_ids"].numpy())
            np.testing.assert_allclose(stored["topk_logp"][row][scored], want["topk_logp"].numpy(), rtol=8e-3,
                                       atol=1e-3)
            np.testing.assert_allclose(stored["topk_tail"][row][scored], want["topk_tail"].numpy(), atol=1e-6)
    assert (cache.key.digest != dataclasses.replace(cache.key, top_k=16).digest
            != dataclasses.replace(cache.key, top_k_dtype="float16").digest)


def test_every_variant_shares_one_top_k_cache(prepared, tiny_checkpoint, arith_jsonl, sft_config, tmp_path):
    config, tokenizer, dataset = prepared
    keys = {reference_cache_for(sft_config(tiny_checkpoint, arith_jsonl, tmp_path, method=m, top_k=8), tokenizer,
                                dataset, config.model_name_or_path).key.digest
            for m in ("prift_prob", "asft", "gift", "eksft", "pear")}
    assert len(keys) == 1


def test_a_method_that_reads_the_top_k_without_top_k_names_the_setting(tiny_checkpoint, arith_jsonl, sft_config,
                                                                         tmp_path):
    with pytest.raises(ValueError, match="set top_k"):
        sft_config(tiny_checkpoint, arith_jsonl, tmp_path, method="asft")


@pytest.mark.parametrize("method", ("gift", "asft"))
def test_the_trainer_loss_on_the_full_top_k_cache_is_the_full_vocabulary_loss(method, tiny_checkpoint, arith_jsonl,
                                                                              sft_config, prepare_trainer, tmp_path):
    """k = |V| with float16 storage: GIFT's soft cross-entropy, and DFT + 0.1 KL(ref || online) (the ASFT code's weight), of the trainer
    equal the naive full-vocabulary losses on the model's own logits (reference = start checkpoint, perturbed)."""
    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path / "out", method=method, top_k=VOCAB,
                        top_k_dtype="float16", reference_cache_dir=str(tmp_path / "cache"))
    trainer = prepare_trainer(config)
    source, reference, dataset = _Setup(config, trainer.model, trainer.processing_class,
                                        RunRecord("t", config)).sources(config.resolved_method(), trainer.train_dataset)
    trainer.set_sources(source, reference)
    ref_model = AutoModelForCausalLM.from_pretrained(config.model_name_or_path)
    with torch.no_grad():  # move the policy off the reference so the KL is not 0
        for p in trainer.model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    columns = [c for c in dataset.column_names if c in ("input_ids", "labels") or c.startswith("ref_")]
    batch = trainer.data_collator([{c: dataset[i][c] for c in columns} for i in range(4)])
    trainer.model.train()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=mask.sum())
    with torch.no_grad():
        kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        online = trainer.model(**kwargs, fused_lm_head=False).logits[:, :-1].double().log_softmax(-1)
        ref = ref_model(**kwargs).logits[:, :-1].double().log_softmax(-1)
    y = labels.clamp(min=0)
    logp_y = online.gather(-1, y[..., None]).squeeze(-1)
    if method == "gift":
        target = (ref + 20.0 * torch.nn.functional.one_hot(y, VOCAB)).softmax(-1)  # the preset's beta
        per_token = -(target * online).sum(-1)
    else:
        per_token = -logp_y.exp() * logp_y + 0.1 * (ref.exp() * (ref - online)).sum(-1)
    want = (per_token * mask).sum() / mask.sum()
    assert loss.item() == pytest.approx(want.item(), rel=2e-3)


@pytest.mark.parametrize("method", ("asft", "gift", "eksft", "pear", "pear_sequence"))
def test_each_objective_trains_from_the_cache(method, tiny_checkpoint, arith_jsonl, sft_config, tmp_path):
    from prift.sft.train import run_sft

    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path / "out", method=method, top_k=16, max_steps=2,
                        reference_cache_dir=str(tmp_path / "cache"))
    out = run_sft(config)
    import json

    history = json.loads((out / "run.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert losses and all(np.isfinite(losses))
