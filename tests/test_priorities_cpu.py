"""Priority rules vs. an independent float64 reference written here with plain loops (docs/design.md, "The math").

Nothing in this file calls the module's signal helpers to build an expectation: every expected weight comes from
`naive_signals` (tests/naive_signals.py), which works on the logits as Python floats / numpy float64.
"""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

import numpy as np
import pytest
import torch
from naive_signals import naive_signals, random_batch

from prift.sft.priorities import adaptive_tau, segment_ids, token_weights

B, T, V = 3, 7, 50
SEEDS = (0, 1, 2)
ALL_RULES = ("nll", "prob", "mass", "profit", "talr", "eaft", "power", "rho1", "signed")
MARGIN = 1e-4  # thresholded rules are only compared where the naive value is this far from the threshold


# ----------------------------------------------------------------------------------------------------------------
# Independent float64 reference
# ----------------------------------------------------------------------------------------------------------------


def _assert_decisive(values: np.ndarray, labels: torch.Tensor, *thresholds: float) -> None:
    """Precondition of a thresholded comparison: no scored value sits within MARGIN of a threshold."""
    scored = values[labels.numpy() != -100]
    for tau in thresholds:
        assert np.all(np.abs(scored - tau) > MARGIN), f"test data too close to threshold {tau}; pick another seed"


def _naive_adaptive_tau(logp: np.ndarray, labels: torch.Tensor) -> float:
    lab = labels.numpy()
    seq_means = []
    for b in range(lab.shape[0]):
        nll = [-logp[b, t] for t in range(lab.shape[1]) if lab[b, t] != -100]
        if nll:
            seq_means.append(sum(nll) / len(nll))
    return statistics.median(seq_means)


def _assert_weights(got: torch.Tensor, expected: np.ndarray, labels: torch.Tensor, rtol=1e-5, atol=1e-6) -> None:
    assert got.shape == labels.shape
    masked = labels == -100
    assert torch.all(got[masked] == 0), "masked positions must get weight exactly 0"
    exp = np.where(labels.numpy() == -100, 0.0, np.nan_to_num(expected, nan=0.0))
    np.testing.assert_allclose(got.double().numpy(), exp, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------------------------------------------
# Rules vs. naive
# ----------------------------------------------------------------------------------------------------------------

CHUNKS = (None, 7, 13, V)


@pytest.mark.parametrize("seed", SEEDS)
def test_nll(seed):
    logits, labels = random_batch(seed)
    got = token_weights("nll", logits, labels)
    _assert_weights(got, np.ones((B, T)), labels, rtol=0, atol=0)


@pytest.mark.parametrize("vocab_chunk", CHUNKS)
@pytest.mark.parametrize("seed", SEEDS)
def test_prob(seed, vocab_chunk):
    logits, labels = random_batch(seed)
    ref = naive_signals(logits, labels)
    _assert_weights(token_weights("prob", logits, labels, vocab_chunk=vocab_chunk), ref["p"], labels)


@pytest.mark.parametrize("vocab_chunk", CHUNKS)
@pytest.mark.parametrize("threshold", (None, 0.3, 0.5, 0.8))
@pytest.mark.parametrize("seed", SEEDS)
def test_mass(seed, threshold, vocab_chunk):
    logits, labels = random_batch(seed)
    ref = naive_signals(logits, labels)
    tau = 0.5 if threshold is None else threshold
    _assert_decisive(ref["mass"], labels, tau)
    params = {} if threshold is None else {"threshold": threshold}
    got = token_weights("mass", logits, labels, vocab_chunk=vocab_chunk, **params)
    expected = (ref["mass"] >= tau).astype(float)
    _assert_weights(got, expected, labels, rtol=0, atol=0)
    # the data must exercise both outcomes for the comparison to mean something
    scored = labels != -100
    assert 0 < int((got[scored] == 1).sum()) < int(scored.sum())


def _tierandom_batch(seed: int):
    """Random logits where, in every row, 2-3 other vocabulary entries share exactly the target's logit."""
    logits, labels = random_batch(seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    for b in range(B):
        for t in range(T):
            y = int(labels[b, t])
            if y == -100:
                continue
            others = [v for v in torch.randperm(V, generator=gen).tolist() if v != y][: 2 + (b + t) % 2]
            logits[b, t, others] = float(logits[b, t, y])
    return logits, labels


@pytest.mark.parametrize("vocab_chunk", CHUNKS)
@pytest.mark.parametrize("seed", SEEDS)
def test_mass_with_ties_matches_naive(seed, vocab_chunk):
    logits, labels = _tierandom_batch(seed)
    ref = naive_signals(logits, labels)
    for tau in (0.3, 0.5, 0.7):
        _assert_decisive(ref["mass"], labels, tau)
        got = token_weights("mass", logits, labels, vocab_chunk=vocab_chunk, threshold=tau)
        _assert_weights(got, (ref["mass"] >= tau).astype(float), labels, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16))
@pytest.mark.parametrize("vocab_chunk", (None, 2, 3))
def test_mass_tie_flips_keep_decision(dtype, vocab_chunk):
    # Row 0: target (id 0) tied with id 1 at logit 2, three tokens at 0.
    #   p_y = e^2 / (2 e^2 + 3) ~ 0.416; ties above -> u = p_y + 3/(2e^2+3) ~ 0.584; ties below would give u = 1.
    # Row 1: the same row, but the target is strictly on top (logit 2 vs. 1.75): u = 1 either way.
    logits = torch.tensor([[[2.0, 2.0, 0.0, 0.0, 0.0], [2.0, 1.75, 0.0, 0.0, 0.0]]], dtype=dtype)
    labels = torch.tensor([[0, 0]])
    e2 = math.exp(2.0)
    u_tie = (e2 + 3.0) / (2 * e2 + 3.0)
    assert 0.55 < u_tie < 0.6
    got = token_weights("mass", logits, labels, threshold=0.7, vocab_chunk=vocab_chunk)
    assert got.tolist() == [[0.0, 1.0]]
    # just below u_tie the tied target is kept
    got = token_weights("mass", logits, labels, threshold=u_tie - 1e-3, vocab_chunk=vocab_chunk)
    assert got.tolist() == [[1.0, 1.0]]


def test_mass_three_way_tie_counts_all_tied_above():
    # target tied with two others at logit 1; seven tokens at 0. u = p_y + 7 * p_0.
    z = [1.0, 1.0, 1.0] + [0.0] * 7
    logits = torch.tensor([[z]])
    labels = torch.tensor([[1]])
    total = 3 * math.e + 7
    u = (math.e + 7) / total  # ~ 0.622; counting the ties as below would give 1
    for tau, keep in ((u - 1e-3, 1.0), (u + 1e-3, 0.0), (0.9, 0.0)):
        assert token_weights("mass", logits, labels, threshold=tau).item() == keep


@pytest.mark.parametrize("seed", SEEDS)
def test_mass_threshold_boundary_is_inclusive(seed):
    """keep iff u_t >= tau: a threshold equal to u_t keeps, the next float32 above u_t drops."""
    logits, labels = random_batch(seed)
    ref = naive_signals(logits, labels)
    b, t = 0, 1  # scored by construction
    u = float(ref["mass"][b, t])
    assert labels[b, t] != -100
    # the module works in fp32; pick the float32 values adjacent to the naive u_t that bracket the fp32 result.
    from prift.sft.signals import signals_from_logits  # the signal (not the rule) defines the exact fp32 value

    u32 = np.float32(signals_from_logits(logits, labels, ["mass"])["mass"][b, t].item())
    assert abs(float(u32) - u) < 1e-5  # sanity: the fp32 signal is the naive value
    at = token_weights("mass", logits, labels, threshold=float(u32))
    above = token_weights("mass", logits, labels, threshold=float(np.nextafter(u32, np.float32(np.inf))))
    below = token_weights("mass", logits, labels, threshold=float(np.nextafter(u32, np.float32(-np.inf))))
    assert at[b, t].item() == 1.0
    assert below[b, t].item() == 1.0
    assert above[b, t].item() == 0.0


def test_mass_exact_half_boundary():
    # Two equal logits: the target ties with the other token, so u = p_y = 1/2 exactly (in float64 and float32).
    logits = torch.zeros(1, 1, 2)
    labels = torch.tensor([[0]])
    assert token_weights("mass", logits, labels, threshold=0.5).item() == 1.0
    assert token_weights("mass", logits, labels, threshold=0.5 + 1e-6).item() == 0.0


PROFIT_SCALE = 4.0  # sharper rows, so that some targets have p >= 0.9 (profit's default upper bound)


@pytest.mark.parametrize("direction", ("higher", "lower", "middle"))
@pytest.mark.parametrize("threshold,upper", ((None, None), (0.2, 0.7), (0.05, 0.5)))
@pytest.mark.parametrize("seed", SEEDS)
def test_profit(seed, direction, threshold, upper):
    logits, labels = random_batch(seed, scale=PROFIT_SCALE)
    p = naive_signals(logits, labels)["p"]
    lo = 0.1 if threshold is None else threshold
    hi = 0.9 if upper is None else upper
    _assert_decisive(p, labels, lo, hi)
    if direction == "higher":
        expected = p >= lo
    elif direction == "lower":
        expected = p < lo
    else:
        expected = (p >= lo) & (p < hi)
    params = {"direction": direction}
    if threshold is not None:
        params.update(threshold=threshold, upper=upper)
    got = token_weights("profit", logits, labels, **params)
    _assert_weights(got, expected.astype(float), labels, rtol=0, atol=0)


def test_profit_default_is_higher_and_data_spans_both_sides():
    logits, labels = random_batch(0, scale=PROFIT_SCALE)
    p = naive_signals(logits, labels)["p"][labels.numpy() != -100]
    assert (p >= 0.1).any() and (p < 0.1).any() and (p >= 0.9).any()
    torch.testing.assert_close(token_weights("profit", logits, labels),
                               token_weights("profit", logits, labels, direction="higher"), rtol=0, atol=0)


def test_profit_unknown_direction():
    logits, labels = random_batch(0)
    with pytest.raises(ValueError):
        token_weights("profit", logits, labels, direction="sideways")


@pytest.mark.parametrize("tau", (0.5, 1.0, 2.5))
@pytest.mark.parametrize("seed", SEEDS)
def test_talr_fixed_tau(seed, tau):
    logits, labels = random_batch(seed)
    p = naive_signals(logits, labels)["p"]
    _assert_weights(token_weights("talr", logits, labels, tau=tau), p ** (1.0 / tau), labels)


@pytest.mark.parametrize("vocab_chunk", (None, 7))
@pytest.mark.parametrize("seed", SEEDS)
def test_talr_adaptive_tau_odd_sequences(seed, vocab_chunk):
    logits, labels = random_batch(seed)  # B = 3: all sequences have scored tokens
    ref = naive_signals(logits, labels)
    tau = _naive_adaptive_tau(ref["logp"], labels)
    got = token_weights("talr", logits, labels, vocab_chunk=vocab_chunk)
    _assert_weights(got, ref["p"] ** (1.0 / tau), labels)
    # tau=None is the default
    same = token_weights("talr", logits, labels, vocab_chunk=vocab_chunk, tau=None)
    torch.testing.assert_close(got, same, rtol=0, atol=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_talr_adaptive_tau_excludes_sequences_without_scored_tokens(seed):
    # B = 4 with one fully masked sequence: the median is over the 3 scored sequences (odd, unambiguous).
    logits, labels = random_batch(seed, b=4)
    labels[2] = -100
    ref = naive_signals(logits, labels)
    tau = _naive_adaptive_tau(ref["logp"], labels)
    # if the empty sequence were counted (mean NLL 0) the median would move to (or towards) the smallest of the
    # three means: make sure the means are far enough apart for the test to see that
    lab = labels.numpy()
    means = sorted(float(np.mean(-ref["logp"][b][lab[b] != -100])) for b in (0, 1, 3))
    assert means[1] - means[0] > 1e-2
    got = token_weights("talr", logits, labels)
    assert torch.all(got[2] == 0)
    _assert_weights(got, ref["p"] ** (1.0 / tau), labels)


@pytest.mark.parametrize("case", ("three_rows_one_empty", "four_rows_all_scored"))
@pytest.mark.parametrize("seed", SEEDS)
def test_talr_adaptive_tau_even_number_of_sequences(seed, case):
    # An even number of scored sequences: the median of 2k values is the mean of the two middle ones.
    if case == "three_rows_one_empty":
        logits, labels = random_batch(seed)
        labels[1] = -100
    else:
        logits, labels = random_batch(seed, b=4)
        labels[:, 1] = 5  # make sure every row has a scored token
    ref = naive_signals(logits, labels)
    tau = _naive_adaptive_tau(ref["logp"], labels)
    got = token_weights("talr", logits, labels)
    _assert_weights(got, ref["p"] ** (1.0 / tau), labels)


@pytest.mark.parametrize("alpha", (None, 0.5, 1.0, 2.0))
@pytest.mark.parametrize("vocab_chunk", CHUNKS)
@pytest.mark.parametrize("seed", SEEDS)
def test_eaft(seed, vocab_chunk, alpha):
    logits, labels = random_batch(seed)
    ent = naive_signals(logits, labels)["ent20"]
    a = 1.0 if alpha is None else alpha
    params = {} if alpha is None else {"alpha": alpha}
    got = token_weights("eaft", logits, labels, vocab_chunk=vocab_chunk, **params)
    _assert_weights(got, (ent / math.log(20)) ** a, labels)


@pytest.mark.parametrize("alpha", (0.25, 1.0, 3.0))
@pytest.mark.parametrize("seed", SEEDS)
def test_power(seed, alpha):
    logits, labels = random_batch(seed)
    p = naive_signals(logits, labels)["p"]
    _assert_weights(token_weights("power", logits, labels, alpha=alpha), p**alpha, labels)


def _naive_rho1(logits, ref_logits, labels, ratio):
    online = naive_signals(logits, labels)["logp"]
    ref = naive_signals(ref_logits, labels)["logp"]
    lab = labels.numpy()
    scored = [(b, t) for b in range(lab.shape[0]) for t in range(lab.shape[1]) if lab[b, t] != -100]
    # CE_online - CE_ref = (-logp_online) - (-logp_ref)
    excess = {(b, t): (-online[b, t]) - (-ref[b, t]) for b, t in scored}
    keep = math.ceil(Fraction(str(ratio)) * len(scored))
    order = sorted(scored, key=lambda bt: excess[bt], reverse=True)
    if 0 < keep < len(order):  # no near-tie at the cut, else the expectation is ambiguous
        assert excess[order[keep - 1]] - excess[order[keep]] > 1e-5
    expected = np.zeros(lab.shape)
    for bt in order[:keep]:
        expected[bt] = 1.0
    return expected, keep


@pytest.mark.parametrize("ratio", (None, 0.05, 0.3, 0.5, 0.7, 1.0))
@pytest.mark.parametrize("seed", SEEDS)
def test_rho1(seed, ratio):
    logits, labels = random_batch(seed)
    ref_logits, _ = random_batch(seed + 100)
    r = 0.6 if ratio is None else ratio
    expected, keep = _naive_rho1(logits, ref_logits, labels, r)
    params = {} if ratio is None else {"ratio": ratio}
    got = token_weights("rho1", logits, labels, ref_logits=ref_logits, **params)
    assert int(got.sum().item()) == keep and torch.all((got == 0) | (got == 1))
    _assert_weights(got, expected, labels, rtol=0, atol=0)


def test_rho1_selects_by_excess_not_by_online_loss():
    # Online CE is highest at t=0, but the reference finds t=0 just as hard: the excess is largest at t=1.
    logits = torch.zeros(1, 3, 4)
    ref_logits = torch.zeros(1, 3, 4)
    labels = torch.tensor([[0, 0, 0]])
    logits[0, 0, 1:] = 5.0  # online: target very unlikely
    ref_logits[0, 0, 1:] = 5.0  # reference: equally unlikely -> excess 0
    logits[0, 1, 1:] = 2.0  # online: target unlikely; reference uniform -> positive excess
    got = token_weights("rho1", logits, labels, ref_logits=ref_logits, ratio=0.3)  # ceil(0.9) = 1 token
    assert got.tolist() == [[0.0, 1.0, 0.0]]


def test_rho1_needs_ref_logits():
    logits, labels = random_batch(0)
    with pytest.raises(ValueError):
        token_weights("rho1", logits, labels)


@pytest.mark.parametrize("negative_weight", (None, 0.5, 2.0))
@pytest.mark.parametrize("seed", SEEDS)
def test_signed(seed, negative_weight):
    logits, labels = random_batch(seed)
    gen = torch.Generator().manual_seed(seed)
    token_labels = torch.randint(-1, 2, (B, T), generator=gen)
    lam = 1.0 if negative_weight is None else negative_weight
    expected = np.zeros((B, T))
    for b in range(B):
        for t in range(T):
            expected[b, t] = {1: 1.0, -1: -lam, 0: 0.0}[int(token_labels[b, t])]
    params = {} if negative_weight is None else {"negative_weight": negative_weight}
    got = token_weights("signed", logits, labels, token_labels=token_labels, **params)
    assert {-1, 0, 1} <= set(token_labels[labels != -100].tolist())
    _assert_weights(got, expected, labels, rtol=0, atol=0)


def test_signed_needs_token_labels():
    logits, labels = random_batch(0)
    with pytest.raises(ValueError):
        token_weights("signed", logits, labels)


@pytest.mark.parametrize("seed", SEEDS)
def test_talr_tau_of_a_packed_row_is_the_padded_batch_s(seed):
    # four sequences of different lengths, padded into rows or packed into one row told apart by position_ids
    logits, labels = random_batch(seed, b=4)
    lengths = (7, 5, 3, 6)
    for b, n in enumerate(lengths):
        labels[b, n:] = -100
    ref = naive_signals(logits, labels)
    logp = torch.tensor(np.nan_to_num(ref["logp"]), dtype=torch.float32)  # naive logp is NaN where masked
    mask = (labels != -100).float()
    expected = _naive_adaptive_tau(ref["logp"], labels)
    assert adaptive_tau(logp, mask).item() == pytest.approx(expected, rel=1e-6)
    packed_logp = torch.cat([logp[b, :n] for b, n in enumerate(lengths)])[None]
    packed_mask = torch.cat([mask[b, :n] for b, n in enumerate(lengths)])[None]
    position_ids = torch.cat([torch.arange(n) for n in lengths])[None]
    assert segment_ids(position_ids).tolist() == [[b for b, n in enumerate(lengths) for _ in range(n)]]
    assert adaptive_tau(packed_logp, packed_mask, segment_ids(position_ids)).item() == pytest.approx(expected, rel=1e-6)
    pooled = float(-(packed_logp * packed_mask).sum() / packed_mask.sum())  # what a packed row gave before
    assert abs(pooled - expected) > 1e-3
