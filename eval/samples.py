"""The per-sample jsonl of one benchmark: appended as samples finish, read back to resume.

Each line is one graded sample keyed by ``(problem_id, sample)``. Lines are written whole and fsynced after every
batch; a run killed mid-write leaves at most one partial last line, which is ignored on the next open (and cut off
by the process that appends to that file). Beside it, ``<name>.settings.json`` holds the settings the samples were
generated with (model, template, sampling, seed, benchmark settings): resuming with different settings is refused
instead of silently mixing samples.

A single process appends to ``<name>.jsonl``. Under a multi-process launch rank r appends to its own shard
``<name>.rank<r>.jsonl``, so no two processes ever write the same file, and :meth:`SampleStore.merge` folds the
shards into ``<name>.jsonl`` once every rank has finished. Every store reads ``<name>.jsonl`` and all shards, so a
rerun with any process count reuses every finished sample.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from prift.core.provenance import to_jsonable, write_json_atomic

Key = tuple[str, int]


class SettingsMismatch(ValueError):
    """The output folder holds samples generated with other settings."""


def shard_path(path: Path, rank: int) -> Path:
    """Rank ``rank``'s shard of the samples file ``path`` (``<name>.rank<r>.jsonl``)."""
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def shard_files(path: Path) -> list[Path]:
    """The shards of ``path`` that exist, in rank order."""
    pattern = re.compile(re.escape(path.stem) + r"\.rank(\d+)" + re.escape(path.suffix))
    found = {int(m[1]): p for p in path.parent.glob(f"{path.stem}.rank*{path.suffix}")
             if (m := pattern.fullmatch(p.name))}
    return [found[rank] for rank in sorted(found)]


def discard_samples(path: str | Path) -> None:
    """Delete the samples file ``path`` and all its shards (``--resume false``)."""
    path = Path(path)
    for file in [path, *shard_files(path)]:
        file.unlink(missing_ok=True)


def _line(row: dict) -> str:
    return json.dumps(to_jsonable(row), ensure_ascii=False) + "\n"


class SampleStore:
    """The rows of ``path`` and its shards; ``append`` writes to ``path`` (``shard=None``) or to rank ``shard``'s
    shard. Raises :class:`SettingsMismatch` when samples exist that were generated with other ``settings``."""

    def __init__(self, path: str | Path, settings: dict, shard: int | None = None) -> None:
        self.path = Path(path)
        self.own = self.path if shard is None else shard_path(self.path, shard)
        self.settings_path = self.path.with_suffix(".settings.json")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        settings = to_jsonable(settings)
        if self.settings_path.exists() and self._files():
            previous = json.loads(self.settings_path.read_text())
            if previous != settings:
                diff = {k: (previous.get(k), settings.get(k)) for k in settings.keys() | previous.keys()
                        if previous.get(k) != settings.get(k)}
                raise SettingsMismatch(f"{self.path} holds samples generated with other settings {diff} (old, new); "
                                       "use another output_dir or --resume false")
        write_json_atomic(self.settings_path, settings)
        self.rows: dict[Key, dict] = {}
        self._load()

    def _files(self) -> list[Path]:
        return [p for p in (self.path,) if p.exists()] + shard_files(self.path)

    def _load(self) -> None:
        for file in self._files():
            data = file.read_bytes()
            if data and not data.endswith(b"\n"):  # a partial last line from a killed run
                data = data[: data.rfind(b"\n") + 1]
                if file == self.own:  # another rank's file may be growing: only its writer cuts it
                    with open(file, "r+b") as handle:
                        handle.truncate(len(data))
            for line in data.decode("utf-8", "replace").splitlines():
                try:
                    row = json.loads(line)
                    self.rows[(str(row["problem_id"]), int(row["sample"]))] = row
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue

    def has(self, problem_id: str, sample: int) -> bool:
        return (problem_id, sample) in self.rows

    def get(self, problem_id: str, sample: int) -> dict | None:
        return self.rows.get((problem_id, sample))

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        with open(self.own, "a", encoding="utf-8") as handle:
            handle.write("".join(_line(row) for row in rows))
            handle.flush()
            os.fsync(handle.fileno())
        for row in rows:
            self.rows[(str(row["problem_id"]), int(row["sample"]))] = row

    def merge(self, order: Callable[[Key], int]) -> None:
        """Fold the shards into ``path``: reread every file, rewrite ``path`` atomically with all rows sorted stably
        by ``order(key)`` (rows that order equally stay in the order they were written), then delete the shards. Call
        it in one process once every writer has finished; without shards it reorders ``path`` alone."""
        shards = shard_files(self.path)
        if not shards and not self.path.exists():
            return
        self.rows = {}
        self._load()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("".join(_line(self.rows[key]) for key in sorted(self.rows, key=order)))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        for shard in shards:
            shard.unlink()
