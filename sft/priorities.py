"""Priority rules: signals -> token weights m_t, one short pure function per rule in a small registry.

Every rule maps per-token signals (see `prift.sft.signals`) of *some* source — the online model, a frozen
reference, an EMA of the online model, or the data — to a weight. The loss is then

    L = sum_t m_t * CE_t * mask_t / D        (m_t detached; D = response tokens, or kept tokens)

**Contract:** `token_weights(rule, logits, labels, **params) -> Tensor[B, T]` applies one rule to the logits it is
given. `logits[:, t]` scores `labels[:, t]` (already aligned); positions with `labels == -100` get weight 0; the
result is detached. An unknown rule raises `ValueError` listing the valid names.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from prift.sft.signals import LN_TOP_K, signals_from_logits

Signals = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Rule:
    """A registered rule: `fn(signals, mask, **params)`, the source signals it reads (`signals`), the reference
    signals it also reads whatever the source (`reference_signals`, rho1), and data columns it reads (`data`).
    `topk`: it also reads `entropy` (the online model's, exact) and `topk_kl` (KL_k(online || reference) on the
    reference's top-k, `prift.sft.objectives`). `distinct_reference`: it is void when the reference is the start
    checkpoint (rho1's excess loss is 0 on every token at step 0)."""

    name: str
    fn: Callable[..., torch.Tensor]
    signals: tuple[str, ...] = ()
    reference_signals: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    topk: bool = False
    distinct_reference: bool = False

    @property
    def params(self) -> dict[str, object]:
        """Tunable parameters and their defaults (`inspect.Parameter.empty` when required)."""
        sig = inspect.signature(self.fn)
        return {n: p.default for n, p in list(sig.parameters.items())[2:]}


RULES: dict[str, Rule] = {}


def register_rule(name: str, signals: tuple[str, ...] = (), reference_signals: tuple[str, ...] = (),
                  data: tuple[str, ...] = (), topk: bool = False, distinct_reference: bool = False):
    """Decorator adding a rule to `RULES`; a duplicate name is an error."""

    def wrap(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        if name in RULES:
            raise ValueError(f"priority rule {name!r} is already registered")
        RULES[name] = Rule(name, fn, signals, reference_signals, data, topk, distinct_reference)
        return fn

    return wrap


def get_rule(name: str) -> Rule:
    if name not in RULES:
        raise ValueError(f"unknown priority rule {name!r}; valid rules: {', '.join(sorted(RULES))}")
    return RULES[name]


@register_rule("nll")
def nll(signals: Signals, mask: torch.Tensor) -> torch.Tensor:
    """m_t = 1 (plain SFT)."""
    return mask.float()


@register_rule("prob", signals=("logp",))
def prob(signals: Signals, mask: torch.Tensor) -> torch.Tensor:
    """m_t = p(y_t). Online source: DFT; frozen reference: PriFT-prob."""
    return signals["logp"].exp()


@register_rule("mass", signals=("mass",))
def mass(signals: Signals, mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """m_t = 1[ p(y_t) + sum_v p(v)*1[p(v) < p(y_t)] >= threshold ]: y_t lies in the top-p=(1-threshold) nucleus
    (PriFT-mass, threshold tau = 0.5)."""
    return (signals["mass"] >= threshold).float()


PROFIT_DIRECTIONS: dict[str, Callable[[torch.Tensor, float, float], torch.Tensor]] = {
    "higher": lambda p, lo, hi: p >= lo,
    "lower": lambda p, lo, hi: p < lo,
    "middle": lambda p, lo, hi: (p >= lo) & (p < hi),
}


@register_rule("profit", signals=("logp",))
def profit(signals: Signals, mask: torch.Tensor, threshold: float = 0.1, direction: str = "higher",
           upper: float = 0.9) -> torch.Tensor:
    """ProFit: higher m_t = 1[p >= threshold]; lower m_t = 1[p < threshold] (the high-pass filter experiment);
    middle m_t = 1[threshold <= p < upper]."""
    if direction not in PROFIT_DIRECTIONS:
        raise ValueError(f"unknown profit direction {direction!r}; valid: {', '.join(PROFIT_DIRECTIONS)}")
    return PROFIT_DIRECTIONS[direction](signals["logp"].exp(), threshold, upper).float()


def segment_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Index of the sequence each position belongs to within its row: a new sequence starts where position_ids
    is 0 (one per row when padded, several in a padding-free packed row)."""
    return (position_ids == 0).long().cumsum(dim=-1).sub(1).clamp(min=0)


def adaptive_tau(logp: torch.Tensor, mask: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
    """TALR's tau: median over sequences (with >= 1 scored token) of the sequence's mean NLL (the mean of the two
    middle values for an even count). A sequence is a row, or within a packed row a run of equal ``segments``
    (:func:`segment_ids`), so packing leaves tau unchanged."""
    if segments is None:
        segments = torch.zeros(mask.shape, dtype=torch.long, device=mask.device)
    rows = torch.arange(mask.shape[0], device=mask.device)[:, None]
    groups = (rows * (int(segments.max()) + 1) + segments).reshape(-1)
    size = int(groups.max()) + 1
    nll = torch.zeros(size, device=mask.device).index_add_(0, groups, -(logp * mask).reshape(-1).float())
    counts = torch.zeros(size, device=mask.device).index_add_(0, groups, mask.reshape(-1).float())
    scored = nll[counts > 0] / counts[counts > 0]
    if scored.numel() == 0:
        return torch.tensor(1.0, device=logp.device)
    return scored.quantile(0.5).clamp(min=1e-6)


@register_rule("talr", signals=("logp",))
def talr(signals: Signals, mask: torch.Tensor, tau: float | None = None) -> torch.Tensor:
    """m_t = p(y_t)^(1/tau); tau=None: adaptive, the median over sequences of the mean NLL (sequences of a packed
    row told apart by ``signals["segments"]``, which the trainer derives from position_ids)."""
    segments = signals.get("segments")
    temperature = adaptive_tau(signals["logp"], mask.float(), segments) if tau is None else torch.tensor(float(tau))
    return (signals["logp"] / temperature).exp()


@register_rule("eaft", signals=("ent20",))
def eaft(signals: Signals, mask: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """m_t = (H_top20(t) / ln 20)^alpha (entropy scaling)."""
    return (signals["ent20"] / LN_TOP_K).clamp(min=0.0) ** alpha


@register_rule("power", signals=("logp",))
def power(signals: Signals, mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """m_t = p(y_t)^alpha (the Beyond-Log-Likelihood family; alpha = 1 is DFT/PriFT-prob)."""
    return (alpha * signals["logp"]).exp()


def top_fraction(scores: torch.Tensor, mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """1 on the ceil(ratio * n) scored positions (mask != 0) with the largest `scores`, else 0 (float, like mask)."""
    flat_mask = mask.reshape(-1).bool()
    keep = math.ceil(ratio * int(flat_mask.sum()))
    chosen = torch.zeros(scores.numel(), device=scores.device)
    if keep > 0:
        chosen[scores.reshape(-1).float().masked_fill(~flat_mask, float("-inf")).topk(keep).indices] = 1.0
    return chosen.view(scores.shape)


@register_rule("rho1", signals=("logp",), reference_signals=("logp",), distinct_reference=True)
def rho1(signals: Signals, mask: torch.Tensor, ratio: float = 0.6) -> torch.Tensor:
    """m_t = 1 on the top ceil(ratio * n) scored tokens by excess loss CE_online - CE_ref = ref_logp - logp, else 0."""
    return top_fraction(signals["ref_logp"] - signals["logp"], mask, ratio)


@register_rule("eksft", topk=True)
def eksft(signals: Signals, mask: torch.Tensor, entropy_ratio: float = 0.2, kl_ratio: float = 0.2) -> torch.Tensor:
    """m_t = 0 on the top ceil(entropy_ratio * n) scored tokens by the online entropy H_t and on the top
    ceil(kl_ratio * n) by KL_k(p_theta || p_ref), else 1 (EKSFT, Liu et al., arXiv:2605.29303: tokens of high entropy
    or high KL to the reference are left out of imitation). Fractions over the micro-batch's scored tokens. The
    authors' code (github.com/MINE-USTC/EKSFT @0908ab2, eksft/trainer.py and examples/example_eksft/eksft.sh) uses
    the same union mask over the batch's response tokens, KL(p_theta || p_ref), with top_k_ratio = 0.2: prift's
    defaults. It also adds an entropy bonus and a KL penalty (lambda 0.05 each) on the masked tokens, which this
    rule leaves out (a `kl_anchor` loss term gives the penalty)."""
    dropped = top_fraction(signals["entropy"], mask, entropy_ratio) + top_fraction(signals["topk_kl"], mask, kl_ratio)
    return (dropped == 0).float()


PEAR_LEVELS = ("sequence", "token", "block")


def _suffix_log_ratio(log_ratio: torch.Tensor, segments: torch.Tensor, gamma: float) -> torch.Tensor:
    """S_t = sum_{s > t, same sequence} gamma^(s-t-1) * log_ratio_s, by a reverse scan over positions."""
    out = torch.zeros_like(log_ratio)
    acc = torch.zeros_like(log_ratio[:, 0])
    for t in range(log_ratio.shape[1] - 1, -1, -1):
        if t + 1 < log_ratio.shape[1]:
            acc = torch.where(segments[:, t + 1] == segments[:, t], acc, 0.0)
        out[:, t] = acc
        acc = log_ratio[:, t] + gamma * acc
    return out


def _segment_total(values: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Each position's sum of `values` over its sequence (row, or run of equal segments in a packed row)."""
    groups = torch.arange(values.shape[0], device=values.device)[:, None] * (int(segments.max()) + 1) + segments
    totals = torch.zeros(int(groups.max()) + 1, device=values.device).index_add_(0, groups.reshape(-1),
                                                                                 values.reshape(-1).float())
    return totals[groups]


def _block_ends(segments: torch.Tensor, block: int) -> torch.Tensor:
    """The last position of each position's block: blocks of `block` tokens counted from its sequence's start."""
    positions = torch.arange(segments.shape[1], device=segments.device).expand_as(segments)
    new = torch.ones_like(segments, dtype=torch.bool)
    new[:, 1:] = segments[:, 1:] != segments[:, :-1]
    starts = torch.where(new, positions, 0).cummax(dim=1).values
    ends = starts + ((positions - starts) // block + 1) * block - 1
    return ends.clamp(max=segments.shape[1] - 1)


@register_rule("pear", signals=("logp",), reference_signals=("logp",))
def pear(signals: Signals, mask: torch.Tensor, level: str = "token", gamma: float = 1.0, clip: float = 5.0,
         block: int = 64) -> torch.Tensor:
    """m_t = exp(clip_[-c, c](G_t)) with log-ratios d_s = log p_theta(y_s) - log p_beta(y_s) on scored tokens, p_beta
    the behaviour policy's data log-probs (the reference's cached `logp`):

    - sequence: G_t = sum_s d_s over t's sequence (one importance weight per sequence);
    - token:    G_t = sum_{s > t} gamma^(s-t-1) d_s (the discounted suffix ratio of the continuation after t);
    - block:    the token suffix taken at the last token of t's block (`block` tokens from its sequence's start), so
                the tokens of a block share one weight (0 past its sequence's end).

    PEAR (Zhang et al., arXiv:2602.01058): L = sum_t sg[G_t] l_t. The paper's exact stabilisation and defaults were
    not reachable from here: the log-space clip c = 5, gamma = 1 and block = 64 are prift's choices."""
    if level not in PEAR_LEVELS:
        raise ValueError(f"pear level: unknown value {level!r}; valid: {', '.join(PEAR_LEVELS)}")
    segments = signals.get("segments")
    if segments is None:
        segments = torch.zeros(mask.shape, dtype=torch.long, device=mask.device)
    log_ratio = (signals["logp"] - signals["ref_logp"]) * mask
    if level == "sequence":
        total = _segment_total(log_ratio, segments)
    else:
        total = _suffix_log_ratio(log_ratio, segments, gamma)
        if level == "block":
            ends = _block_ends(segments, block)
            total = torch.where(segments.gather(1, ends) == segments, total.gather(1, ends), 0.0)
    return total.clamp(-clip, clip).exp()


@register_rule("signed", data=("token_labels",))
def signed(signals: Signals, mask: torch.Tensor, negative_weight: float = 1.0) -> torch.Tensor:
    """m_t = +1 where token_labels > 0, -negative_weight where < 0, 0 where 0 (the unlearning regime)."""
    labels = signals["token_labels"]
    return torch.where(labels > 0, 1.0, torch.where(labels < 0, -float(negative_weight), 0.0))


def apply_rule(rule: str | Rule, signals: Signals, mask: torch.Tensor, **params) -> torch.Tensor:
    """Weights from already computed signals; zero where `mask` is 0; detached, fp32."""
    rule = get_rule(rule) if isinstance(rule, str) else rule
    allowed = rule.params
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(f"rule {rule.name!r} got unknown parameter(s) {sorted(unknown)}; valid: {sorted(allowed)}")
    missing = [n for n, d in allowed.items() if d is inspect.Parameter.empty and n not in params]
    if missing:
        raise ValueError(f"rule {rule.name!r} needs parameter(s) {missing}")
    mask = mask.float()
    with torch.no_grad():
        return (rule.fn(signals, mask, **params).float() * mask).detach()


def token_weights(rule: str, logits: torch.Tensor, labels: torch.Tensor, *, vocab_chunk: int | None = None,
                  ref_logits: torch.Tensor | None = None, token_labels: torch.Tensor | None = None,
                  **params) -> torch.Tensor:
    """Contract: weights [B, T] of `rule` on aligned `logits` [B, T, V] / `labels` [B, T]; 0 where labels == -100.

    `vocab_chunk` streams the vocabulary (mass, eaft); `ref_logits` feeds rules that also read the reference (rho1);
    `token_labels` feeds data-driven rules (signed). Other keyword arguments are the rule's parameters.
    """
    spec = get_rule(rule)
    mask = labels != -100
    signals = dict(signals_from_logits(logits, labels, spec.signals, vocab_chunk))
    if spec.reference_signals:
        if ref_logits is None:
            raise ValueError(f"rule {rule!r} needs `ref_logits` (it reads the reference's {spec.reference_signals})")
        ref = signals_from_logits(ref_logits, labels, spec.reference_signals, vocab_chunk)
        signals.update({f"ref_{name}": value for name, value in ref.items()})
    if spec.data:
        if token_labels is None:
            raise ValueError(f"rule {rule!r} needs per-token `token_labels`")
        signals["token_labels"] = token_labels
    return apply_rule(spec, signals, mask, **params)

