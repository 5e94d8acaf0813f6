"""SFT data: TRL's standard formats from local files, hub ids, or built-in adapters (GSM8K, MATH).

Every row becomes TRL's conversational prompt/completion format
`{"prompt": [{"role": "user", ...}], "completion": [{"role": "assistant", ...}]}` (or plain strings with
`chat_template=False`). A row missing a needed field raises `DatasetError` naming the source, row index and field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prift.models.datafiles import DatasetError, check_fields, read_rows


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


@register_adapter("prompt_completion", fields=("prompt", "completion"))
def prompt_completion(row: dict) -> tuple[str, str]:
    """TRL prompt/completion rows with string fields."""
    return row["prompt"], row["completion"]


def _is_messages(value) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


def to_trl_row(row: dict, adapter: Adapter | None, index: int, source: str, chat_template: bool) -> dict:
    """One raw row -> a TRL row; conversational rows (lists of messages) pass through unchanged."""
    if adapter is None:
        if "messages" in row:
            check_fields(row, index, ("messages",), source)
            if not _is_messages(row["messages"]):
                raise DatasetError(f"{source}: row {index} field 'messages' is not a list of {{role, content}}")
            return {"messages": row["messages"]}
        check_fields(row, index, ("prompt", "completion"), source)
        if _is_messages(row["prompt"]) and _is_messages(row["completion"]):
            return {"prompt": row["prompt"], "completion": row["completion"]}
        adapter = ADAPTERS["prompt_completion"]
    check_fields(row, index, adapter.fields, source)
    prompt, completion = adapter.convert(row)
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
                     max_samples: int | None = None, chat_template: bool = True):
    """Load `spec` as a `datasets.Dataset` of TRL rows plus a provenance dict (source, sha256, rows).

    `adapter="auto"` uses the adapter named by `spec` when it is one, else detects TRL formats by their columns.
    """
    from datasets import Dataset

    if adapter != "auto" and adapter not in ADAPTERS:
        raise DatasetError(f"unknown dataset adapter {adapter!r}; valid: auto, {', '.join(sorted(ADAPTERS))}")
    rows, provenance, implied = _read(spec, split, data_dir)
    chosen = ADAPTERS[adapter] if adapter != "auto" else implied
    if max_samples is not None:
        rows = rows[:max_samples]
    if not rows:
        raise DatasetError(f"dataset {provenance['source']} has no rows (split {split!r})")
    source = provenance["source"]
    converted = [to_trl_row(row, chosen, index, source, chat_template) for index, row in enumerate(rows)]
    extra = {"sign": [row["sign"] for row in rows]} if all("sign" in row for row in rows) else {}
    dataset = Dataset.from_list(converted)
    for name, values in extra.items():
        dataset = dataset.add_column(name, values)
    provenance.update(rows=len(converted), adapter=chosen.name if chosen else "trl")
    return dataset, provenance
