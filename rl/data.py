"""RL prompts: rows of TRL's prompt-only format plus the gold fields their rewards read.

Every row becomes ``{"prompt": [{"role": "user", "content": text}] (or text), <gold column>, "row_id": i}`` where
``row_id`` is the row's index among its split's rows (recorded in the budget's prompt order). The built-in sources are the
RL views of :mod:`prift.core.datasets` (``gsm8k``, ``math``: gold column ``answer``; ``mbpp``: ``tests``;
``medmcqa``: ``answer``, a letter): the prompt is the spec's question and instruction, the one SFT and evaluation use.

A local file in one of those row formats uses that conversion (``format="auto"`` detects it from the columns);
a file with a ``prompt`` column (text or chat messages) is used as is: its other columns are the gold fields. A row
with an empty prompt or an empty gold field, or a reward that needs a column the data lack, raises `DatasetError`
naming the source, row and field.
"""

from __future__ import annotations

from prift.core.datafiles import DatasetError, check_fields, is_messages, read_rows, split_rows
from prift.core.datasets import DATASETS, DatasetSpec


def sources() -> dict[str, DatasetSpec]:
    """The built-in RL datasets by name (every dataset spec)."""
    return {name: DATASETS.get(name) for name in DATASETS.names()}


def _detect(rows: list[dict], fmt: str) -> DatasetSpec | None:
    """The row format of a local file: `fmt` when given, else the first source whose fields the first row has
    (a `prompt` column wins: prompt rows pass through)."""
    if fmt != "auto":
        return DATASETS.get(fmt) if fmt != "prompt" else None
    first = rows[0] if rows else {}
    if "prompt" in first:
        return None
    return next((spec for spec in sources().values() if set(spec.fields) <= set(first)), None)


def _read(spec: str, split: str, data_dir: str | None, fmt: str) -> tuple[list[dict], dict, DatasetSpec | None]:
    """Raw rows of the split, provenance and the row format (None: prompt rows)."""
    if fmt not in ("auto", "prompt", *DATASETS.names()):
        raise DatasetError(f"unknown dataset_format {fmt!r}; valid: auto, prompt, {', '.join(DATASETS.names())}")
    dataset = sources().get(spec)
    rows, provenance = read_rows(spec, split=split, data_dir=data_dir, dataset=dataset)
    if dataset is None and (dataset := _detect(rows, fmt)) is not None:  # a local file in a built-in's layout
        rows = split_rows(dataset, rows, split, provenance["source"])
    return rows, provenance, dataset


def _to_row(raw: dict, index: int, dataset: DatasetSpec | None, instruction: str | None, chat: bool,
            where: str) -> dict:
    if dataset is None:
        check_fields(raw, index, ("prompt",), where)
        prompt, gold = raw["prompt"], {k: v for k, v in raw.items() if k != "prompt"}
        check_fields(gold, index, list(gold), where)
        if is_messages(prompt):
            return {"prompt": prompt, **gold, "row_id": index}
        if not isinstance(prompt, str):
            raise DatasetError(f"{where}: row {index} field 'prompt' must be text or a list of {{role, content}} "
                               f"messages, got {type(prompt).__name__}")
        text = f"{prompt}\n{instruction}" if instruction else prompt
    else:
        check_fields(raw, index, dataset.fields, where)
        try:
            text, gold = dataset.prompt_text(dataset.question(raw), instruction), {dataset.gold_column: dataset.gold(raw)}
        except (AttributeError, KeyError, TypeError, ValueError) as err:  # a wrong-typed or malformed field
            raise DatasetError(f"{where}: row {index} has a malformed field ({type(err).__name__}: {err})") from err
        check_fields(gold, index, list(gold), f"{where} (derived gold)")
    return {"prompt": [{"role": "user", "content": text}] if chat else text, **gold, "row_id": index}


def load_rl_dataset(spec: str, *, split: str = "train", data_dir: str | None = None, max_samples: int | None = None,
                    instruction: str | None = None, chat_template: bool = True, fmt: str = "auto"):
    """`spec` as a `datasets.Dataset` of RL rows, and a provenance dict (source, sha256 or fingerprint, rows)."""
    from datasets import Dataset

    rows, provenance, source = _read(spec, split, data_dir, fmt)
    where = provenance["source"]
    indexed = list(enumerate(rows))[:max_samples]
    if not indexed:
        raise DatasetError(f"dataset {where} has no rows (split {split!r})")
    converted = [_to_row(raw, i, source, instruction, chat_template, where) for i, raw in indexed]
    provenance.update(rows=len(converted), split=split,
                      format=source.name if source is not None else "prompt")
    return Dataset.from_list(converted), provenance


def check_reward_columns(rewards: dict, dataset, where: str) -> None:
    """Call every reward once on zero rows with the dataset's columns: a reward that needs a column the data lack
    fails here (before any model is loaded) instead of in the first training step."""
    columns = {name: [] for name in dataset.column_names if name != "prompt"}
    for name, reward in rewards.items():
        try:
            reward(prompts=[], completions=[], completion_ids=[], **columns)
        except (ValueError, KeyError, TypeError) as err:
            raise DatasetError(f"{where}: reward {name!r} cannot score these rows ({err}); dataset columns: "
                               f"{sorted(dataset.column_names)}") from err
