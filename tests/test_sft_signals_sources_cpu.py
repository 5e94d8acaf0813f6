"""Signal sources on real batches: cached reference == on-the-fly reference, the EMA's two limits (rho = 0 is DFT,
rho = 1 is PriFT-prob), and the full-logits path for models whose logits are not a plain LM-head projection."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from prift.sft.priorities import apply_rule, token_weights
from prift.sft.signals import SIGNAL_NAMES, signals_from_hidden, signals_from_logits
from prift.sft.sources import CACHE_COLUMN_PREFIX, CachedReference, EmaSource, LiveModelSource, model_signals
from prift.sft.train import reference_cache_for

CACHE_COLUMNS = tuple(CACHE_COLUMN_PREFIX + name for name in SIGNAL_NAMES)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenized(one_torch_thread, tmp_path_factory, tiny_checkpoint, arith_jsonl, sft_config, prepare_trainer):
    """(config, tokenizer, TRL-tokenized dataset) exactly as `run_sft` sees them."""
    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path_factory.mktemp("out"), method="prift_prob")
    trainer = prepare_trainer(config)
    return config, trainer.processing_class, trainer.train_dataset, trainer.data_collator


def _attached(tokenized, cache_dir, vocab_chunk=None):
    """The dataset with `ref_<signal>` columns from a freshly built cache of the start checkpoint."""
    config, tokenizer, dataset, _ = tokenized
    cache = reference_cache_for(config, tokenizer, dataset, config.model_name_or_path)
    cache.dir = cache_dir / cache.key.digest
    reference = AutoModelForCausalLM.from_pretrained(config.model_name_or_path)
    stats = cache.build(reference, dataset, batch_size=4, pad_token_id=tokenizer.pad_token_id,
                        vocab_chunk=vocab_chunk, progress=False)
    assert stats["built_shards"] == stats["shards"] >= 1
    return cache.attach(dataset)


def _batch(tokenized, dataset, rows=None):
    collator = tokenized[3]
    rows = range(len(dataset)) if rows is None else rows
    columns = [c for c in ("input_ids", "labels", *CACHE_COLUMNS) if c in dataset.column_names]
    batch = collator([{c: dataset[i][c] for c in columns} for i in rows])
    assert (batch["attention_mask"] == 0).any(), "rows of different lengths: padding is exercised"
    return batch


def _valid(batch):
    return batch["labels"][:, 1:] != -100


@pytest.mark.parametrize("vocab_chunk", (None, 100))
def test_cached_reference_equals_on_the_fly(vocab_chunk, tokenized, tmp_path, tiny_checkpoint):
    batch = _batch(tokenized, _attached(tokenized, tmp_path, vocab_chunk))
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).eval()
    cached = CachedReference().signals(batch, SIGNAL_NAMES)
    live = LiveModelSource(model).signals(batch, SIGNAL_NAMES)
    direct = model_signals(model, batch["input_ids"], batch["attention_mask"], batch["labels"], SIGNAL_NAMES)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    naive = signals_from_logits(logits[:, :-1], batch["labels"][:, 1:], SIGNAL_NAMES)
    valid = _valid(batch)
    assert valid.sum() > 50
    for name in SIGNAL_NAMES:
        assert cached[name].shape == valid.shape
        for other in (live[name], direct[name], naive[name]):
            torch.testing.assert_close(cached[name][valid], other[valid], rtol=1e-5, atol=1e-6, msg=name)
        assert (cached[name][~valid] == 0).all() and (direct[name][~valid] == 0).all()
    # the values are real signals, not zeros or constants
    assert (cached["logp"][valid] < 0).all()
    assert ((cached["mass"][valid] > 0) & (cached["mass"][valid] <= 1 + 1e-6)).all()
    assert cached["logp"][valid].std() > 0


def _sgd_step(model, batch, lr):
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1),
                                             ignore_index=-100)
    loss.backward()
    optimizer.step()
    model.eval()


def test_ema_limits_are_dft_and_prift(tokenized, tmp_path, tiny_checkpoint):
    batch = _batch(tokenized, _attached(tokenized, tmp_path))
    valid = _valid(batch)
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    emas = {rho: EmaSource(model, rho) for rho in (0.0, 0.25, 1.0)}
    _sgd_step(model, batch, lr=1.0)
    for ema in emas.values():
        ema.update(model)

    def prob_weights(signals):
        return apply_rule("prob", signals, valid)

    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    dft = token_weights("prob", logits[:, :-1], batch["labels"][:, 1:])  # DFT: the online model's p(y_t)
    prift = prob_weights(CachedReference().signals(batch, ("logp",)))  # PriFT-prob: the start checkpoint's p(y_t)
    ema0 = prob_weights(emas[0.0].signals(batch, ("logp",)))
    ema1 = prob_weights(emas[1.0].signals(batch, ("logp",)))

    # the step moved the model enough for the two limits to be told apart
    relative = ((dft - prift).abs() / prift.clamp(min=1e-12))[valid]
    assert relative.max() > 0.05
    torch.testing.assert_close(ema0, dft, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(ema1, prift, rtol=1e-5, atol=1e-9)
    assert not torch.allclose(ema1, dft, rtol=1e-3, atol=0)
    # theta_ema <- rho * theta_ema + (1 - rho) * theta: with rho = 0.25 the EMA sits 3/4 of the way to the online model
    for name, param in emas[0.25].model.named_parameters():
        expected = 0.25 * start[name] + 0.75 * dict(model.named_parameters())[name].detach()
        torch.testing.assert_close(param, expected, rtol=1e-6, atol=1e-7, msg=name)
    # the EMA is a frozen copy: the online step did not flow into it, and it carries no gradient
    assert all(not p.requires_grad for p in emas[1.0].model.parameters())
    assert all(torch.equal(p, start[n]) for n, p in emas[1.0].model.named_parameters())


def test_ema_rho_outside_unit_interval_is_rejected(tiny_checkpoint):
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    for rho in (-0.1, 1.5):
        with pytest.raises(ValueError, match="ema_rho"):
            EmaSource(model, rho)


def _softcapped_model():
    from transformers import Gemma2Config

    config = Gemma2Config(vocab_size=384, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=8, final_logit_softcapping=0.5,
                          pad_token_id=2, eos_token_id=2, bos_token_id=None)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(30.0)  # logits far beyond the cap, so capping matters
    return model


@pytest.mark.parametrize("vocab_chunk", (None, 50))
def test_softcapped_model_takes_the_full_logits_path(vocab_chunk, tokenized):
    batch = _batch(tokenized, tokenized[2])
    model = _softcapped_model()
    ids, attention, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    got = model_signals(model, ids, attention, labels, SIGNAL_NAMES, vocab_chunk)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits
        hidden = model.base_model(input_ids=ids, attention_mask=attention).last_hidden_state
    want = signals_from_logits(logits[:, :-1], labels[:, 1:], SIGNAL_NAMES)
    head = model.get_output_embeddings()
    uncapped = signals_from_hidden(hidden[:, :-1], head, head.weight.shape[0], labels[:, 1:], SIGNAL_NAMES)
    valid = _valid(batch)
    for name in SIGNAL_NAMES:
        torch.testing.assert_close(got[name][valid], want[name][valid], rtol=1e-5, atol=1e-6, msg=name)
    # the plain LM-head projection would have given different signals: the test can tell the two paths apart
    assert (uncapped["logp"][valid] - want["logp"][valid]).abs().max() > 0.1


def test_an_ema_of_a_fused_head_patched_softcapped_model_scores_with_its_own_weights(tokenized):
    """TRL patches the policy's forward (fused LM head) before the EMA is built; a softcapped model is scored through
    that forward, whose closure holds the *online* model: a plain copy would score with the online weights."""
    from trl.trainer.utils import add_fused_lm_head

    batch = _batch(tokenized, tokenized[2])
    model = _softcapped_model()
    start = _softcapped_model()  # the same seed: the start checkpoint's weights, never patched
    add_fused_lm_head(model)
    ema = EmaSource(model, 1.0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.5)  # the online model moves; at rho = 1 the EMA must not
    ema.update(model)
    names, args = ("logp",), (batch["input_ids"], batch["attention_mask"], batch["labels"])
    valid = _valid(batch)
    got = ema.signals(batch, names)["logp"][valid]
    torch.testing.assert_close(got, model_signals(start, *args, names)["logp"][valid], rtol=1e-5, atol=1e-6)
    online = model_signals(model, *args, names)["logp"][valid]
    assert (got - online).abs().max() > 0.1


def test_a_bf16_ema_tracks_the_exact_fp32_ema():
    """Small steps at rho = 0.99: a bf16 average updated in place drops them; prift's fp32 shadow does not."""
    torch.manual_seed(0)
    online = torch.nn.Linear(64, 64).to(torch.bfloat16)
    ema = EmaSource(online, 0.99)
    exact = {n: p.detach().double().clone() for n, p in online.named_parameters()}
    naive = {n: p.detach().clone() for n, p in online.named_parameters()}  # the old in-place bf16 update
    for _ in range(200):
        with torch.no_grad():
            for param in online.parameters():
                param.add_(torch.full_like(param, 1e-3))  # each step far below a bf16 ulp of the weights
        ema.update(online)
        for name, param in online.named_parameters():
            exact[name] = 0.99 * exact[name] + 0.01 * param.detach().double()
            naive[name].lerp_(param.detach(), 0.01)
    for name, param in ema.model.named_parameters():
        moved = (exact[name] - dict(ema.model.named_parameters())[name].detach().double()).abs()
        assert param.dtype == torch.bfloat16
        # within one bf16 rounding of the exact EMA, everywhere
        assert torch.all(moved <= exact[name].abs() * 2 ** -8 + 1e-6), name
        torch.testing.assert_close(ema.shadow[name].double(), exact[name], rtol=1e-5, atol=1e-6)
    # the old update lags far behind the exact one: the test can tell the two apart
    lag = max(float((exact[n] - naive[n].double()).abs().max()) for n in exact)
    assert lag > 0.02  # vs <= 1e-5 for the shadow above


def test_the_ema_resumes_its_fp32_shadow_exactly(tmp_path):
    torch.manual_seed(0)
    online = torch.nn.Linear(8, 8).to(torch.bfloat16)
    ema = EmaSource(online, 0.9)
    with torch.no_grad():
        online.weight.add_(1e-3)
    ema.update(online)
    ema.save(tmp_path)
    again = EmaSource(torch.nn.Linear(8, 8).to(torch.bfloat16), 0.9)
    again.load(tmp_path)
    for name in ema.shadow:
        assert torch.equal(again.shadow[name], ema.shadow[name])
        assert torch.equal(dict(again.model.named_parameters())[name], dict(ema.model.named_parameters())[name])


def test_the_ema_distance_from_start_matches_a_full_copy_and_survives_a_resume(tmp_path, monkeypatch):
    """||theta_ema - theta_0|| / ||theta_0|| against a naive full copy of the start: exact where every tensor fits in
    the sample, within a few percent where tensors are sampled; a resumed EMA measures from the original start."""
    import prift.sft.sources as sources

    torch.manual_seed(0)
    online = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 8))
    start = {n: p.detach().double().clone() for n, p in online.named_parameters()}

    def naive(ema):
        moved = sum(float((ema.shadow[n].double() - start[n]).square().sum()) for n in start)
        return (moved / sum(float(v.square().sum()) for v in start.values())) ** 0.5

    exact = EmaSource(online, 0.5)
    monkeypatch.setattr(sources, "DISTANCE_SAMPLE", 512)  # the 64x64 weight is sampled, the rest fit
    sampled = EmaSource(online, 0.5)
    monkeypatch.undo()
    assert exact.distance_from_start() == sampled.distance_from_start() == 0.0
    for _ in range(3):
        with torch.no_grad():
            for param in online.parameters():
                param.add_(torch.randn_like(param) * 0.05)
        exact.update(online)
        sampled.update(online)
    assert exact.distance_from_start() == pytest.approx(naive(exact), rel=1e-9)
    assert exact.distance_from_start() > 0.05
    assert sampled.distance_from_start() == pytest.approx(naive(sampled), rel=0.1)
    assert sampled.distance_from_start() != pytest.approx(naive(sampled), rel=1e-9)  # it did sample
    exact.save(tmp_path)
    resumed = EmaSource(online, 0.5)  # built from the trained model, as a resumed run is
    resumed.load(tmp_path)
    assert resumed.distance_from_start() == pytest.approx(naive(exact), rel=1e-9)
