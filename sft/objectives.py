"""Loss terms on the reference's top-k distribution, beside the token-priority loss (docs/design.md, "Reference-guided
objectives on the top-k cache").

With per-token weights m_t from a rule (`prift.sft.priorities`) the loss becomes

    L = [ sum_t m_t * C_t + sum_terms coef * A_t ] * mask_t / D

where C_t is the cross-entropy to the one-hot target (CE_t = -log p_theta(y_t)) or, with a `gift` term, to GIFT's
soft target, and A_t an additive per-token term (the `kl_anchor`). Every term reads `TopK`: the reference's top-k
atoms and tail mass (cached or live) and the online model's log-probs *with gradient* at those same ids. The
reference side is a constant (no gradient reaches it); divergences are taken on the bucketed support of
`prift.sft.topk` (exact at k = |V|, a lower bound otherwise with the gap stated there).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from prift.core.registry import Registry
from prift.sft.topk import bucket_cross_entropy, bucket_kl, log_tail

KL_DIRECTIONS = ("forward", "reverse")


@dataclass(frozen=True)
class TopK:
    """Per position [B, T] (atoms [B, T, k]): the reference's top-k `ref_ids` / `ref_logp` / `ref_tail`, its log-prob
    of the target `ref_target_logp`, the target `labels`, and the online log-probs at the ids (`online_logp`) and at
    the target (`online_target_logp`), both carrying gradient."""

    ref_ids: torch.Tensor
    ref_logp: torch.Tensor
    ref_tail: torch.Tensor
    ref_target_logp: torch.Tensor
    labels: torch.Tensor
    online_logp: torch.Tensor
    online_target_logp: torch.Tensor

    def kl(self, direction: str) -> torch.Tensor:
        """forward: KL_k(ref || online); reverse: KL_k(online || ref), on the top-k atoms + tail bucket."""
        if direction not in KL_DIRECTIONS:
            raise ValueError(f"kl direction: unknown value {direction!r}; valid: {', '.join(KL_DIRECTIONS)}")
        online_log_tail = log_tail(self.online_logp)
        if direction == "forward":
            return bucket_kl(self.ref_logp, self.ref_tail, self.online_logp, online_log_tail)
        return bucket_kl(self.online_logp, online_log_tail.exp(), self.ref_logp, self.ref_tail.clamp(min=1e-30).log())


@dataclass(frozen=True)
class Term:
    """A registered loss term `fn(topk, **params) -> [B, T]`; `replaces_nll`: it is the C_t above, not an A_t."""

    name: str
    fn: Callable[..., torch.Tensor]
    replaces_nll: bool

    @property
    def params(self) -> dict[str, object]:
        return {n: p.default for n, p in list(inspect.signature(self.fn).parameters.items())[1:]}


TERMS: Registry[Term] = Registry("loss term")


def register_term(name: str, replaces_nll: bool = False):
    """Decorator adding a loss term to `TERMS`; a duplicate name is an error."""

    def wrap(fn):
        TERMS.add(name, Term(name, fn, replaces_nll))
        return fn

    return wrap


get_term = TERMS.get


def check_terms(terms: dict) -> None:
    """Every term known, with known parameters, and at most one term that replaces the NLL."""
    for name, params in terms.items():
        allowed = get_term(name).params
        unknown = set(params) - set(allowed)
        if unknown:
            raise ValueError(f"loss term {name!r} got unknown parameter(s) {sorted(unknown)}; valid: {sorted(allowed)}")
    if sum(get_term(name).replaces_nll for name in terms) > 1:
        raise ValueError(f"loss terms {sorted(terms)}: at most one may replace the NLL")


@register_term("kl_anchor")
def kl_anchor(topk: TopK, coef: float = 0.1, direction: str = "forward") -> torch.Tensor:
    """A_t = coef * KL_k(p_ref || p_theta) (direction=forward) or coef * KL_k(p_theta || p_ref) (reverse).

    Anchored SFT (ASFT; Zhu et al., arXiv:2509.23753): DFT's loss plus a KL anchor to the base model,
    L = sum_t [sg(p_theta(y_t)) CE_t + lambda KL_t] / N. Its public code (github.com/zhuchichi56/ASFT, train_v2.py at
    42e2560: `F.kl_div(log_softmax(online), softmax(ref))` over the full vocabulary, `kl_weight=0.1`, mean over
    response tokens) computes KL(p_ref || p_theta), the forward direction here, with lambda = 0.1: prift's defaults.
    The reverse direction is offered too."""
    return coef * topk.kl(direction)


def gift_target(topk: TopK, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GIFT's target T = softmax(log p_ref + beta * 1[v = y]) on the atoms (the top-k ids, then y as an extra atom
    when outside them) and the remaining tail: (probabilities [B, T, k+1], tail mass [B, T], online log-probs at the
    same atoms [B, T, k+1], -inf for an extra atom that repeats a top-k id)."""
    in_topk = (topk.ref_ids == topk.labels[..., None]).any(-1)
    ref_y = topk.ref_target_logp.exp()
    norm = 1.0 + math.expm1(beta) * ref_y
    boost = torch.where(topk.ref_ids == topk.labels[..., None], math.exp(beta), 1.0)
    extra = torch.where(in_topk, 0.0, ref_y * math.exp(beta))
    probs = torch.cat([topk.ref_logp.exp() * boost, extra[..., None]], -1) / norm[..., None]
    tail = (topk.ref_tail - torch.where(in_topk, 0.0, ref_y)).clamp(min=0.0) / norm
    online = torch.cat([topk.online_logp, topk.online_target_logp.masked_fill(in_topk, -math.inf)[..., None]], -1)
    return probs, tail, online


@register_term("gift", replaces_nll=True)
def gift(topk: TopK, beta: float = 20.0) -> torch.Tensor:
    """C_t = H_k(T_t, p_theta) with T_t = softmax(log p_ref + beta * 1[y_t]) (GIFT, Zhao et al., arXiv:2601.09233:
    the one-hot SFT target is the zero-temperature limit, beta -> inf; beta = 0 distils the reference).

    The cross-entropy is on the top-k atoms, y_t as its own atom, and the rest as one bucket (exact at k = |V|). The
    authors' code (github.com/zzy1127/GIFT @120a2f7, verl/trainer/fsdp_gift_trainer.py and
    exp_scripts/run_gift_training.sh) builds this target over the full vocabulary with beta = 20 and
    smooth_lambda = 0, averaged over response tokens: prift's defaults."""
    probs, tail, online = gift_target(topk, beta)
    online_log_tail = log_tail(online)
    return bucket_cross_entropy(probs, tail, online.clamp(min=-1e30), online_log_tail)


def online_logp_at(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, ids: torch.Tensor,
                   target_logp: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p_theta(ids) [B, T, k] with gradient, from hidden states [B, T, H], the LM head and the target log-probs
    that TRL's fused head returned: logsumexp(z) = z_y - log p(y), so z_ids - (z_y - log p(y)) needs only k + 1
    logits per position. Token chunks are checkpointed, so the gathered head rows [n, k+1, H] never pile up."""
    rows = mask.nonzero(as_tuple=True)
    flat_ids = torch.cat([ids[rows], labels[rows].clamp(min=0)[:, None]], -1)
    flat_hidden = hidden[rows]
    step = max(1, (1 << 24) // (flat_ids.shape[-1] * hidden.shape[-1]))

    def logits(h, i, w, b):
        z = torch.einsum("nh,nkh->nk", h, w[i])
        return z if b is None else z + b[i]

    chunks = [torch.utils.checkpoint.checkpoint(logits, flat_hidden[s:s + step], flat_ids[s:s + step], weight, bias,
                                                use_reentrant=False) for s in range(0, flat_ids.shape[0], step)]
    z = torch.cat(chunks) if chunks else flat_hidden.new_zeros((0, flat_ids.shape[-1]))
    lse = z[:, -1] - target_logp[rows]
    logp = (z[:, :-1] - lse[:, None]).float()
    return logp.new_zeros((*mask.shape, ids.shape[-1])).index_put(rows, logp)


def term_losses(terms: dict[str, dict], topk: TopK) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(C_t replacing the NLL or None, the sum of the additive A_t or None) for the configured `terms`."""
    replaced, added = None, None
    for name, params in terms.items():
        term = get_term(name)
        value = term.fn(topk, **params)
        if term.replaces_nll:
            replaced = value
        else:
            added = value if added is None else added + value
    return replaced, added
