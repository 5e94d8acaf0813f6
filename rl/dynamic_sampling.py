"""DAPO dynamic sampling, the parts that do not need a trainer: which groups to keep, splitting a scored batch into
prompt groups, re-padding kept groups from different rounds into one batch, and the refill prompt stream.

A group (the G completions of one prompt) is kept iff its weighted reward r_i = sum_f w_f r_f,i varies, the sum
taken over the rewards ``dynamic_sampling_metric`` selects (DAPO's default: the accuracy rewards only, so a group all
wrong or all right is dropped even when a length reward varies):
``std_g = nanstd(r over the group)`` is neither close to 0 nor NaN, the criterion TRL's own
``frac_reward_zero_std`` uses. Such a group has a non-zero advantage for at least one completion; a zero-variance
group has A_i = 0 for all i (``scale_rewards`` group or none) and contributes no policy gradient.
See ``docs/notes/trl-dynamic-sampling.md`` for why the selection is made from the gathered rewards.
"""

from __future__ import annotations

import torch
from trl.trainer.utils import RepeatSampler, nanstd

# per-row tensors of TRL's scored batch -> (padding side, padding value); the pad token id replaces None
PADDING = {
    "prompt_ids": ("left", None),
    "prompt_mask": ("left", 0),
    "completion_ids": ("right", None),
    "completion_mask": ("right", 0),
    "tool_mask": ("right", 1),
    "old_per_token_logps": ("right", 0.0),
    "ref_per_token_logps": ("right", 0.0),
    "sampling_per_token_logps": ("right", 0.0),
    "importance_sampling_ratio": ("right", 1.0),
    "advantages": ("right", 0.0),
}
BATCH_KEYS = ("num_items_in_batch",)  # batch-level values, recomputed after merging
REFILL_SEED_OFFSET = 1_000_003  # refill prompts come from a stream other than the main sampler's


def group_rewards(rewards_per_func: torch.Tensor, weights: torch.Tensor, num_generations: int,
                  read: list[bool] | None = None) -> torch.Tensor:
    """(groups, G) weighted reward over the functions ``read`` selects (default all).

    ``rewards_per_func`` is TRL's gathered (rows, functions) reward tensor (NaN = not applicable); rows in which every
    read function gave NaN stay NaN, as in TRL's advantage computation.
    """
    if read is not None:
        columns = [i for i, used in enumerate(read) if used]
        rewards_per_func, weights = rewards_per_func[:, columns], weights[columns]
    rewards = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    rewards[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan
    return rewards.view(-1, num_generations)


def keep_mask(rewards_per_func: torch.Tensor, weights: torch.Tensor, num_generations: int,
              read: list[bool] | None = None) -> torch.Tensor:
    """(groups,) bool: True where the group's :func:`group_rewards` has non-zero, non-NaN std."""
    std = nanstd(group_rewards(rewards_per_func, weights, num_generations, read), dim=1)
    return ~torch.isclose(std, torch.zeros_like(std)) & ~torch.isnan(std)


def split_groups(batch: dict, num_generations: int) -> list[dict]:
    """A scored batch of N rows -> N / G dicts of G rows each (batch-level keys left out)."""
    unknown = sorted(set(batch) - set(PADDING) - set(BATCH_KEYS))
    if unknown:
        raise NotImplementedError(f"dynamic sampling does not handle the batch fields {unknown} (multimodal or "
                                  "tool-calling batches)")
    rows = batch["prompt_ids"].size(0)
    return [{k: v[start:start + num_generations] for k, v in batch.items() if k in PADDING}
            for start in range(0, rows, num_generations)]


def masked(group: dict) -> dict:
    """A filler group: the same rows with no token left in the loss (completion mask 0)."""
    return {**group, "completion_mask": torch.zeros_like(group["completion_mask"])}


def _pad(tensor: torch.Tensor, width: int, side: str, value) -> torch.Tensor:
    missing = width - tensor.size(1)
    if missing == 0:
        return tensor
    fill = tensor.new_full((tensor.size(0), missing), value)
    return torch.cat([fill, tensor] if side == "left" else [tensor, fill], dim=1)


def merge_groups(groups: list[dict], pad_token_id: int) -> dict:
    """Concatenate groups from different rounds: prompt tensors left-padded and completion tensors right-padded to
    the widest group (pad token / mask 0 / log-prob 0 / ratio 1 / tool mask 1)."""
    merged = {}
    for key in groups[0]:
        side, value = PADDING[key]
        parts = [g[key] for g in groups]
        if parts[0].dim() == 2:
            width = max(p.size(1) for p in parts)
            parts = [_pad(p, width, side, pad_token_id if value is None else value) for p in parts]
        merged[key] = torch.cat(parts, dim=0)
    return merged


class RefillStream:
    """Fresh prompt groups for refill rounds, in the same layout as TRL's training sampler.

    Its own ``RepeatSampler`` (each prompt repeated G times in a row, one pass, shuffled with ``seed +
    REFILL_SEED_OFFSET + epoch``) yields global batches of ``global_rows``; process r takes rows
    ``[r * rows, (r + 1) * rows)``, the rule accelerate's batch sharding uses, so every process draws the same
    prompts in the same order without communicating. Exhausted -> reshuffled with the next epoch's seed.
    """

    def __init__(self, dataset, num_generations: int, rows: int, num_processes: int, rank: int, seed: int):
        self.dataset, self.num_generations, self.rows, self.rank = dataset, num_generations, rows, rank
        self.global_rows = rows * num_processes
        if len(dataset) * num_generations < self.global_rows:
            raise ValueError(f"dynamic sampling refills whole batches of {self.global_rows // num_generations} "
                             f"prompts; the dataset has only {len(dataset)}")
        self.seed, self.epoch = seed, 0
        self._indices = iter(())

    def _next_epoch(self):
        sampler = RepeatSampler(self.dataset, mini_repeat_count=self.num_generations,
                                batch_size=self.global_rows // self.num_generations, repeat_count=1, shuffle=True,
                                seed=self.seed + REFILL_SEED_OFFSET + self.epoch)
        self.epoch += 1
        self._indices = iter(list(sampler))

    def _next_indices(self) -> list[int]:
        first = next(self._indices, None)
        if first is None:
            self._next_epoch()
            first = next(self._indices)
        return [first, *(next(self._indices) for _ in range(self.global_rows - 1))]

    def skip(self, batches: int) -> None:
        """Pass over the next ``batches`` global batches (a resumed run skips the ones it already drew)."""
        for _ in range(batches):
            self._next_indices()

    def next_batch(self) -> list[dict]:
        """This process's rows of the next global batch."""
        global_batch = self._next_indices()
        start = self.rank * self.rows
        return [self.dataset[i] for i in global_batch[start:start + self.rows]]
