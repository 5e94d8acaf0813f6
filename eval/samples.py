"""The per-sample jsonl of one benchmark: appended as samples finish, read back to resume.

Each line is one graded sample keyed by ``(problem_id, sample)``. Lines are written whole and fsynced after every
batch; a run killed mid-write leaves at most one partial last line, which is dropped on the next open. Beside it,
``<name>.settings.json`` holds the settings the samples were generated with (model, template, sampling, seed,
benchmark settings): resuming with different settings is refused instead of silently mixing samples.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from prift.models.provenance import to_jsonable, write_json_atomic


class SettingsMismatch(ValueError):
    """The output folder holds samples generated with other settings."""


class SampleStore:
    def __init__(self, path: str | Path, settings: dict, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.settings_path = self.path.with_suffix(".settings.json")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        settings = to_jsonable(settings)
        if overwrite:
            self.path.unlink(missing_ok=True)
        if self.settings_path.exists() and self.path.exists():
            previous = json.loads(self.settings_path.read_text())
            if previous != settings:
                diff = {k: (previous.get(k), settings.get(k)) for k in settings.keys() | previous.keys()
                        if previous.get(k) != settings.get(k)}
                raise SettingsMismatch(f"{self.path} holds samples generated with other settings {diff} (old, new); "
                                       "use another output_dir or --overwrite true")
        write_json_atomic(self.settings_path, settings)
        self.rows: dict[tuple[str, int], dict] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):  # a partial last line from a killed run
            data = data[: data.rfind(b"\n") + 1]
            with open(self.path, "r+b") as handle:
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
        text = "".join(json.dumps(to_jsonable(row), ensure_ascii=False) + "\n" for row in rows)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        for row in rows:
            self.rows[(str(row["problem_id"]), int(row["sample"]))] = row
