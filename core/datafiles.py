"""Reading training rows from local files or the hub, shared by the SFT and RL stages.

`read_rows(spec, ...)` finds rows for a dataset: a local file, a built-in dataset's file under the data root
(`../shared/data`, `$PRIFT_DATA_DIR`, `--data_dir`), else its hub fallback (:mod:`prift.core.datasets`).
Problems raise `DatasetError` naming the source, row (line) and field, so a bad row never surfaces as a KeyError three stages later. (The evaluators read
benchmark files their own way: there a bad row is a recorded per-row failure, not an error.)
"""

from __future__ import annotations

import json
from pathlib import Path

from prift.core.datasets import DatasetSpec, HubSource
from prift.core.paths import data_root
from prift.core.provenance import sha256_file

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class DatasetError(ValueError):
    """A dataset that cannot be used, with the source, row and field that make it so."""


def read_local(path: Path) -> list[dict]:
    """Rows of a .jsonl (errors name the line: bad UTF-8, bad JSON, not an object), .json, .parquet or .csv file
    (errors name the file and the reader's innermost cause)."""
    if path.suffix not in LOCAL_FORMATS:
        raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(LOCAL_FORMATS)}")
    if path.suffix == ".jsonl":
        return _read_jsonl(path)
    from datasets import load_dataset

    try:
        return list(load_dataset(LOCAL_FORMATS[path.suffix], data_files=str(path), split="train"))
    except Exception as err:  # datasets wraps a reader's error (UnicodeDecodeError, ArrowInvalid, ...) in its own
        cause = _innermost(err)
        raise DatasetError(f"{path}: cannot be read as {LOCAL_FORMATS[path.suffix]} "
                           f"({type(cause).__name__}: {cause})") from err


def _innermost(err: BaseException) -> BaseException:
    """The first exception of a chain (`raise ... from` / during handling), guarding against cycles."""
    seen = {id(err)}
    while (inner := err.__cause__ or err.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        err = inner
    return err


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise DatasetError(f"{path}: line {number} is not UTF-8 text ({err.reason} at byte {err.start} of "
                                   "the line)") from err
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path}: line {number} is not valid JSON ({err.msg})") from err
            if not isinstance(row, dict):
                raise DatasetError(f"{path}: line {number} is a JSON {type(row).__name__}, not an object of fields")
            rows.append(row)
    return rows


def read_rows(spec: str, *, split: str, data_dir: str | None = None, dataset: DatasetSpec | None = None,
              hub: HubSource | None = None) -> tuple[list[dict], dict]:
    """Rows and provenance (`source`, `sha256` or hub `fingerprint`) for `spec`.

    `dataset` (a built-in :class:`~prift.core.datasets.DatasetSpec`) gives the split's file under the data root and
    its hub fallback, and picks the split's rows; without it `spec` is a local file, else the hub dataset `hub`.
    Missing everywhere -> `DatasetError` naming what was tried.
    """
    path = Path(spec).expanduser()
    if dataset is not None:
        if split not in dataset.splits:
            raise DatasetError(f"dataset {spec!r} has no split {split!r}; valid: {', '.join(dataset.splits)}")
        root, local = data_root(data_dir), dataset.files.get(split)
        if root is not None and local is not None and (root / local).is_file():
            path = root / local
        hub = dataset.hub.get(split)
    if path.is_file():
        rows, provenance = read_local(path), {"source": str(path), "sha256": sha256_file(path)}
    elif hub is None:
        raise DatasetError(f"dataset {spec!r}: no such file, and it is not a built-in dataset")
    else:
        rows, provenance = _read_hub(spec, hub)
    return (rows if dataset is None else split_rows(dataset, rows, split, provenance["source"])), provenance


def split_rows(dataset: DatasetSpec, rows: list[dict], split: str, where: str) -> list[dict]:
    """The rows of `split` in a file laid out like `dataset` (:meth:`DatasetSpec.rows_of`); `DatasetError` naming
    `where` for a row without the field that picks its split."""
    try:
        return dataset.rows_of(rows, split)
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"{where}: cannot pick the rows of split {split!r} ({type(err).__name__}: {err})") from err


def _read_hub(spec: str, hub: HubSource) -> tuple[list[dict], dict]:
    from datasets import load_dataset

    try:
        rows = load_dataset(hub.id, hub.config, split=hub.split)
    except Exception as err:  # datasets raises many types for a missing or unreachable dataset
        raise DatasetError(f"dataset {spec!r} has no local file and could not be loaded from the hub as "
                           f"{hub.id!r} (config {hub.config!r}, split {hub.split!r}): {err}") from err
    return list(rows), {"source": f"hub:{hub.id}:{hub.config}:{hub.split}", "fingerprint": rows._fingerprint}


def is_messages(value) -> bool:
    """A chat conversation: a list of `{role, content}` mappings."""
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


def is_missing(value) -> bool:
    """None, an empty or blank string, or an empty list."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, list) and not value)


def check_fields(row: dict, index: int, fields, where: str) -> None:
    """Raise `DatasetError` naming `where`, the row index and the first missing or empty field."""
    for name in fields:
        if is_missing(row.get(name)):
            state = "an empty" if row.get(name) is not None else "no field"
            raise DatasetError(f"{where}: row {index} has {state} {name!r} (columns: {sorted(row)})")
