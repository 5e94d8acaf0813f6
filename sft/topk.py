"""A next-token distribution kept as its top-k atoms plus one tail bucket, and the divergences on that support.

For logits z over a vocabulary V, the top-k summary of p = softmax(z) is

    ids_i  = the k largest logits' token ids            (int, descending by logit)
    logp_i = z[ids_i] - logsumexp(z)                    (fp32 here; fp16/bf16 on disk)
    tail   = 1 - sum_i p(ids_i)                         (fp32: the mass outside the top-k, kept so bounds stay exact)

It is extracted streamed over vocabulary slices (`vocab_chunk`): a running top-k per slice and the streamed
log-normaliser of `prift.sft.signals`, so a 150k vocabulary never costs a [tokens x vocab] fp32 tensor.

Divergences on the *bucketed* support (the k atoms and the tail merged into one outcome): merging outcomes can only
lose information, so for any P, Q (data-processing / log-sum inequality)

    KL_k(P || Q) = sum_i P_i log(P_i / Q_i) + P_tail log(P_tail / Q_tail)
    KL(P || Q) - KL_k(P || Q) = P_tail * KL(P_tail-normalised || Q_tail-normalised)  in [0, P_tail * max_tail log(P/Q)]

and KL_k = KL exactly when the tail is empty (k = |V|). The same decomposition holds for the soft cross-entropy
H_k(T, Q) = -sum_i T_i log Q_i - T_tail log Q_tail, short of the full one by T_tail * H(T_tail-normalised, Q_tail-norm.).
"""

from __future__ import annotations

import torch

from prift.sft.signals import _logsumexp_streamed, _vocab_slices

TOPK_FIELDS = ("topk_ids", "topk_logp", "topk_tail")
TOPK_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
_EMPTY_TAIL = 1e-6  # a tail mass below this is fp32 rounding of an empty tail
_TINY = 1e-30  # floor of a bucket's probability inside a log (an empty tail contributes 0 * log(tiny) = 0)


def topk_logprobs(logits: torch.Tensor, k: int, vocab_chunk: int | None = None) -> dict[str, torch.Tensor]:
    """`logits` [N, V] -> {topk_ids [N, k] int64, topk_logp [N, k] fp32, topk_tail [N] fp32}, streamed over slices."""
    vocab = logits.shape[-1]
    if not 1 <= k <= vocab:
        raise ValueError(f"top_k must lie in [1, {vocab}] (the vocabulary size), got {k}")
    slices = _vocab_slices(vocab, vocab_chunk)
    lse = _logsumexp_streamed(logits, slices)
    values, ids = [], []
    for s in slices:
        top = logits[:, s].float().topk(min(k, s.stop - s.start), dim=-1)
        values.append(top.values)
        ids.append(top.indices + s.start)
    best = torch.cat(values, -1).topk(k, dim=-1)
    logp = best.values - lse[:, None]
    tail = (1.0 - logp.exp().sum(-1)).clamp(min=0.0)
    return {"topk_ids": torch.cat(ids, -1).gather(-1, best.indices), "topk_logp": logp, "topk_tail": tail}


def log_tail(logp: torch.Tensor) -> torch.Tensor:
    """log(1 - sum_i exp(logp_i)) over the last dim (the log-mass outside the given atoms). Within fp32 rounding of
    an empty tail (mass < 1e-6) it is a constant, floored at log(1e-30), with no gradient (whose 1 / tail would be
    inf or nan)."""
    total = logp.exp().sum(-1)
    ok = total < 1.0 - _EMPTY_TAIL
    inside = torch.log1p(-torch.where(ok, total, torch.zeros_like(total)))
    return torch.where(ok, inside, (1.0 - total.detach()).clamp(min=_TINY).log())


def bucket_kl(p_logp: torch.Tensor, p_tail: torch.Tensor, q_logp: torch.Tensor,
              q_log_tail: torch.Tensor) -> torch.Tensor:
    """KL_k(P || Q) per position: atoms [..., k] as log-probs, P's tail as a mass, Q's tail as a log-mass."""
    atoms = (p_logp.exp() * (p_logp - q_logp)).sum(-1)
    tail = p_tail * (p_tail.clamp(min=_TINY).log() - q_log_tail)
    return atoms + tail


def bucket_cross_entropy(t_prob: torch.Tensor, t_tail: torch.Tensor, q_logp: torch.Tensor,
                         q_log_tail: torch.Tensor) -> torch.Tensor:
    """H_k(T, Q) = -sum_i T_i log Q_i - T_tail log Q_tail per position (T as probabilities)."""
    return -(t_prob * q_logp).sum(-1) - t_tail * q_log_tail
