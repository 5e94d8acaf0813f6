"""SFT data: TRL's standard formats from local files, hub ids, or the built-in datasets of :mod:`prift.core.datasets`.

Every row becomes TRL's conversational prompt/completion format
`{"prompt": [{"role": "user", ...}], "completion": [{"role": "assistant", ...}]}` (or plain strings with
`chat_template=False`), so TRL labels the response tokens only; a `messages` row is split before its final assistant
turn the same way unless `messages_loss="all"`. A row missing a needed field raises `DatasetError` naming the source,
row index and field. A built-in dataset's prompt is the one RL and evaluation use (question plus instruction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from prift.core.datafiles import DatasetError, check_fields, is_messages, read_rows
from prift.core.datasets import DATASETS, DatasetSpec, HubSource


@dataclass(frozen=True)
class Adapter:
    """Turns one raw row into (prompt text, completion text); `fields` are required. A built-in dataset's adapter
    is its spec's SFT view (`dataset` says where its files are)."""

    name: str
    convert: Callable[[dict], tuple[str, str]]
    fields: tuple[str, ...]
    dataset: DatasetSpec | None = None


def _spec_adapter(spec: DatasetSpec) -> Adapter:
    """The SFT view of a dataset spec: its zero-shot prompt (the one RL and eval use) -> its SFT target."""
    return Adapter(spec.name, lambda row: (spec.prompt(row), spec.target(row)), spec.fields, spec)


ADAPTERS: dict[str, Adapter] = {
    "prompt_completion": Adapter("prompt_completion", lambda row: (row["prompt"], row["completion"]),
                                 ("prompt", "completion")),  # TRL prompt/completion rows with string fields
    **{name: _spec_adapter(DATASETS.get(name)) for name in DATASETS.names() if DATASETS.get(name).target},
}


MessagesLoss = Literal["completion", "all"]
MESSAGES_LOSS = get_args(MessagesLoss)


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
    """Rows, provenance and the implied adapter for a spec: a built-in dataset, a local file or a hub dataset id."""
    adapter = ADAPTERS.get(spec)
    if adapter is not None and adapter.dataset is not None:
        return (*read_rows(spec, split=split, data_dir=data_dir, dataset=adapter.dataset), adapter)
    hub = None if Path(spec).expanduser().exists() else HubSource(spec, None, split)
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
