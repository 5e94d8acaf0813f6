"""RL prompts: rows of TRL's prompt-only format plus the gold fields their rewards read.

Every row becomes ``{"prompt": [{"role": "user", "content": text}] (or text), <gold fields>, "row_id": i}`` where
``row_id`` is the row's index in its source (recorded in the budget's prompt order). Built-in sources:

| name | source rows | prompt | gold |
|---|---|---|---|
| ``gsm8k`` | ``question``, ``answer`` | question | ``answer``: the text after ``####``, without ``,`` |
| ``math`` | ``problem``, ``solution`` | problem | ``answer``: the last ``\\boxed{}`` of the solution |
| ``mbpp`` | ``text``, ``test_list``, ``test_setup_code`` | task + its asserts | ``tests``: setup + asserts |

A local file in one of those row formats uses that conversion (``format="auto"`` detects it from the columns);
a file with a ``prompt`` column (text or chat messages) is used as is: its other columns are the gold fields. A row with an empty prompt or an empty gold field, or a reward that needs a column the data lack, raises
`DatasetError` naming the source, row and field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prift.core.datafiles import DatasetError, check_fields, is_messages, read_rows
from prift.rewards.answers import last_boxed

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CODE_INSTRUCTION = "Write the function in a ```python code block."
# MBPP's standard split by task_id (google-research mbpp README)
MBPP_SPLITS = {"train": range(601, 975), "validation": range(511, 601), "test": range(11, 511), "prompt": range(1, 11)}


@dataclass(frozen=True)
class Source:
    """A built-in RL dataset: `convert(row) -> (prompt text, gold fields)`; `fields` are required in raw rows;
    `local` is the file under the data root (`{split}` substituted); `hub` is (id, config) for users without it."""

    convert: Callable[[dict], tuple[str, dict]]
    fields: tuple[str, ...]
    instruction: str
    local: str
    hub: tuple[str, str | None]
    splits: tuple[str, ...] = ("train", "test")
    keep: Callable[[dict, str], bool] = lambda row, split: True


SOURCES: dict[str, Source] = {}


def register_source(name: str, **spec):
    def wrap(convert):
        if name in SOURCES:
            raise ValueError(f"RL dataset {name!r} is already registered")
        SOURCES[name] = Source(convert, **spec)
        return convert

    return wrap


@register_source("gsm8k", fields=("question", "answer"), instruction=MATH_INSTRUCTION, local="gsm8k/{split}.jsonl",
                 hub=("openai/gsm8k", "main"))
def gsm8k(row: dict) -> tuple[str, dict]:
    return row["question"], {"answer": row["answer"].rpartition("####")[2].strip().replace(",", "")}


@register_source("math", fields=("problem", "solution"), instruction=MATH_INSTRUCTION, local="math/{split}.jsonl",
                 hub=("EleutherAI/hendrycks_math", None))
def math_problems(row: dict) -> tuple[str, dict]:
    return row["problem"], {"answer": last_boxed(row["solution"])}


@register_source("mbpp", fields=("text", "test_list"), instruction=CODE_INSTRUCTION, local="mbpp/mbpp.jsonl",
                 hub=("google-research-datasets/mbpp", "full"), splits=tuple(MBPP_SPLITS),
                 keep=lambda row, split: int(row["task_id"]) in MBPP_SPLITS[split])
def mbpp(row: dict) -> tuple[str, dict]:
    asserts = "\n".join(row["test_list"])
    prompt = f"{row['text']} Your code should pass these tests:\n\n{asserts}\n"
    return prompt, {"tests": f"{row.get('test_setup_code') or ''}\n{asserts}".strip()}


def _detect(rows: list[dict], fmt: str) -> Source | None:
    """The row format of a local file: `fmt` when given, else the first source whose fields the first row has
    (a `prompt` column wins: prompt rows pass through)."""
    if fmt != "auto":
        return SOURCES[fmt] if fmt != "prompt" else None
    first = rows[0] if rows else {}
    if "prompt" in first:
        return None
    return next((src for src in SOURCES.values() if set(src.fields) <= set(first)), None)


def _read(spec: str, split: str, data_dir: str | None, fmt: str) -> tuple[list[dict], dict, Source | None]:
    """Raw rows, provenance and the row format (None: prompt rows)."""
    if fmt not in ("auto", "prompt", *SOURCES):
        raise DatasetError(f"unknown dataset_format {fmt!r}; valid: auto, prompt, {', '.join(SOURCES)}")
    source = SOURCES.get(spec)
    if source is not None and split not in source.splits:
        raise DatasetError(f"dataset {spec!r} has no split {split!r}; valid: {', '.join(source.splits)}")
    rows, provenance = read_rows(spec, split=split, data_dir=data_dir, local=source and source.local,
                                 hub=source and source.hub)
    return rows, provenance, source or _detect(rows, fmt)


def _to_row(raw: dict, index: int, source: Source | None, instruction: str | None, chat: bool, where: str) -> dict:
    if source is None:
        check_fields(raw, index, ("prompt",), where)
        prompt, gold = raw["prompt"], {k: v for k, v in raw.items() if k != "prompt"}
        check_fields(gold, index, list(gold), where)
        if is_messages(prompt):
            return {"prompt": prompt, **gold, "row_id": index}
    else:
        check_fields(raw, index, source.fields, where)
        try:
            prompt, gold = source.convert(raw)
        except (AttributeError, KeyError, TypeError, ValueError) as err:  # a wrong-typed or malformed field
            raise DatasetError(f"{where}: row {index} has a malformed field ({type(err).__name__}: {err})") from err
        check_fields(gold, index, list(gold), f"{where} (derived gold)")
        instruction = source.instruction if instruction is None else instruction
    if not isinstance(prompt, str):
        raise DatasetError(f"{where}: row {index} field 'prompt' must be text or a list of {{role, content}} "
                           f"messages, got {type(prompt).__name__}")
    text = f"{prompt}\n{instruction}" if instruction else prompt
    return {"prompt": [{"role": "user", "content": text}] if chat else text, **gold, "row_id": index}


def load_rl_dataset(spec: str, *, split: str = "train", data_dir: str | None = None, max_samples: int | None = None,
                    instruction: str | None = None, chat_template: bool = True, fmt: str = "auto"):
    """`spec` as a `datasets.Dataset` of RL rows, and a provenance dict (source, sha256 or fingerprint, rows)."""
    from datasets import Dataset

    rows, provenance, source = _read(spec, split, data_dir, fmt)
    where = provenance["source"]
    indexed = [(i, r) for i, r in enumerate(rows) if source is None or source.keep(r, split)][:max_samples]
    if not indexed:
        raise DatasetError(f"dataset {where} has no rows (split {split!r})")
    converted = [_to_row(raw, i, source, instruction, chat_template, where) for i, raw in indexed]
    provenance.update(rows=len(converted), split=split,
                      format=next((n for n, s in SOURCES.items() if s is source), "prompt"))
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
