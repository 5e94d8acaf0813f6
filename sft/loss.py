"""The token-priority loss shared by every SFT variant.

    L = sum_t (m_t * CE_t + A_t) * mask_t / D

with A_t an optional additive per-token term (a KL anchor, `prift.sft.objectives`; unweighted by m_t), m_t detached and D the divisor: `response` = all scored response tokens (PriFT's default, masked tokens stay in
the divisor), `kept` = tokens with m_t != 0 only (Beyond-Log-Likelihood's thresholded objectives).
"""

from __future__ import annotations

import torch

DIVISORS = ("response", "kept")


def priority_loss(token_nll: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor, divisor: str = "response",
                  num_items: torch.Tensor | int | None = None, extra: torch.Tensor | None = None) -> torch.Tensor:
    """`token_nll` [B, T] (with grad), `weights` [B, T] (detached here), `mask` [B, T], `extra` A_t [B, T] (with
    grad) -> scalar loss.

    `num_items` overrides D for `response` (TRL passes the token count of the whole accumulated batch).
    """
    if divisor not in DIVISORS:
        raise ValueError(f"unknown divisor {divisor!r}; valid: {', '.join(DIVISORS)}")
    mask = mask.to(token_nll.dtype)
    weighted = (weights.detach().to(token_nll.dtype) * token_nll * mask).sum()
    if extra is not None:
        weighted = weighted + (extra.to(token_nll.dtype) * mask).sum()
    if divisor == "kept":
        count = ((weights != 0) & mask.bool()).sum()
    else:
        count = mask.sum() if num_items is None else num_items
    return weighted / torch.as_tensor(count, device=token_nll.device, dtype=token_nll.dtype).clamp(min=1)
