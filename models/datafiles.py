"""Reading training rows from local files or the hub, shared by the SFT and RL stages.

`read_rows(spec, ...)` finds rows for a dataset spec: a local file, a built-in dataset's file under the data root
(`../shared/data`, `$PRIFT_DATA_DIR`, `--data_dir`), else its hub id. Problems raise `DatasetError` naming the
source, row (line) and field, so a bad row never surfaces as a KeyError three stages later. (The evaluators read
benchmark files their own way: there a bad row is a recorded per-row failure, not an error.)
"""

from __future__ import annotations

import json
from pathlib import Path

from prift.models.paths import data_root
from prift.models.provenance import sha256_file

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class DatasetError(ValueError):
    """A dataset that cannot be used, with the source, row and field that make it so."""


def read_local(path: Path) -> list[dict]:
    """Rows of a .jsonl (line-numbered errors), .json, .parquet or .csv file."""
    if path.suffix not in LOCAL_FORMATS:
        raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(LOCAL_FORMATS)}")
    if path.suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8", errors="strict") as handle:
            try:
                lines = list(handle)
            except UnicodeDecodeError as err:
                raise DatasetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path}: line {number} is not valid JSON ({err.msg})") from err
        return rows
    from datasets import load_dataset

    return list(load_dataset(LOCAL_FORMATS[path.suffix], data_files=str(path), split="train"))


def read_rows(spec: str, *, split: str, data_dir: str | None = None, local: str | None = None,
              hub: tuple[str, str | None] | None = None) -> tuple[list[dict], dict]:
    """Rows and provenance (`source`, `sha256` or hub `fingerprint`) for `spec`.

    `local` (a path under the data root, `{split}` substituted) and `hub` (id, config) describe a built-in dataset;
    without them `spec` is a local file. Missing everywhere -> `DatasetError` naming what was tried.
    """
    path = Path(spec).expanduser()
    if local is not None:
        root = data_root(data_dir)
        if root is not None and (root / local.format(split=split)).is_file():
            path = root / local.format(split=split)
    if path.is_file():
        return read_local(path), {"source": str(path), "sha256": sha256_file(path)}
    if hub is None:
        raise DatasetError(f"dataset {spec!r}: no such file, and it is not a built-in dataset")
    from datasets import load_dataset

    hub_id, config = hub
    try:
        rows = load_dataset(hub_id, config, split=split)
    except Exception as err:  # datasets raises many types for a missing or unreachable dataset
        raise DatasetError(f"dataset {spec!r} has no local file and could not be loaded from the hub as "
                           f"{hub_id!r} (split {split!r}): {err}") from err
    return list(rows), {"source": f"hub:{hub_id}:{config}:{split}", "fingerprint": rows._fingerprint}


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
