"""Per-token signals (logp, mass, ent20) vs. an independent float64 reference written here with plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from naive_signals import naive_signals

import prift.sft.signals as signals_module
from prift.sft.signals import signals_from_hidden, signals_from_logits

B, T, V, H = 3, 7, 50, 16
SEEDS = (0, 1, 2)
NAMES = ("logp", "mass", "ent20")
CHUNKS = (None, 7, 13, V)


def _batch(seed: int, scale: float = 3.0, dtype=torch.float32, b: int = B, t: int = T, v: int = V):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(b, t, v, generator=gen) * scale).to(dtype)
    labels = torch.randint(0, v, (b, t), generator=gen)
    labels = torch.where(torch.rand(b, t, generator=gen) < 0.3, logits.float().argmax(-1), labels)
    masked = torch.rand(b, t, generator=gen) < 0.25
    masked[0, 0], masked[0, 1] = True, False
    return logits, labels.masked_fill(masked, -100)


def _check(got: dict[str, torch.Tensor], ref: dict[str, np.ndarray], labels: torch.Tensor, names=NAMES,
           atol: float = 1e-5) -> None:
    assert set(got) == set(names)
    for name in names:
        value = got[name]
        assert value.shape == labels.shape and value.dtype == torch.float32, name
        assert torch.isfinite(value).all(), name
        assert torch.all(value[labels == -100] == 0), name
        np.testing.assert_allclose(value.double().numpy(), ref[name], rtol=1e-5, atol=atol, err_msg=name)


@pytest.mark.parametrize("vocab_chunk", CHUNKS)
@pytest.mark.parametrize("seed", SEEDS)
def test_signals_fp32_match_reference(seed, vocab_chunk):
    logits, labels = _batch(seed)
    _check(signals_from_logits(logits, labels, NAMES, vocab_chunk), naive_signals(logits, labels, fill=0.0), labels)


@pytest.mark.parametrize("name", NAMES)
def test_each_signal_alone(name):
    logits, labels = _batch(5)
    _check(signals_from_logits(logits, labels, [name]), naive_signals(logits, labels, fill=0.0), labels, names=(name,))


@pytest.mark.parametrize("quantised", (False, True))
@pytest.mark.parametrize("vocab_chunk", CHUNKS)
@pytest.mark.parametrize("seed", SEEDS)
def test_signals_bf16_logits(seed, vocab_chunk, quantised):
    logits, labels = _batch(seed, dtype=torch.bfloat16)
    if quantised:
        # a coarse grid (steps of 1/4, exact in bf16) makes ties with the target common, as with real bf16 logits
        logits = (logits.float() * 4).round().div(4).to(torch.bfloat16)
        ties = sum(int((logits[b, t] == logits[b, t, int(labels[b, t])]).sum()) - 1
                   for b in range(B) for t in range(T) if labels[b, t] != -100)
        assert ties >= 3, "the quantised data must exercise ties with the target"
    _check(signals_from_logits(logits, labels, NAMES, vocab_chunk), naive_signals(logits, labels, fill=0.0), labels)


def test_mass_ties_count_above_in_bf16():
    # target tied (in bf16) with two other entries: u = p_y + mass strictly below, the tied entries are excluded
    z = torch.tensor([[[1.5, 1.5, 1.5, 0.25, 0.25, -1.0]]], dtype=torch.bfloat16)
    labels = torch.tensor([[2]])
    e = [math.exp(v) for v in (1.5, 1.5, 1.5, 0.25, 0.25, -1.0)]
    expected = (e[2] + e[3] + e[4] + e[5]) / sum(e)
    got = signals_from_logits(z, labels, ["mass"])["mass"].item()
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
@pytest.mark.parametrize("vocab_chunk", (None, 7))
@pytest.mark.parametrize("seed", SEEDS)
def test_large_magnitude_logits_stay_finite(seed, dtype, vocab_chunk):
    gen = torch.Generator().manual_seed(seed)
    logits = ((torch.rand(B, T, V, generator=gen) * 2 - 1) * 80).to(dtype)
    labels = torch.randint(0, V, (B, T), generator=gen)
    labels[0, 2] = -100
    # extreme rows: target at -80 against +80 elsewhere (p ~ e^-160 underflows fp32), and target alone at +80
    logits[1, 0] = 80.0
    logits[1, 0, 3] = -80.0
    labels[1, 0] = 3
    logits[1, 1] = -80.0
    logits[1, 1, 4] = 80.0
    labels[1, 1] = 4
    got = signals_from_logits(logits, labels, NAMES, vocab_chunk)
    ref = naive_signals(logits, labels, fill=0.0)
    # logp carries an absolute fp32 error of ~ |z| * 2^-24
    _check(got, ref, labels, atol=1e-4)
    assert got["logp"][1, 0].item() == pytest.approx(-160.0 - math.log(V - 1), abs=1e-3)
    assert got["mass"][1, 1].item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("vocab_chunk", (None, 7))
@pytest.mark.parametrize("seed", SEEDS)
def test_signals_from_hidden_equals_logits(seed, vocab_chunk):
    torch.manual_seed(seed)
    project = torch.nn.Linear(H, V)
    hidden = torch.randn(B, T, H) * 2
    _, labels = _batch(seed)
    from_hidden = signals_from_hidden(hidden, project, V, labels, NAMES, vocab_chunk)
    with torch.no_grad():
        logits = project(hidden)
    from_logits = signals_from_logits(logits, labels, NAMES, vocab_chunk)
    for name in NAMES:
        torch.testing.assert_close(from_hidden[name], from_logits[name], rtol=1e-5, atol=1e-6)
    _check(from_hidden, naive_signals(logits, labels, fill=0.0), labels)


@pytest.mark.parametrize("vocab_chunk", (None, 7, 13))
@pytest.mark.parametrize("seed", SEEDS)
def test_token_chunks_match_whole(seed, vocab_chunk, monkeypatch):
    logits, labels = _batch(seed)
    torch.manual_seed(seed)
    project = torch.nn.Linear(H, V)
    hidden = torch.randn(B, T, H)
    whole_logits = signals_from_logits(logits, labels, NAMES, vocab_chunk)
    whole_hidden = signals_from_hidden(hidden, project, V, labels, NAMES, vocab_chunk)

    rows_per_call: list[int] = []

    def recording_project(x: torch.Tensor) -> torch.Tensor:
        rows_per_call.append(x.shape[0])
        return project(x)

    monkeypatch.setattr(signals_module, "_ELEMENTS_PER_CHUNK", 64)
    chunked_logits = signals_from_logits(logits, labels, NAMES, vocab_chunk)
    chunked_hidden = signals_from_hidden(hidden, recording_project, V, labels, NAMES, vocab_chunk)

    n_valid = int((labels != -100).sum())
    assert len(rows_per_call) > 1, "the small chunk budget must split the positions into several token chunks"
    assert sum(rows_per_call) == n_valid, "every scored position is projected exactly once, masked ones never"
    for name in NAMES:
        torch.testing.assert_close(chunked_logits[name], whole_logits[name], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(chunked_hidden[name], whole_hidden[name], rtol=1e-5, atol=1e-6)
    _check(chunked_logits, naive_signals(logits, labels, fill=0.0), labels)


def test_all_masked_gives_zeros():
    logits, labels = _batch(0)
    labels = torch.full_like(labels, -100)
    got = signals_from_logits(logits, labels, NAMES)
    for name in NAMES:
        assert got[name].shape == labels.shape and torch.all(got[name] == 0)


def test_signals_are_computed_without_grad():
    logits, labels = _batch(0)
    logits.requires_grad_(True)
    got = signals_from_logits(logits, labels, NAMES)
    assert all(not value.requires_grad for value in got.values())


@pytest.mark.parametrize("names", (["bogus"], ["logp", "entropy"], ["mass", "ent20", "p"]))
def test_unknown_signal_name(names):
    logits, labels = _batch(0)
    with pytest.raises(ValueError):
        signals_from_logits(logits, labels, names)
    project = torch.nn.Linear(H, V)
    with pytest.raises(ValueError):
        signals_from_hidden(torch.randn(B, T, H), project, V, labels, names)


def test_unknown_signal_name_with_nothing_scored():
    logits, labels = _batch(0)
    with pytest.raises(ValueError):
        signals_from_logits(logits, torch.full_like(labels, -100), ["bogus"])
