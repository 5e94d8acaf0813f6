"""Every input format the SFT stage accepts labels the response only: the tokens before it are -100.

Checked on the rendered text, not on prift's own bookkeeping: each row's prompt turns and response carry unique
words; the labelled tokens, decoded, must hold the response's words and none of the prompt's, and the unlabelled
prefix must hold every prompt word. The run's labelled-token count is recorded in run.json.
"""

from __future__ import annotations

import json

import pytest

from prift.sft.data import DatasetError, load_sft_dataset
from prift.sft.train import prepare

SYSTEM, USER, ASSISTANT = "sierra system", "uniform question", "alpha answer"
EARLIER_USER, EARLIER_ASSISTANT = "echo earlier", "bravo reply"


def _msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


FORMATS = {  # name -> (row, use_chat_template, prompt words, response words)
    "prompt/completion strings, chat template": ({"prompt": USER, "completion": ASSISTANT}, True, [USER], [ASSISTANT]),
    "prompt/completion strings, plain text": ({"prompt": USER, "completion": ASSISTANT}, False, [USER], [ASSISTANT]),
    "prompt/completion messages": ({"prompt": [_msg("system", SYSTEM), _msg("user", USER)],
                                    "completion": [_msg("assistant", ASSISTANT)]}, True, [SYSTEM, USER], [ASSISTANT]),
    "messages": ({"messages": [_msg("system", SYSTEM), _msg("user", USER), _msg("assistant", ASSISTANT)]}, True,
                 [SYSTEM, USER], [ASSISTANT]),
    "multi-turn messages": ({"messages": [_msg("user", EARLIER_USER), _msg("assistant", EARLIER_ASSISTANT),
                                          _msg("user", USER), _msg("assistant", ASSISTANT)]}, True,
                            [EARLIER_USER, EARLIER_ASSISTANT, USER], [ASSISTANT]),
    "gsm8k adapter": ({"question": USER, "answer": "alpha steps\n#### 42"}, True, [USER], ["alpha steps", "42"]),
}


def _prepared(tmp_path, tiny_checkpoint, sft_config, row, chat, **overrides):
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    adapter = "gsm8k" if "question" in row else "auto"
    config = sft_config(tiny_checkpoint, data, tmp_path / "out", use_chat_template=chat, dataset_format=adapter,
                        **overrides)
    return prepare(config, training=False)


def _split(prep) -> tuple[str, str]:
    """(decoded tokens before the first labelled one, decoded labelled tokens) of the first training row."""
    row = prep.tokenized[0]
    labels = prep.trainer.data_collator([row])["labels"][0].tolist()
    first = next(i for i, label in enumerate(labels) if label != -100)
    labelled = [t for t, label in zip(row["input_ids"], labels, strict=True) if label != -100]
    return prep.tokenizer.decode(row["input_ids"][:first]), prep.tokenizer.decode(labelled)


@pytest.mark.parametrize("name", list(FORMATS))
def test_only_the_response_is_labelled(tmp_path, tiny_checkpoint, sft_config, name):
    row, chat, prompt_words, response_words = FORMATS[name]
    prep = _prepared(tmp_path, tiny_checkpoint, sft_config, row, chat)
    prefix, labelled = _split(prep)
    assert all(w in prefix for w in prompt_words), (prefix, prompt_words)
    assert all(w in labelled for w in response_words), (labelled, response_words)
    assert not any(w in labelled for w in prompt_words), (labelled, prompt_words)
    data = prep.provenance
    assert 0 < data["labelled_tokens"] < data["tokens"]


def test_messages_loss_all_trains_on_every_turn(tmp_path, tiny_checkpoint, sft_config):
    row = FORMATS["messages"][0]
    prep = _prepared(tmp_path, tiny_checkpoint, sft_config, row, True, messages_loss="all")
    _, labelled = _split(prep)
    assert USER in labelled and ASSISTANT in labelled
    default = _prepared(tmp_path, tiny_checkpoint, sft_config, row, True)
    assert prep.provenance["labelled_tokens"] > default.provenance["labelled_tokens"]


def test_a_messages_row_without_a_final_assistant_turn_is_refused(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"messages": [_msg("user", USER)]}) + "\n")
    with pytest.raises(DatasetError, match="row 0 does not end with an assistant turn"):
        load_sft_dataset(str(data))
    assert load_sft_dataset(str(data), messages_loss="all")[0][0] == {"messages": [_msg("user", USER)]}
    with pytest.raises(DatasetError, match="messages_loss: expected one of completion, all"):
        load_sft_dataset(str(data), messages_loss="assistant")
