"""SFT data: TRL's standard formats from local files, hub ids, or built-in adapters (GSM8K, MATH).

Every row becomes TRL's conversational prompt/completion format
`{"prompt": [{"role": "user", ...}], "completion": [{"role": "assistant", ...}]}` (or plain strings with
`chat_template=False`). A row missing a needed field raises `DatasetError` naming the source, row index and field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prift.models.paths import data_root
from prift.models.provenance import sha256_file

LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class DatasetError(ValueError):
    """A dataset that cannot be used, with the source, row and field that make it so."""


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


def _check_row(row: dict, index: int, fields: tuple[str, ...], source: str) -> None:
    for name in fields:
        value = row.get(name)
        if value is None:
            raise DatasetError(f"{source}: row {index} has no field {name!r} (columns: {sorted(row)})")
        if isinstance(value, str) and not value.strip():
            raise DatasetError(f"{source}: row {index} has an empty {name!r}")
        if isinstance(value, list) and not value:
            raise DatasetError(f"{source}: row {index} has an empty {name!r}")


def to_trl_row(row: dict, adapter: Adapter | None, index: int, source: str, chat_template: bool) -> dict:
    """One raw row -> a TRL row; conversational rows (lists of messages) pass through unchanged."""
    if adapter is None:
        if "messages" in row:
            _check_row(row, index, ("messages",), source)
            if not _is_messages(row["messages"]):
                raise DatasetError(f"{source}: row {index} field 'messages' is not a list of {{role, content}}")
            return {"messages": row["messages"]}
        _check_row(row, index, ("prompt", "completion"), source)
        if _is_messages(row["prompt"]) and _is_messages(row["completion"]):
            return {"prompt": row["prompt"], "completion": row["completion"]}
        adapter = ADAPTERS["prompt_completion"]
    _check_row(row, index, adapter.fields, source)
    prompt, completion = adapter.convert(row)
    if not completion.strip():
        raise DatasetError(f"{source}: row {index} gives an empty completion through adapter {adapter.name!r}")
    if not chat_template:
        return {"prompt": prompt, "completion": completion}
    return {"prompt": [{"role": "user", "content": prompt}], "completion": [{"role": "assistant", "content": completion}]}


def _read_local(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        rows = []
        with open(path) as handle:
            for number, line in enumerate(handle):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise DatasetError(f"{path}: line {number + 1} is not valid JSON ({err.msg})") from err
        return rows
    from datasets import load_dataset

    if path.suffix not in LOCAL_SUFFIXES:
        raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(LOCAL_SUFFIXES)}")
    return list(load_dataset(LOCAL_SUFFIXES[path.suffix], data_files=str(path), split="train"))


def _locate(spec: str, split: str, data_dir: str | None) -> tuple[list[dict], dict, Adapter | None]:
    """Rows, provenance and the implied adapter for a dataset spec: adapter name, local file or hub id."""
    adapter = ADAPTERS.get(spec)
    path = Path(spec).expanduser()
    if adapter is not None and adapter.local:
        root = data_root(data_dir)
        if root is not None and (root / adapter.local.format(split=split)).is_file():
            path = root / adapter.local.format(split=split)
    if path.is_file():
        return _read_local(path), {"source": str(path), "sha256": sha256_file(path)}, adapter
    if adapter is not None and adapter.hub is None:
        raise DatasetError(f"dataset {spec!r} needs a local file; none found under the data dir")
    hub_id, config = adapter.hub if adapter is not None else (spec, None)
    from datasets import load_dataset

    try:
        hub_rows = load_dataset(hub_id, config, split=split)
    except Exception as err:  # datasets raises many types for a missing or unreachable dataset
        raise DatasetError(f"dataset {spec!r} is not a local file and could not be loaded from the hub as "
                           f"{hub_id!r}: {err}") from err
    return list(hub_rows), {"source": f"hub:{hub_id}:{config}:{split}", "fingerprint": hub_rows._fingerprint}, adapter


def load_sft_dataset(spec: str, *, split: str = "train", adapter: str = "auto", data_dir: str | None = None,
                     max_samples: int | None = None, chat_template: bool = True):
    """Load `spec` as a `datasets.Dataset` of TRL rows plus a provenance dict (source, sha256, rows).

    `adapter="auto"` uses the adapter named by `spec` when it is one, else detects TRL formats by their columns.
    """
    from datasets import Dataset

    if adapter != "auto" and adapter not in ADAPTERS:
        raise DatasetError(f"unknown dataset adapter {adapter!r}; valid: auto, {', '.join(sorted(ADAPTERS))}")
    rows, provenance, implied = _locate(spec, split, data_dir)
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
