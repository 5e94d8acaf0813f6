"""SFT data: TRL's standard formats from local files, hub ids, or built-in adapters (GSM8K, MATH, MedMCQA).

Every row becomes TRL's conversational prompt/completion format
`{"prompt": [{"role": "user", ...}], "completion": [{"role": "assistant", ...}]}` (or plain strings with
`chat_template=False`), so TRL labels the response tokens only; a `messages` row is split before its final assistant
turn the same way unless `messages_loss="all"`. A row missing a needed field raises `DatasetError` naming the source, row index and field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prift.core.datafiles import DatasetError, check_fields, is_messages, read_rows


@dataclass(frozen=True)
class Adapter:
    """Turns one raw row into (prompt text, completion text). `fields` are required; `local` is the file under the
    data root (`{split}` substituted); `hub` is (hub id, config) for users without local files."""

    name: str
    convert: Callable[[dict], tuple[str, str]]
    fields: tuple[str, ...]
    local: str | None = None
    hub: tuple[str, str | None] | None = None


ADAPTERS: dict[str, Adapter] = {}


def register_adapter(name: str, fields: tuple[str, ...], local: str | None = None,
                     hub: tuple[str, str | None] | None = None):
    def wrap(fn: Callable[[dict], tuple[str, str]]):
        if name in ADAPTERS:
            raise ValueError(f"dataset adapter {name!r} is already registered")
        ADAPTERS[name] = Adapter(name, fn, fields, local, hub)
        return fn

    return wrap


_CALCULATOR = re.compile(r"<<[^>]*>>")


@register_adapter("gsm8k", fields=("question", "answer"), local="gsm8k/{split}.jsonl", hub=("openai/gsm8k", "main"))
def gsm8k(row: dict) -> tuple[str, str]:
    """question -> worked solution without calculator annotations, final line `The answer is \\boxed{N}.`"""
    reasoning, _, final = row["answer"].rpartition("####")
    final = final.strip().replace(",", "")
    return row["question"], f"{_CALCULATOR.sub('', reasoning).strip()}\nThe answer is \\boxed{{{final}}}."


@register_adapter("math", fields=("problem", "solution"), local="math/{split}.jsonl",
                  hub=("EleutherAI/hendrycks_math", None))
def math_solutions(row: dict) -> tuple[str, str]:
    """problem -> solution (MATH solutions already end in `\\boxed{}`)."""
    return row["problem"], row["solution"]


MC_LETTERS = "ABCD"
MC_INSTRUCTION = ("Answer the multiple choice question above. The last line of your response should be of the form "
                  "'Answer: X' where X is one of A, B, C, D.")


@register_adapter("medmcqa", fields=("question", "opa", "opb", "opc", "opd", "cop"),
                  hub=("openlifescienceai/medmcqa", None))
def medmcqa(row: dict) -> tuple[str, str]:
    """MedMCQA (0-based `cop`, the hub's convention) -> the prompt `prift eval` asks for `medmcqa` (question, `X. option`
    lines, the 'Answer: X' instruction) and the completion `{exp}\nAnswer: X` (`Answer: X` alone when `exp` is empty
    or "nan"). No local file: the shared data holds only the validation split, which is the evaluation set."""
    options = [row[key] for key in ("opa", "opb", "opc", "opd")]
    cop = int(row["cop"])
    if not 0 <= cop < len(MC_LETTERS):
        raise DatasetError(f"medmcqa: cop {row['cop']!r} is not an option index 0-3")
    question = "\n".join([str(row["question"]).strip()] +
                         [f"{MC_LETTERS[i]}. {str(option).strip()}" for i, option in enumerate(options)])
    explanation = str(row.get("exp") or "").strip()
    answer = f"Answer: {MC_LETTERS[cop]}"
    completion = answer if explanation.lower() in ("", "nan", "none") else f"{explanation}\n{answer}"
    return f"{question}\n\n{MC_INSTRUCTION}", completion


@register_adapter("prompt_completion", fields=("prompt", "completion"))
def prompt_completion(row: dict) -> tuple[str, str]:
    """TRL prompt/completion rows with string fields."""
    return row["prompt"], row["completion"]


MESSAGES_LOSS = ("completion", "all")


def messages_row(messages: list[dict], index: int, source: str, loss: str) -> dict:
    """A TRL ``messages`` row. ``loss="completion"`` (default): prompt = every turn before the final assistant turn,
    completion = that turn, so only the response is labelled (as the official PriFT code trains; TRL would label
    every token of a ``messages`` row). ``loss="all"``: the row unchanged, every token labelled."""
    if loss == "all":
        return {"messages": messages}
    if messages[-1]["role"] != "assistant":
        raise DatasetError(f"{source}: row {index} does not end with an assistant turn, so it has no response to "
                           "train on (messages_loss=all trains on every token)")
    if len(messages) < 2:
        raise DatasetError(f"{source}: row {index} has only the assistant turn: no prompt before the response")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def to_trl_row(row: dict, adapter: Adapter | None, index: int, source: str, chat_template: bool,
               messages_loss: str = "completion") -> dict:
    """One raw row -> a TRL row (a ``messages`` row: see :func:`messages_row`)."""
    if adapter is None:
        if "messages" in row:
            check_fields(row, index, ("messages",), source)
            if not is_messages(row["messages"]) or not row["messages"]:
                raise DatasetError(f"{source}: row {index} field 'messages' is not a list of {{role, content}}")
            return messages_row(row["messages"], index, source, messages_loss)
        check_fields(row, index, ("prompt", "completion"), source)
        if is_messages(row["prompt"]) and is_messages(row["completion"]):
            return {"prompt": row["prompt"], "completion": row["completion"]}
        adapter = ADAPTERS["prompt_completion"]
    check_fields(row, index, adapter.fields, source)
    try:
        prompt, completion = adapter.convert(row)
    except (AttributeError, KeyError, TypeError, ValueError) as err:  # a wrong-typed or malformed field
        raise DatasetError(f"{source}: row {index} cannot be read by adapter {adapter.name!r}: {err}") from err
    if not isinstance(prompt, str) or not isinstance(completion, str):
        raise DatasetError(f"{source}: row {index}: adapter {adapter.name!r} needs string fields, got prompt "
                           f"{type(prompt).__name__} and completion {type(completion).__name__}")
    if not completion.strip():
        raise DatasetError(f"{source}: row {index} gives an empty completion through adapter {adapter.name!r}")
    if not chat_template:
        return {"prompt": prompt, "completion": completion}
    return {"prompt": [{"role": "user", "content": prompt}], "completion": [{"role": "assistant", "content": completion}]}


def _read(spec: str, split: str, data_dir: str | None) -> tuple[list[dict], dict, Adapter | None]:
    """Rows, provenance and the implied adapter for a spec: an adapter name, a local file or a hub dataset id."""
    adapter = ADAPTERS.get(spec)
    if adapter is not None:
        rows, provenance = read_rows(spec, split=split, data_dir=data_dir, local=adapter.local, hub=adapter.hub)
        return rows, provenance, adapter
    hub = None if Path(spec).expanduser().exists() else (spec, None)
    return (*read_rows(spec, split=split, data_dir=data_dir, hub=hub), None)


def load_sft_dataset(spec: str, *, split: str = "train", adapter: str = "auto", data_dir: str | None = None,
                     max_samples: int | None = None, chat_template: bool = True, messages_loss: str = "completion"):
    """Load `spec` as a `datasets.Dataset` of TRL rows plus a provenance dict (source, sha256, rows).

    `adapter="auto"` uses the adapter named by `spec` when it is one, else detects TRL formats by their columns.
    """
    from datasets import Dataset

    if messages_loss not in MESSAGES_LOSS:
        raise DatasetError(f"messages_loss: expected one of {', '.join(MESSAGES_LOSS)}, got {messages_loss!r}")
    if adapter != "auto" and adapter not in ADAPTERS:
        raise DatasetError(f"unknown dataset adapter {adapter!r}; valid: auto, {', '.join(sorted(ADAPTERS))}")
    rows, provenance, implied = _read(spec, split, data_dir)
    chosen = ADAPTERS[adapter] if adapter != "auto" else implied
    if max_samples is not None:
        rows = rows[:max_samples]
    if not rows:
        raise DatasetError(f"dataset {provenance['source']} has no rows (split {split!r})")
    source = provenance["source"]
    converted = [to_trl_row(row, chosen, index, source, chat_template, messages_loss) for index, row in enumerate(rows)]
    extra = {"sign": [row["sign"] for row in rows]} if all("sign" in row for row in rows) else {}
    dataset = Dataset.from_list(converted)
    for name, values in extra.items():
        dataset = dataset.add_column(name, values)
    chat_rows = chosen is None and ("messages" in rows[0] or is_messages(rows[0].get("prompt")))  # chat in the file
    provenance.update(rows=len(converted), adapter=chosen.name if chosen else "trl", chat_rows=chat_rows)
    return dataset, provenance
