"""The top-k reference distribution and the objectives on it (ASFT's KL anchor, GIFT's soft target, EKSFT's masks,
PEAR's importance weights) against independent float64 full-vocabulary implementations (tests/naive_objectives.py):
exact at k = |V|, within the stated bucket gap below it, with gradients where the papers put them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from naive_objectives import gift_soft_ce, kl, pear_row, softmax, top_fraction

from prift.sft.objectives import TopK, get_term, online_logp_at
from prift.sft.priorities import apply_rule
from prift.sft.topk import topk_logprobs

V = 40


def _logits(seed: int, n: int = 6, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(n, V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


@pytest.mark.parametrize("k", (1, 7, V))
@pytest.mark.parametrize("vocab_chunk", (None, 9))
def test_topk_logprobs_match_a_sort_of_the_full_distribution(k, vocab_chunk):
    logits = _logits(0)
    got = topk_logprobs(logits.float(), k, vocab_chunk)
    for row, z in enumerate(logits.numpy()):
        p = softmax(z)
        order = np.argsort(-z)[:k]
        np.testing.assert_array_equal(got["topk_ids"][row].numpy(), order)
        np.testing.assert_allclose(got["topk_logp"][row].numpy(), np.log(p[order]), atol=1e-5)
        assert got["topk_tail"][row].item() == pytest.approx(1 - p[order].sum(), abs=1e-6)


def test_topk_refuses_k_outside_the_vocabulary():
    with pytest.raises(ValueError, match="top_k must lie in"):
        topk_logprobs(_logits(0).float(), V + 1)


def _topk(ref: torch.Tensor, online: torch.Tensor, labels: torch.Tensor, k: int) -> TopK:
    """TopK for flat rows [N, V] viewed as one batch row [1, N]."""
    summary = topk_logprobs(ref.float(), k)
    ref_logp_full = ref.float().log_softmax(-1)
    online_logp_full = online.float().log_softmax(-1)
    return TopK(summary["topk_ids"][None], summary["topk_logp"][None], summary["topk_tail"][None],
                ref_logp_full.gather(-1, labels[:, None]).squeeze(-1)[None], labels[None],
                online_logp_full.gather(-1, summary["topk_ids"])[None],
                online_logp_full.gather(-1, labels[:, None]).squeeze(-1)[None])


def _naive_kl(ref, online, direction):
    pairs = [(softmax(r), softmax(o)) for r, o in zip(ref.numpy(), online.detach().numpy(), strict=True)]
    return np.array([kl(p, q) if direction == "forward" else kl(q, p) for p, q in pairs])


@pytest.mark.parametrize("direction", ("forward", "reverse"))
def test_kl_anchor_is_the_exact_kl_and_its_gradient_at_full_k(direction):
    ref, online = _logits(1), _logits(2).requires_grad_()
    labels = torch.arange(6) % V
    anchor = get_term("kl_anchor").fn(_topk(ref, online, labels, V), coef=0.5, direction=direction)[0]
    np.testing.assert_allclose(anchor.detach().numpy(), 0.5 * _naive_kl(ref, online, direction), rtol=1e-4, atol=1e-6)
    (grad,) = torch.autograd.grad(anchor.sum(), online)
    p_ref, p_on = ref.softmax(-1), online.softmax(-1)
    exact = (p_ref * (p_ref.log() - p_on.log())).sum() if direction == "forward" else \
        (p_on * (p_on.log() - p_ref.log())).sum()
    (want,) = torch.autograd.grad(0.5 * exact, online)
    torch.testing.assert_close(grad, want, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("direction", ("forward", "reverse"))
def test_kl_on_a_smaller_top_k_falls_short_by_exactly_the_tail_term(direction):
    """KL - KL_k = P_tail * KL(P_tail-normalised || Q_tail-normalised) >= 0 (the bound stated in prift.sft.topk)."""
    ref, online = _logits(3, scale=2.0), _logits(4, scale=2.0)
    k = 8
    got = get_term("kl_anchor").fn(_topk(ref, online, torch.zeros(6, dtype=torch.long), k), coef=1.0,
                                   direction=direction)[0].numpy()
    for row, (r, o) in enumerate(zip(ref.numpy(), online.numpy(), strict=True)):
        p, q = (softmax(r), softmax(o)) if direction == "forward" else (softmax(o), softmax(r))
        tail = np.argsort(-r)[k:]
        gap = p[tail].sum() * kl(p[tail] / p[tail].sum(), q[tail] / q[tail].sum())
        full = kl(p, q)
        assert gap >= 0 and got[row] <= full + 1e-6
        assert got[row] == pytest.approx(full - gap, rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("beta", (0.0, 2.0, 8.0))
def test_gift_is_the_full_soft_cross_entropy_and_its_gradient_at_full_k(beta):
    ref, online = _logits(5), _logits(6).requires_grad_()
    labels = torch.tensor([0, 5, 9, 17, 33, 39])
    soft = get_term("gift").fn(_topk(ref, online, labels, V), beta=beta)[0]
    want = [gift_soft_ce(r, o, int(y), beta) for r, o, y in zip(ref.numpy(), online.detach().numpy(), labels, strict=True)]
    np.testing.assert_allclose(soft.detach().numpy(), want, rtol=1e-4)
    (grad,) = torch.autograd.grad(soft.sum(), online)
    target = ref.log_softmax(-1) + beta * torch.nn.functional.one_hot(labels, V)
    (exact,) = torch.autograd.grad(-(target.softmax(-1) * online.log_softmax(-1)).sum(), online)
    torch.testing.assert_close(grad, exact, rtol=1e-3, atol=1e-5)


def test_gift_on_a_smaller_top_k_keeps_the_target_as_its_own_atom_and_falls_short_by_the_tail_term():
    ref, online = _logits(7, scale=2.0), _logits(8, scale=2.0)
    k, beta = 5, 2.0
    labels = torch.tensor([int(torch.argsort(r, descending=True)[i]) for r, i in zip(ref, (0, 3, 10, 20, 30, 39),
                                                                                    strict=True)])
    got = get_term("gift").fn(_topk(ref, online, labels, k), beta=beta)[0].numpy()
    for row, (r, o) in enumerate(zip(ref.numpy(), online.numpy(), strict=True)):
        y = int(labels[row])
        target = np.log(softmax(r))
        target[y] += beta
        t, q = softmax(target), softmax(o)
        atoms = set(np.argsort(-r)[:k].tolist()) | {y}
        tail = [v for v in range(V) if v not in atoms]
        gap = -sum(t[v] * math.log(q[v] / q[tail].sum()) for v in tail)
        assert gap >= 0
        assert got[row] == pytest.approx(gift_soft_ce(r, o, y, beta) - gap, rel=1e-3)


def test_online_log_probs_at_the_reference_ids_carry_the_full_softmax_and_its_gradient():
    gen = torch.Generator().manual_seed(9)
    hidden = torch.randn(2, 5, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(V, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, V, (2, 5), generator=gen)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    ids = torch.randint(0, V, (2, 5, 6), generator=gen)
    logp_full = (hidden @ weight.T).log_softmax(-1)
    target = logp_full.gather(-1, labels[..., None]).squeeze(-1)
    got = online_logp_at(hidden, weight, None, ids, target, labels, mask)
    want = logp_full.gather(-1, ids) * mask[..., None]
    torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-6)
    probe = torch.randn(2, 5, 6, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((got.double() * probe).sum(), (hidden, weight), retain_graph=True)
    wants = torch.autograd.grad((want * probe).sum(), (hidden, weight))
    for g, w in zip(grads, wants, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_eksft_drops_the_top_fractions_by_entropy_and_by_kl_and_is_detached():
    gen = torch.Generator().manual_seed(10)
    entropy, kl_ = torch.rand(3, 8, generator=gen), torch.rand(3, 8, generator=gen, requires_grad=True)
    mask = torch.rand(3, 8, generator=gen) < 0.8
    weights = apply_rule("eksft", {"entropy": entropy, "topk_kl": kl_}, mask, entropy_ratio=0.25, kl_ratio=0.1)
    assert not weights.requires_grad
    flat = mask.reshape(-1).nonzero().squeeze(-1).tolist()
    dropped = {flat[i] for i in top_fraction(entropy.reshape(-1)[flat].tolist(), 0.25)}
    dropped |= {flat[i] for i in top_fraction(kl_.detach().reshape(-1)[flat].tolist(), 0.1)}
    want = [0.0 if (i in dropped or i not in flat) else 1.0 for i in range(24)]
    assert weights.reshape(-1).tolist() == want


@pytest.mark.parametrize("level", ("sequence", "token", "block"))
@pytest.mark.parametrize("packed", (False, True))
def test_pear_weights_match_loops_over_each_sequence_and_are_detached(level, packed):
    gen = torch.Generator().manual_seed(11)
    logp = (-torch.rand(2, 12, generator=gen) * 2).requires_grad_()
    ref_logp = -torch.rand(2, 12, generator=gen) * 2
    mask = torch.ones(2, 12)
    mask[1, 9:] = 0
    segments = torch.tensor([[0] * 5 + [1] * 7, [0] * 12]) if packed else torch.zeros(2, 12, dtype=torch.long)
    signals = {"logp": logp, "ref_logp": ref_logp, "segments": segments}
    params = {"level": level, "gamma": 0.9, "clip": 1.5, "block": 3}
    weights = apply_rule("pear", signals, mask, **params)
    assert not weights.requires_grad
    log_ratio = ((logp.detach() - ref_logp) * mask).tolist()
    for row in range(2):
        want = pear_row(log_ratio[row], segments[row].tolist(), **params)
        np.testing.assert_allclose(weights[row].numpy(), np.array(want) * mask[row].numpy(), rtol=1e-5)
