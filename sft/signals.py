"""Per-token signals of a next-token distribution, computed in fp32 and streamed over vocabulary chunks.

For each scored position t with target y_t and logits z_t (temperature 1):

    logp_t  = z_t[y_t] - logsumexp(z_t)                                   (target log-probability)
    mass_t  = p(y_t) + sum_v p(v) * 1[p(v) < p(y_t)]                      (PriFT-mass's u_t; ties count as above)
    ent20_t = -sum_{v in top20(z_t)} q(v) log q(v),  q = softmax over the top-20 logits (EAFT's H_top20)

No full fp32 [tokens x vocab] tensor is ever built: positions are processed in token chunks and, within a chunk,
the vocabulary in `vocab_chunk` slices (two passes: the log-normaliser, then the masked sums). The mass needs no
sort: it is a masked sum over the vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

SIGNAL_NAMES = ("logp", "mass", "ent20")
TOP_K_ENTROPY = 20
_ELEMENTS_PER_CHUNK = 1 << 24  # fp32 elements materialised at once (64 MiB)


def _vocab_slices(vocab: int, vocab_chunk: int | None) -> list[slice]:
    step = vocab if not vocab_chunk else int(vocab_chunk)
    return [slice(start, min(start + step, vocab)) for start in range(0, vocab, step)]


def _logsumexp_streamed(logits: torch.Tensor, slices: list[slice]) -> torch.Tensor:
    """log sum_v exp(z_v) in fp32 over vocab slices: an exact max pass, then a sum of exp(z - max)."""
    peak = torch.stack([logits[:, s].float().amax(dim=-1) for s in slices], dim=-1).amax(dim=-1)
    total = sum((logits[:, s].float() - peak[:, None]).exp().sum(dim=-1) for s in slices)
    return peak + total.log()


def _top20_entropy(logits: torch.Tensor, slices: list[slice]) -> torch.Tensor:
    k = min(TOP_K_ENTROPY, logits.shape[-1])
    candidates = torch.cat([logits[:, s].float().topk(min(k, s.stop - s.start), dim=-1).values for s in slices], -1)
    top = candidates.topk(k, dim=-1).values
    logq = top.log_softmax(dim=-1)
    return -(logq.exp() * logq).sum(dim=-1)


def _check_names(names: Iterable[str]) -> set[str]:
    names = set(names)
    unknown = names - set(SIGNAL_NAMES)
    if unknown:
        raise ValueError(f"unknown signal(s) {sorted(unknown)}; valid: {', '.join(SIGNAL_NAMES)}")
    return names


def chunk_signals(logits: torch.Tensor, targets: torch.Tensor, names: Iterable[str],
                  vocab_chunk: int | None = None) -> dict[str, torch.Tensor]:
    """Signals for a flat chunk: `logits` [N, V] (any float dtype), `targets` [N] (valid ids) -> {name: [N] fp32}."""
    names = _check_names(names)
    out: dict[str, torch.Tensor] = {}
    if not names:
        return out
    slices = _vocab_slices(logits.shape[-1], vocab_chunk)
    if names & {"logp", "mass"}:
        lse = _logsumexp_streamed(logits, slices)
        target_logit = logits.gather(-1, targets[:, None]).squeeze(-1).float()
        logp = target_logit - lse
        out["logp"] = logp
        if "mass" in names:
            p_target = logp.exp()
            below = torch.zeros_like(p_target)
            for s in slices:
                p = (logits[:, s].float() - lse[:, None]).exp()
                below += torch.where(p < p_target[:, None], p, torch.zeros_like(p)).sum(dim=-1)
            out["mass"] = p_target + below
    if "ent20" in names:
        out["ent20"] = _top20_entropy(logits, slices)
    return {name: out[name] for name in names}


def _token_chunk(vocab: int, vocab_chunk: int | None) -> int:
    return max(1, _ELEMENTS_PER_CHUNK // min(vocab, vocab_chunk or vocab))


@torch.no_grad()
def signals_from_logits(logits: torch.Tensor, labels: torch.Tensor, names: Iterable[str],
                        vocab_chunk: int | None = None, top_k: int | None = None) -> dict[str, torch.Tensor]:
    """Signals at every position of aligned `logits` [B, T, V] / `labels` [B, T]; 0 where `labels == -100`.

    `top_k` adds the top-k summary (`prift.sft.topk.topk_logprobs`: `topk_ids` [B, T, k], `topk_logp`, `topk_tail`).
    """
    return _signals_over_positions(lambda rows: logits.reshape(-1, logits.shape[-1])[rows], logits.shape[-1],
                                   labels, names, vocab_chunk, top_k)


@torch.no_grad()
def signals_from_hidden(hidden: torch.Tensor, project: Callable[[torch.Tensor], torch.Tensor], vocab: int,
                        labels: torch.Tensor, names: Iterable[str], vocab_chunk: int | None = None,
                        top_k: int | None = None) -> dict[str, torch.Tensor]:
    """Like `signals_from_logits`, from hidden states [B, T, H] and the LM head `project`, one token chunk at a time.

    Only [token_chunk, V] logits exist at once, so a 150k vocabulary never costs a [B, T, V] tensor.
    """
    flat = hidden.reshape(-1, hidden.shape[-1])
    return _signals_over_positions(lambda rows: project(flat[rows]), vocab, labels, names, vocab_chunk, top_k)


def _signals_over_positions(logits_for: Callable[[torch.Tensor], torch.Tensor], vocab: int, labels: torch.Tensor,
                            names: Iterable[str], vocab_chunk: int | None,
                            top_k: int | None = None) -> dict[str, torch.Tensor]:
    from prift.sft.topk import topk_logprobs

    names = tuple(dict.fromkeys(names))
    _check_names(names)
    flat_labels = labels.reshape(-1)
    valid_rows = (flat_labels != -100).nonzero().squeeze(-1)
    shapes = {name: ((), torch.float32) for name in names}
    if top_k:
        shapes |= {"topk_ids": ((top_k,), torch.long), "topk_logp": ((top_k,), torch.float32),
                   "topk_tail": ((), torch.float32)}
    out = {name: torch.zeros((*flat_labels.shape, *shape), dtype=dtype, device=labels.device)
           for name, (shape, dtype) in shapes.items()}
    step = _token_chunk(vocab, vocab_chunk)
    for start in range(0, valid_rows.numel(), step):
        rows = valid_rows[start:start + step]
        logits = logits_for(rows)
        values = chunk_signals(logits, flat_labels[rows], names, vocab_chunk)
        if top_k:
            values |= topk_logprobs(logits, top_k, vocab_chunk)
        for name, value in values.items():
            out[name][rows] = value.to(out[name].device)
    return {name: value.view(*labels.shape, *value.shape[1:]) for name, value in out.items()}


LN_TOP_K = math.log(TOP_K_ENTROPY)
