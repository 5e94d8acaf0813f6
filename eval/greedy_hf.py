"""Greedy decoding for the HF backend that drops each row from the batch once it has stopped.

``model.generate`` keeps every row of a batch in every forward until the last row stops, so one long answer makes
the finished rows pay for its tail: on the CPU a decode step is dominated by reading each row's KV cache (~65 MB a
row for a 5-shot GSM8K prompt on SmolLM2-135M), so those rows are most of the cost. This loop does what
``generate``'s greedy search does (a prefill, then one token a step with the cache and ``position_ids`` from the
attention mask, ``argmax`` of the last logits) and, after each step, keeps only the rows still running
(``DynamicCache.batch_select_indices``). On the CPU a padded batch of long prompts is prefilled one prompt at a
time, unpadded, and the caches stacked left-padded: there the causal attention kernel beats the masked one a padded
batch needs once prompts are long (``UNPADDED_PREFILL_MIN_TOKENS``), while short prompts are cheaper batched. A
row stops at a stop token (kept as its last token, as ``generate`` keeps its EOS) or once its decoded text contains a stop string. Completions equal ``generate``'s up to the float rounding
of a smaller batch (``benchmarks/eval_throughput.py`` counts identical completions against lm-eval's).

Contract: ``greedy_rows(model, batch, max_new_tokens, stop_ids, stop_strings, decode) -> list[list[int]]``, the new
tokens of each row in batch order. ``plain_greedy(model)`` says whether the model's generation config asks for
nothing this loop would skip (a logits processor or a non-dynamic cache); otherwise use ``generate``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch

# generation-config fields that make generate's greedy search differ from a plain argmax: (field, inert value;
# None, transformers 5's unset, is inert too)
_PROCESSORS = (("repetition_penalty", 1.0), ("no_repeat_ngram_size", 0), ("encoder_no_repeat_ngram_size", 0),
               ("bad_words_ids", None), ("min_length", 0), ("min_new_tokens", None), ("suppress_tokens", None),
               ("begin_suppress_tokens", None), ("forced_bos_token_id", None), ("forced_eos_token_id", None),
               ("sequence_bias", None), ("exponential_decay_length_penalty", None), ("cache_implementation", None),
               ("num_beams", 1), ("penalty_alpha", None), ("prompt_lookup_num_tokens", None))


# the padded width from which the CPU prefills prompts one by one. 10 prompts up to 30% shorter than the longest,
# SmolLM2-135M, 2 cores, one by one / padded batch: 3.2x at 16 tokens (a forward's fixed cost), 1.02x at 256,
# 0.99x at 512, 0.79x at 768, 0.74x at 1024, 0.60x for 5-shot GSM8K prompts; ~1.0x at any width without padding.
UNPADDED_PREFILL_MIN_TOKENS = 640


def plain_greedy(model) -> bool:
    """Whether greedy ``generate`` on ``model`` is argmax over the last logits with a dynamic cache."""
    config = model.generation_config
    if not getattr(type(model), "_supports_default_dynamic_cache", lambda: False)():
        return False
    return all(getattr(config, name, None) in (None, inert, [], {}) for name, inert in _PROCESSORS)


@torch.no_grad()
def greedy_rows(model, batch: dict[str, torch.Tensor], max_new_tokens: int, stop_ids: set[int],
                stop_strings: Sequence[str], decode: Callable[[list[int]], str]) -> list[list[int]]:
    ids, mask = batch["input_ids"], batch["attention_mask"]
    positions = mask_positions(mask)
    rows_first = (ids.device.type == "cpu" and ids.shape[1] >= UNPADDED_PREFILL_MIN_TOKENS
                  and not bool(mask.all()))  # an accelerator is better fed the whole batch
    logits, cache = (rows_first and _prefill_rows(model, ids, mask)) or _prefill_batch(model, ids, mask, positions)
    rows = [[] for _ in range(ids.shape[0])]
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    running = torch.arange(ids.shape[0], device=ids.device)  # batch index of each row still in the cache
    positions = positions[:, -1:]
    for _ in range(max_new_tokens):
        step = logits.argmax(-1)
        keep = []
        for j, (row, token) in enumerate(zip(running.tolist(), step.tolist(), strict=True)):
            rows[row].append(token)
            stopped = token in stop_ids or (stop_strings and any(s in decode(rows[row]) for s in stop_strings))
            if not stopped:
                keep.append(j)
        if not keep or len(rows[running[0].item()]) == max_new_tokens:
            break
        if len(keep) < len(running):  # drop the stopped rows from every tensor of the step
            index = torch.tensor(keep, device=ids.device)
            cache.batch_select_indices(index)
            running, mask, positions, step = running[index], mask[index], positions[index], step[index]
        mask = torch.cat([mask, mask.new_ones(len(running), 1)], dim=-1)
        positions = positions + 1
        logits = model(input_ids=step[:, None], attention_mask=mask, position_ids=positions, use_cache=True,
                       **{cache_arg: cache}).logits[:, -1, :]
    return rows


def mask_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded batch: each row's real tokens count from 0 (padding gets 0)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def _prefill_batch(model, ids, mask, positions):
    """The padded batch's prefill, as ``generate`` does it: (last logits [batch, vocab], cache)."""
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1, :], _cache_of(out)


def _prefill_rows(model, ids, mask):
    """Each row's prompt alone (its real tokens: attention takes the causal kernel instead of the masked one,
    ~1.6x faster for a 10-row 5-shot batch on the CPU), its keys and values then left-padded to the batch's width
    and stacked into one cache: the padded batch prefill's result up to float rounding (the padded columns stay
    masked in every later step). None when the cache has layers other than plain full attention."""
    from transformers import DynamicCache

    logits, layers = [], []
    for row, row_mask in zip(ids, mask, strict=True):
        out = model(input_ids=row[row_mask.bool()][None], use_cache=True, logits_to_keep=1)
        cache = _cache_of(out)
        if not isinstance(cache, DynamicCache) or any(type(layer).__name__ != "DynamicLayer" for layer in cache.layers):
            return None
        logits.append(out.logits[:, -1, :])
        layers.append([(layer.keys, layer.values) for layer in cache.layers])
    width = ids.shape[1]

    def stacked(tensors):  # [1, heads, length, dim] each -> [batch, heads, width, dim], zeros on the left
        return torch.cat([torch.nn.functional.pad(t, (0, 0, width - t.shape[-2], 0)) for t in tensors])

    merged = [(stacked([row[i][0] for row in layers]), stacked([row[i][1] for row in layers]))
              for i in range(len(layers[0]))]
    return torch.cat(logits), DynamicCache(merged, config=model.config)


def _cache_of(out):
    """The KV cache a forward returned (``cache`` since transformers 5.2x, ``past_key_values`` before)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values
