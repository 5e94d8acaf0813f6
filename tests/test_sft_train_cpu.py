"""End-to-end `run_sft` on a tiny model: checkpoints that load, run.json provenance, the reference cache shared
between methods, every signal source, parity with TRL's own `SFTTrainer` losses, and resuming."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from prift.core.provenance import package_versions
from prift.sft.methods import METHODS
from prift.sft.train import run_sft

CORE = ("nll", "dft", "prift_prob", "prift_mass")
REFERENCE_FED = ("prift_prob", "prift_mass")
# A large constant step so that methods whose weights differ after one step give clearly different losses.
TRAIN = dict(learning_rate=1e-2, lr_scheduler_type="constant")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass
class Run:
    out: Path
    record: dict
    seconds: float


def _run(config) -> Run:
    started = time.time()
    out = run_sft(config)
    seconds = time.time() - started
    return Run(out, json.loads((out / "run.json").read_text()), seconds)


def _losses(checkpoint: Path) -> dict[int, float]:
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    return {h["step"]: h["loss"] for h in history if "loss" in h}


@pytest.fixture(scope="module")
def core(one_torch_thread, tmp_path_factory, tiny_checkpoint, arith_jsonl, sft_config):
    """The four core methods, one after the other, sharing one $PRIFT_CACHE_DIR."""
    root = tmp_path_factory.mktemp("core")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRIFT_CACHE_DIR", str(root / "cache"))
        runs = {m: _run(sft_config(tiny_checkpoint, arith_jsonl, root / m, method=m, **TRAIN)) for m in CORE}
    return root, runs


@pytest.mark.parametrize("method", CORE)
def test_checkpoint_loads_and_was_trained(core, method, tiny_checkpoint):
    _, runs = core
    out = runs[method].out
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    start_tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    assert tokenizer.chat_template == start_tokenizer.chat_template
    text = "What is 47 + 38?"
    assert tokenizer(text)["input_ids"] == start_tokenizer(text)["input_ids"]

    start = load_file(tiny_checkpoint / "model.safetensors")
    trained = model.state_dict()
    assert set(start) <= set(trained)
    changed = [name for name, weight in start.items() if not torch.equal(weight, trained[name])]
    assert len(changed) > len(start) // 2, f"training changed only {changed}"
    assert all(torch.isfinite(w).all() for w in trained.values())
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        assert torch.isfinite(model(ids).logits).all()


@pytest.mark.parametrize("method", CORE)
def test_run_json_records_provenance(core, method, tiny_checkpoint, arith_jsonl):
    _, runs = core
    run = runs[method]
    record = run.record
    assert record["stage"] == "sft"
    assert record["config"]["method"] == method
    assert record["config"]["model_name_or_path"] == str(tiny_checkpoint)
    assert record["config"]["dataset"] == str(arith_jsonl)
    assert record["config"]["max_steps"] == 3 and record["config"]["learning_rate"] == TRAIN["learning_rate"]
    assert record["seed"] == record["config"]["seed"] == 42
    installed = package_versions(("torch", "transformers", "trl"))
    for package in ("torch", "transformers", "trl"):
        assert record["versions"][package] == installed[package] is not None
    preset = METHODS[method]
    assert record["method"] == {"name": method, "rule": preset.rule, "source": preset.source,
                                "params": preset.params, "terms": preset.terms}
    assert 0 < record["wall_time_s"] <= run.seconds + 0.01
    assert re.fullmatch(r"[0-9a-f]{64}", record["fingerprints"]["data"])
    # same data, same tokenizer: the same data fingerprint for every method
    assert len({r.record["fingerprints"]["data"] for r in runs.values()}) == 1
    assert "git_commit" in record and record["resumed_from"] is None
    assert record["metrics"]["train_loss"] > 0
    if method in REFERENCE_FED:
        assert record["fingerprints"]["reference_model"] == str(tiny_checkpoint)
        assert re.fullmatch(r"[0-9a-f]{24}", record["fingerprints"]["reference_cache"])
    else:
        assert "reference_cache" not in record["fingerprints"]
        assert "reference_cache_build" not in record


def test_reference_methods_share_one_cache_entry(core):
    root, runs = core
    digests = {runs[m].record["fingerprints"]["reference_cache"] for m in REFERENCE_FED}
    assert len(digests) == 1
    entries = sorted(p.name for p in (root / "cache" / "reference-signals").iterdir())
    assert entries == sorted(digests)
    # the first reference-fed run built it, the second reused it
    build = runs["prift_prob"].record["reference_cache_build"]
    assert build["built_shards"] == build["shards"] >= 1 and build["rows"] == 6
    assert "reference_cache_build" not in runs["prift_mass"].record


def test_training_time_diagnostics_are_in_the_log_history(core):
    """Fig 1a as a curve: the online-vs-reference Pearson r of each logged step. At step 1 the online model *is* the
    reference (the start checkpoint, before any update), so r = 1; after updates it falls."""
    _, runs = core
    for method, run in runs.items():
        steps = [h for h in run.record["log_history"] if "loss" in h]
        assert steps and all(0.0 <= h["near_deterministic"] <= 1.0 for h in steps), method
        if method in REFERENCE_FED:
            r = [h["online_reference_pearson"] for h in steps]
            assert r[0] == pytest.approx(1.0, abs=1e-6) and all(-1.0 <= v <= 1.0 for v in r), (method, r)
            assert r[-1] < 1.0 - 1e-6, (method, r)
        else:
            assert not any("online_reference_pearson" in h for h in steps), method


def test_methods_train_differently(core):
    """Sanity check that makes the equalities below meaningful: DFT (online p) and PriFT-prob (frozen p) agree on
    the first step only, so their mean losses over 3 steps differ visibly."""
    _, runs = core
    dft, prift = (runs[m].record["metrics"]["train_loss"] for m in ("dft", "prift_prob"))
    assert abs(dft - prift) > 1e-3 * dft


@pytest.fixture
def core_cache(core, monkeypatch):
    root, runs = core
    monkeypatch.setenv("PRIFT_CACHE_DIR", str(root / "cache"))
    return root / "cache", runs


def _signed_rows(arith_rows):
    return [{**row, "sign": sign} for row, sign in zip(arith_rows, (1, -1, 1, 1, -1, 1), strict=True)]


EXTRA = {
    "eaft": dict(method="eaft"),
    "rho1": dict(method="rho1"),
    "signed": dict(method="signed"),
    "ema_rho0": dict(method="dft", source="ema", ema_rho=0.0),
    "ema_rho1": dict(method="dft", source="ema", ema_rho=1.0),
    "live": dict(method="prift_prob", reference_mode="live"),
    "talr": dict(method="talr"),
}


@pytest.mark.parametrize("case", EXTRA)
def test_other_methods_and_sources(case, core_cache, tmp_path, tiny_checkpoint, other_reference, arith_jsonl,
                                   arith_rows, write_jsonl, sft_config):
    cache, runs = core_cache
    data = write_jsonl(tmp_path / "signed.jsonl", _signed_rows(arith_rows)) if case == "signed" else arith_jsonl
    reference = {"reference_model": str(other_reference)} if case == "rho1" else {}
    run = _run(sft_config(tiny_checkpoint, data, tmp_path / case, **EXTRA[case], **reference, **TRAIN))
    record, loss = run.record, run.record["metrics"]["train_loss"]
    expected_rule = METHODS[EXTRA[case]["method"]].rule
    assert record["method"]["rule"] == expected_rule
    assert record["method"]["source"] == EXTRA[case].get("source", METHODS[EXTRA[case]["method"]].source)
    assert record["fingerprints"]["data"] == runs["nll"].record["fingerprints"]["data"]
    assert (run.out / "model.safetensors").is_file() and (run.out / "run.json").is_file()
    assert torch.isfinite(torch.tensor(loss))
    core_loss = {m: r.record["metrics"]["train_loss"] for m, r in runs.items()}
    if case == "rho1":
        # rho1 reads its own (trained) reference's log-probs: a cache entry of that reference, beside prift_*'s
        assert record["fingerprints"]["reference_model"] == str(other_reference)
        assert record["fingerprints"]["reference_cache"] != runs["prift_prob"].record["fingerprints"]["reference_cache"]
        assert len(list((cache / "reference-signals").iterdir())) == 2
    elif case == "signed":
        # rows with sign -1 push their loss down: far below plain NLL on the same rows
        assert loss < 0.5 * core_loss["nll"]
    elif case == "ema_rho0":
        # rho = 0: the EMA is the online model after every step, so the run is DFT's run
        assert loss == pytest.approx(core_loss["dft"], rel=1e-5)
    elif case == "ema_rho1":
        # rho = 1: the EMA stays at the start checkpoint, so the run is PriFT-prob's run
        assert loss == pytest.approx(core_loss["prift_prob"], rel=1e-5)
    elif case == "live":
        # the live reference gives the cached reference's run, without touching the cache
        assert loss == pytest.approx(core_loss["prift_prob"], rel=1e-5)
        assert "reference_cache" not in record["fingerprints"]
        assert record["fingerprints"]["reference_model"] == str(tiny_checkpoint)
    elif case == "talr":
        # the adaptive tau of each logged step: the median over the batch's sequences of their mean NLL
        taus = [h["talr_tau"] for h in record["log_history"] if "loss" in h]
        assert len(taus) == 3 and all(0.0 < t < 20.0 for t in taus)
    elif case == "eaft":
        assert record["metrics"]["train_loss"] != pytest.approx(core_loss["nll"], rel=1e-3)


def _naive_loss(model, batch, method):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100,
                         reduction="none").view(labels.shape)
    mask = labels != -100
    weights = torch.exp(-ce).detach() if method == "dft" else torch.ones_like(ce)
    return (weights * ce)[mask].sum() / mask.sum()


@pytest.mark.parametrize("method", ("nll", "dft"))
def test_loss_matches_trl_sft_trainer(method, tmp_path, prift_cache, tiny_checkpoint, arith_jsonl, sft_config,
                                      prepare_trainer):
    """PriorityTrainer's nll / dft loss and gradient equal TRL's own `loss_type="nll"` / `"dft"` on one batch."""
    from trl import SFTConfig, SFTTrainer

    from prift.sft.data import load_sft_dataset

    ours = prepare_trainer(sft_config(tiny_checkpoint, arith_jsonl, tmp_path / "ours", method=method))
    trl_args = SFTConfig(output_dir=str(tmp_path / "trl"), loss_type=method, per_device_train_batch_size=2,
                         max_steps=3, bf16=False, activation_checkpointing=False, report_to="none",
                         save_strategy="no", disable_tqdm=True, dataloader_pin_memory=False)
    dataset, _ = load_sft_dataset(str(arith_jsonl))
    theirs = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_checkpoint), args=trl_args,
                        train_dataset=dataset, processing_class=AutoTokenizer.from_pretrained(tiny_checkpoint))
    assert ours.train_dataset["input_ids"] == theirs.train_dataset["input_ids"]
    rows = [ours.train_dataset[i] for i in (0, 2, 4)]  # different lengths: padding is exercised
    batch = ours.data_collator([{k: row[k] for k in ("input_ids", "labels")} for row in rows])
    assert (batch["attention_mask"] == 0).any()
    n_tokens = int((batch["labels"][:, 1:] != -100).sum())

    naive = _naive_loss(AutoModelForCausalLM.from_pretrained(tiny_checkpoint), batch, method)
    for num_items in (None, n_tokens + 17):  # TRL passes the token count of the whole accumulated batch
        loss_ours = ours.compute_loss(ours.model, dict(batch), num_items_in_batch=num_items)
        loss_trl = theirs.compute_loss(theirs.model, dict(batch), num_items_in_batch=num_items)
        torch.testing.assert_close(loss_ours, loss_trl, rtol=1e-5, atol=1e-7)
        scale = 1.0 if num_items is None else n_tokens / num_items
        torch.testing.assert_close(loss_ours.detach(), naive.detach() * scale, rtol=1e-5, atol=1e-7)
    ours.model.zero_grad()
    theirs.model.zero_grad()
    ours.compute_loss(ours.model, dict(batch)).backward()
    theirs.compute_loss(theirs.model, dict(batch)).backward()
    grads_trl = dict(theirs.model.named_parameters())
    for name, param in ours.model.named_parameters():
        torch.testing.assert_close(param.grad, grads_trl[name].grad, rtol=1e-4, atol=1e-7, msg=name)


def test_kept_divisor_is_averaged_over_gradient_accumulation(tmp_path, prift_cache, tiny_checkpoint, arith_jsonl,
                                                             sft_config):
    """With the nll rule every response token is kept, so divisor=kept must give (nearly) divisor=response's loss and
    gradient under gradient accumulation too: on a random model every token's CE is about ln(vocab), so a mean of
    micro-batch means and the mean over the accumulated batch agree to well under 1%, and summing the micro-batch
    means instead (2x with 2 accumulation steps) fails."""
    first_step = {}
    for divisor in ("response", "kept"):
        config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path / divisor, method="nll", divisor=divisor,
                            max_steps=1, gradient_accumulation_steps=2)
        first_step[divisor] = _run(config).record["log_history"][0]
    assert first_step["kept"]["loss"] == pytest.approx(first_step["response"]["loss"], rel=0.01)
    assert first_step["kept"]["grad_norm"] == pytest.approx(first_step["response"]["grad_norm"], rel=0.1)


def test_resume_continues_from_last_checkpoint(tmp_path, prift_cache, tiny_checkpoint, arith_jsonl, sft_config):
    out = tmp_path / "resume"
    common = dict(method="nll", save_strategy="steps", save_steps=2, **TRAIN)
    first = _run(sft_config(tiny_checkpoint, arith_jsonl, out, max_steps=2, **common))
    assert first.record["resumed_from"] is None
    assert (out / "checkpoint-2").is_dir()
    second = _run(sft_config(tiny_checkpoint, arith_jsonl, out, max_steps=4, **common))
    assert Path(second.record["resumed_from"]) == out / "checkpoint-2"
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["max_steps"] == 4
    assert sorted(_losses(out / "checkpoint-4")) == [1, 2, 3, 4]
    # the final model is the step-4 checkpoint, not a re-run from the start
    final, step4 = load_file(out / "model.safetensors"), load_file(out / "checkpoint-4" / "model.safetensors")
    assert all(torch.equal(final[name], step4[name]) for name in step4)


def test_resume_restores_ema_state(tmp_path, prift_cache, tiny_checkpoint, arith_jsonl, sft_config):
    """An EMA run stopped at step 2 and resumed must continue with the EMA it had, not the start checkpoint: with
    rho = 0 the resumed run reproduces an uninterrupted DFT run step for step."""
    common = dict(save_strategy="steps", save_steps=2, max_steps=4, **TRAIN)
    _run(sft_config(tiny_checkpoint, arith_jsonl, tmp_path / "dft", method="dft", **common))
    ema = dict(method="dft", source="ema", ema_rho=0.0, **common)
    _run(sft_config(tiny_checkpoint, arith_jsonl, tmp_path / "ema", **{**ema, "max_steps": 2}))
    resumed = _run(sft_config(tiny_checkpoint, arith_jsonl, tmp_path / "ema", **ema))
    assert resumed.record["resumed_from"] is not None
    want, got = _losses(tmp_path / "dft" / "checkpoint-4"), _losses(tmp_path / "ema" / "checkpoint-4")
    assert sorted(got) == [1, 2, 3, 4]
    for step in (3, 4):
        assert got[step] == pytest.approx(want[step], rel=1e-5), f"step {step}"


def test_rho1_refuses_the_start_checkpoint_as_its_reference(tmp_path, tiny_checkpoint, arith_jsonl, sft_config):
    for reference in ({}, {"reference_model": str(tiny_checkpoint)}):
        with pytest.raises(ValueError, match="method 'rho1'.*set reference_model"):
            sft_config(tiny_checkpoint, arith_jsonl, tmp_path, method="rho1", **reference)
    with pytest.raises(ValueError, match="method 'rho1'"):  # one of several methods
        sft_config(tiny_checkpoint, arith_jsonl, tmp_path, method="nll,rho1")
