"""Run records: every stage writes `run.json` beside its checkpoint with what is needed to reproduce it.

Fields: stage, resolved config, seed, fingerprints (data, reference cache, ...), package versions, git commit of
the prift source tree, host facts, start/end timestamps and wall time. Written atomically (tmp + rename) so a
killed run never leaves a truncated record.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = ("prift", "torch", "transformers", "trl", "datasets", "accelerate", "math-verify", "vllm",
                    "deepspeed", "numpy")


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, None when absent."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(path: str | Path | None = None) -> str | None:
    """Commit of the git checkout holding `path` (default: the prift sources), with `+dirty` when modified."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths, dtypes and sets as plain JSON values; anything else as its repr."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def presentation_fields(config: Any) -> set[str]:
    """Fields of a config dataclass that change only what is shown (its class's ``presentation``: the console)."""
    return set(getattr(type(config), "presentation", ()))


def settings_of(config: Any) -> dict:
    """A config dataclass as JSON without its presentation-only fields: what fingerprints and "is this the same
    run" checks compare."""
    shown = presentation_fields(config)
    return {name: value for name, value in to_jsonable(config).items() if name not in shown}


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_writable(folder: str | Path) -> Path:
    """Create `folder` and prove it takes a file, so a bad output dir fails before any work, naming the folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".prift-write-test.{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"output dir {str(folder)!r} is not writable: {err.strerror or err}") from err
    return folder


def write_json_atomic(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(to_jsonable(payload), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


class RunRecord:
    """Collects a stage's provenance; `write()` stores `run.json` in the output folder.

    Usage: `record = RunRecord("sft", config, seed=42)` at the start, `record.fingerprints["data"] = ...` along the
    way, `record.extra[...]` for stage-specific facts, `record.write(output_dir, metrics={...})` at the end.
    """

    def __init__(self, stage: str, config: Any, *, seed: int | None = None):
        self.stage = stage
        self.config = config
        self.seed = seed
        self.fingerprints: dict[str, str] = {}
        self.extra: dict[str, Any] = {}
        self.started = time.time()

    def payload(self, **extra: Any) -> dict[str, Any]:
        ended = time.time()
        return {
            "stage": self.stage,
            "config": to_jsonable(self.config),
            "seed": self.seed,
            "fingerprints": dict(self.fingerprints),
            "versions": package_versions(),
            "git_commit": git_commit(),
            "host": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
            "wall_time_s": round(ended - self.started, 3),
            **self.extra,
            **extra,
        }

    def write(self, output_dir: str | Path, **extra: Any) -> Path:
        return write_json_atomic(Path(output_dir) / "run.json", self.payload(**extra))
