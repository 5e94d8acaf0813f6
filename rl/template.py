"""The chat-template / EOS check: RL must render prompts and stop completions exactly as the start checkpoint
was trained to, or a format reward stays at 0 for reasons that have nothing to do with the policy.

Two conditions, each a `TemplateError` naming both sides:

1. a tokenizer taken from elsewhere (``tokenizer_name_or_path``) has the start checkpoint's chat template and EOS
   token;
2. the template ends an assistant turn with a token that stops generation (the tokenizer's EOS or one of the
   model's ``generation_config.eos_token_id``), so sampled answers end where SFT answers ended. The turn end and
   the EOS tokens are read as :mod:`prift.models.chat` defines them, the same rule ``prift eval`` stops by.
"""

from __future__ import annotations

from prift.models.chat import eos_token_ids, turn_end_text, turn_end_token_ids
from prift.models.loading import load_tokenizer


class TemplateError(ValueError):
    """The RL tokenizer or template does not match the start checkpoint."""


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:117]}..."


def check_same_template(tokenizer, tokenizer_source: str, checkpoint: str) -> None:
    """Condition 1 (nothing to check when the tokenizer is the checkpoint's own)."""
    if tokenizer_source == checkpoint:
        return
    start = load_tokenizer(checkpoint)
    for attr in ("chat_template", "eos_token"):
        ours, theirs = getattr(tokenizer, attr, None), getattr(start, attr, None)
        if ours != theirs:
            raise TemplateError(f"{attr} mismatch: tokenizer {tokenizer_source!r} has {_short(ours)} but the start "
                                f"checkpoint {checkpoint!r} has {_short(theirs)}; RL prompts must be rendered the way "
                                "the checkpoint was trained (drop tokenizer_name_or_path to use the checkpoint's own)")


def check_turn_end(tokenizer, generation_config, tokenizer_source: str) -> None:
    """Condition 2: one of the EOS tokens is a turn-end token of the template (:mod:`prift.models.chat`)."""
    if not tokenizer.chat_template:
        raise TemplateError(f"tokenizer {tokenizer_source!r} has no chat template; set use_chat_template=false for a "
                            "base model, or start from a checkpoint that carries one")
    stops = set(eos_token_ids(tokenizer, generation_config))
    if not stops & set(turn_end_token_ids(tokenizer)):
        tail = turn_end_text(tokenizer)
        names = sorted(tokenizer.convert_ids_to_tokens(sorted(stops)))
        raise TemplateError(f"the chat template of {tokenizer_source!r} ends an assistant turn with {tail!r}, which "
                            f"holds none of the tokens that stop generation ({', '.join(names)}: the tokenizer's "
                            "eos_token and the model's generation_config.eos_token_id); completions would run to "
                            "max_completion_length. Make the EOS token the template's turn end.")
