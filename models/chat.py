"""Where a chat checkpoint's generation must stop: the chat template's turn end and the EOS tokens.

A model trained on a chat template ends its answer with the text the template puts after an assistant message
(ChatML: ``<|im_end|>\\n``); the special tokens of that text are its *turn-end tokens*. Generation stops by default
only at the *EOS tokens*: the tokenizer's ``eos_token`` and the model's ``generation_config.eos_token_id``. When the
two sets do not meet (e.g. a base checkpoint whose EOS is ``<|endoftext|>``, fine-tuned on ChatML), a sampled answer
runs on past ``<|im_end|>`` into an invented next turn. Both stages read the rule from here: RL refuses to train on
such a checkpoint (:mod:`prift.rl.template`), ``prift eval`` stops at the turn end and the EOS tokens and says so
(:func:`prift.eval.templates.generation_stops`).
"""

from __future__ import annotations

from prift.models.loading import resolve_model_path

PROBE = "PRIFT-PROBE-ANSWER"


def turn_end_text(tokenizer) -> str:
    """The text the chat template puts after an assistant message's content, read off a rendered probe
    conversation (ChatML: ``<|im_end|>\\n``). The tokenizer must have a chat template."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "?"}, {"role": "assistant", "content": PROBE}],
                                         tokenize=False)
    return text[text.index(PROBE) + len(PROBE):]


def turn_end_token_ids(tokenizer) -> list[int]:
    """The added (special) tokens of :func:`turn_end_text`, in order and once each (ChatML: ``<|im_end|>``); empty
    when the template ends a turn with plain text only."""
    added = set(tokenizer.added_tokens_decoder)
    ids = tokenizer(turn_end_text(tokenizer), add_special_tokens=False)["input_ids"]
    return list(dict.fromkeys(i for i in ids if i in added))


def model_eos_ids(generation_config) -> list[int]:
    """``generation_config.eos_token_id`` (an id, a list or unset; ``generation_config`` may be None) as a list."""
    value = getattr(generation_config, "eos_token_id", None)
    return [i for i in (value if isinstance(value, (list, tuple)) else [value]) if i is not None]


def eos_token_ids(tokenizer, generation_config=None) -> list[int]:
    """The tokens that stop generation by default: the tokenizer's ``eos_token_id``, then
    :func:`model_eos_ids`, once each."""
    ids = [tokenizer.eos_token_id, *model_eos_ids(generation_config)]
    return list(dict.fromkeys(i for i in ids if i is not None))


def load_generation_config(name_or_path: str):
    """The checkpoint's ``GenerationConfig`` as ``generate`` would use it: ``generation_config.json``, else the one
    transformers derives from ``config.json``."""
    from transformers import AutoConfig, GenerationConfig

    path = resolve_model_path(name_or_path)
    try:
        return GenerationConfig.from_pretrained(path)
    except OSError:  # no generation_config.json
        return GenerationConfig.from_model_config(AutoConfig.from_pretrained(path))
