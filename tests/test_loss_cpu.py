"""priority_loss vs. the naive sum_t m_t * CE_t * mask_t / D, and its gradient with m_t held constant."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prift.sft.loss import priority_loss
from prift.sft.priorities import token_weights

B, T, V, H = 3, 7, 50, 12
SEEDS = (0, 1, 2)


def _inputs(seed: int):
    """CE, weights and mask with the awkward cases: CE and weights nonzero at masked positions, zero and negative
    weights at scored positions."""
    gen = torch.Generator().manual_seed(seed)
    nll = torch.rand(B, T, generator=gen, dtype=torch.float64) * 5
    weights = torch.rand(B, T, generator=gen, dtype=torch.float64) * 2 - 0.5
    weights[torch.rand(B, T, generator=gen) < 0.3] = 0.0
    mask = torch.rand(B, T, generator=gen) < 0.7
    mask[0, 0], mask[0, 1] = False, True
    weights[0, 0] = 3.0  # nonzero weight at a masked position: must not count
    weights[0, 1] = 1.0
    return nll, weights, mask


def _naive(nll, weights, mask, divisor, num_items=None):
    total, response, kept = 0.0, 0, 0
    for b in range(B):
        for t in range(T):
            if not bool(mask[b, t]):
                continue
            m = float(weights[b, t])
            total += m * float(nll[b, t])
            response += 1
            kept += int(m != 0)
    if divisor == "kept":
        d = kept
    else:
        d = response if num_items is None else int(num_items)
    return total / max(d, 1)


@pytest.mark.parametrize("divisor", ("response", "kept"))
@pytest.mark.parametrize("seed", SEEDS)
def test_priority_loss_matches_naive(seed, divisor):
    nll, weights, mask = _inputs(seed)
    assert int(((weights != 0) & mask).sum()) < int(mask.sum())  # kept and response divisors really differ
    got = priority_loss(nll, weights, mask, divisor=divisor)
    assert got.dim() == 0
    assert got.item() == pytest.approx(_naive(nll, weights, mask, divisor), rel=1e-12)


def test_default_divisor_is_response():
    nll, weights, mask = _inputs(0)
    assert priority_loss(nll, weights, mask).item() == pytest.approx(_naive(nll, weights, mask, "response"))


@pytest.mark.parametrize("as_tensor", (False, True))
@pytest.mark.parametrize("num_items", (1, 5, 64))
@pytest.mark.parametrize("seed", SEEDS)
def test_priority_loss_num_items(seed, num_items, as_tensor):
    nll, weights, mask = _inputs(seed)
    n = torch.tensor(num_items) if as_tensor else num_items
    got = priority_loss(nll, weights, mask, divisor="response", num_items=n)
    assert got.item() == pytest.approx(_naive(nll, weights, mask, "response", num_items), rel=1e-12)
    # num_items overrides D for `response` only (docstring); `kept` still divides by the kept count
    kept = priority_loss(nll, weights, mask, divisor="kept", num_items=n)
    assert kept.item() == pytest.approx(_naive(nll, weights, mask, "kept"), rel=1e-12)


@pytest.mark.parametrize("divisor", ("response", "kept"))
def test_priority_loss_nothing_scored_is_zero(divisor):
    nll, weights, mask = _inputs(0)
    got = priority_loss(nll, weights, torch.zeros_like(mask), divisor=divisor)
    assert got.item() == 0.0 and math.isfinite(got.item())
    got = priority_loss(nll, torch.zeros_like(weights), mask, divisor=divisor)
    assert got.item() == 0.0


def test_unknown_divisor():
    nll, weights, mask = _inputs(0)
    with pytest.raises(ValueError):
        priority_loss(nll, weights, mask, divisor="tokens")


# ----------------------------------------------------------------------------------------------------------------
# Gradients through a tiny linear "model"
# ----------------------------------------------------------------------------------------------------------------


def _model(seed: int):
    torch.manual_seed(seed)
    head = torch.nn.Linear(H, V)
    hidden = torch.randn(B, T, H) * 2
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, V, (B, T), generator=gen)
    masked = torch.rand(B, T, generator=gen) < 0.3
    masked[0, 0], masked[0, 1] = True, False
    labels = labels.masked_fill(masked, -100)
    return head, hidden, labels


def _token_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CE_t = -log softmax(z_t)[y_t] (garbage but finite at masked positions, which the mask removes)."""
    return -logits.log_softmax(dim=-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)


def _naive_prob(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    z = logits.detach().double().numpy()
    out = np.zeros(labels.shape)
    for b in range(B):
        for t in range(T):
            y = int(labels[b, t])
            if y == -100:
                continue
            row = z[b, t]
            peak = row.max()
            out[b, t] = math.exp(row[y] - peak) / sum(math.exp(v - peak) for v in row)
    return out


@pytest.mark.parametrize("divisor", ("response", "kept"))
@pytest.mark.parametrize("seed", SEEDS)
def test_gradient_treats_weights_as_constants(seed, divisor):
    head, hidden, labels = _model(seed)
    mask = labels != -100
    logits = head(hidden)
    ce = _token_ce(logits, labels)
    weights = token_weights("prob", logits, labels)
    loss = priority_loss(ce, weights, mask, divisor=divisor)
    g_logits, g_head = torch.autograd.grad(loss, [logits, head.weight])

    # reference: the same objective with m_t an independent constant tensor (naive float64 p, no graph)
    m_const = torch.tensor(_naive_prob(logits, labels), dtype=torch.float32)
    d = int(mask.sum()) if divisor == "response" else int(((m_const != 0) & mask).sum())
    logits_ref = head(hidden)
    ref_loss = (m_const * _token_ce(logits_ref, labels) * mask).sum() / d
    r_logits, r_head = torch.autograd.grad(ref_loss, [logits_ref, head.weight])
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_logits, r_logits, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(g_head, r_head, rtol=1e-4, atol=1e-6)

    # and the closed form: dL/dz_t = m_t / D * (softmax(z_t) - onehot(y_t)) at scored positions, 0 elsewhere
    z = logits.detach().double()
    closed = z.softmax(-1)
    closed.scatter_add_(-1, labels.clamp(min=0)[..., None], -torch.ones(B, T, 1, dtype=torch.float64))
    closed = closed * (m_const.double() * mask / d)[..., None]
    torch.testing.assert_close(g_logits.double(), closed, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("seed", SEEDS)
def test_weights_carry_no_gradient_into_logits(seed):
    head, hidden, labels = _model(seed)
    mask = labels != -100
    d = int(mask.sum())
    logits = head(hidden)
    ce = _token_ce(logits, labels)
    weights = token_weights("prob", logits, labels)
    assert not weights.requires_grad
    g_detached = torch.autograd.grad(priority_loss(ce, weights, mask), logits, retain_graph=True)[0]

    # the alternative: m_t = p(y_t) = exp(-CE_t) differentiable, i.e. the gradient also flows through the weight
    p_live = (-ce).exp()
    alt_loss = (p_live * ce * mask).sum() / d
    g_alt = torch.autograd.grad(alt_loss, logits, retain_graph=True)[0]
    torch.testing.assert_close(alt_loss, priority_loss(ce, weights, mask), rtol=1e-5, atol=1e-6)  # same value...
    assert (g_alt - g_detached).abs().max().item() > 1e-3  # ...different gradient
    assert not torch.allclose(g_alt, g_detached, rtol=1e-2, atol=1e-4)

    # priority_loss detaches the weights itself: a live weight tensor gives the detached gradient, not g_alt
    g_live_in = torch.autograd.grad(priority_loss(ce, p_live, mask), logits)[0]
    torch.testing.assert_close(g_live_in, g_detached, rtol=1e-4, atol=1e-7)
