"""Running a training stage of `prift run` in its own launched processes (multi-GPU, DeepSpeed, a cluster).

A recipe's `launch` maps a stage kind (`sft`, `rl`) to a launcher command prefix, e.g.

    launch:
      sft: accelerate launch --config_file ../accelerate/multi_gpu.yaml
      rl: accelerate launch --config_file ../accelerate/zero2.yaml

The stage's config fields are written to `<stage output>/stage_config.yaml` and the stage runs as
`<prefix> -m prift <kind> --config <stage output>/stage_config.yaml`: the same code path as `prift sft` / `prift rl`,
so every rank reads the same file and the stage hands off through its output folder as always. Arguments of the
prefix that name files next to the recipe (`../accelerate/zero2.yaml`) are resolved against the recipe's folder.
A non-zero exit is a failed stage (recorded, independent stages still run); the launched run resumes from its own
last complete checkpoint on the next `prift run`. Stages without a launcher run inside the `prift run` process.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

LAUNCHABLE = ("sft", "rl")
STAGE_CONFIG = "stage_config.yaml"


class LaunchError(RuntimeError):
    """A launched stage exited with a non-zero status."""


def parse_launch(raw, recipe_path: Path) -> dict[str, list[str]]:
    """`{kind: prefix string}` from a recipe -> `{kind: argv prefix}`, validated; file arguments made absolute.

    Raises `ValueError` naming the bad kind or value."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"launch: expected a mapping of stage kind ({', '.join(LAUNCHABLE)}) to a launcher command")
    launch = {}
    for kind, prefix in raw.items():
        if kind not in LAUNCHABLE:
            raise ValueError(f"launch: {kind!r} cannot be launched; valid stage kinds: {', '.join(LAUNCHABLE)}")
        if not isinstance(prefix, str) or not prefix.strip():
            raise ValueError(f"launch: {kind}: expected a command such as 'accelerate launch --config_file X.yaml'")
        launcher, *args = shlex.split(prefix)
        _executable(launcher, kind)  # fail now, before any work; kept as written (the stage fingerprint holds it)
        launch[kind] = [launcher, *(_resolve(arg, recipe_path.parent) for arg in args)]
    return launch


def _executable(launcher: str, kind: str) -> str:
    """The launcher program: as given when it is a path or on PATH, else this Python's bin folder (so
    `.venv/bin/prift run` finds `.venv/bin/accelerate` without an activated venv); missing -> `ValueError`."""
    if "/" in launcher:
        if not Path(launcher).is_file():
            raise ValueError(f"launch: {kind}: launcher {launcher!r} does not exist")
        return launcher
    if shutil.which(launcher):
        return launcher
    beside = Path(sys.executable).parent / launcher
    if beside.is_file():
        return str(beside)
    raise ValueError(f"launch: {kind}: launcher {launcher!r} is not on PATH nor next to {sys.executable}")


def _resolve(arg: str, folder: Path) -> str:
    candidate = folder / arg
    return str(candidate.resolve()) if not arg.startswith("-") and not Path(arg).is_absolute() and \
        candidate.is_file() else arg


def command(prefix: list[str], kind: str, config_file: Path) -> list[str]:
    """The full argv of a launched stage."""
    return [_executable(prefix[0], kind), *prefix[1:], "-m", "prift", kind, "--config", str(config_file)]


def run_launched(prefix: list[str], kind: str, fields: dict, output: Path) -> Path:
    """Write `fields` to `<output>/stage_config.yaml` and run the stage through `prefix`; output streams through."""
    output.mkdir(parents=True, exist_ok=True)
    config_file = output / STAGE_CONFIG
    config_file.write_text(yaml.safe_dump(fields, sort_keys=True))
    argv = command(prefix, kind, config_file)
    print(f"[prift] launching: {shlex.join(argv)}", flush=True)
    returncode = subprocess.run(argv, check=False).returncode
    if returncode != 0:
        raise LaunchError(f"launched {kind} stage exited with status {returncode}: {shlex.join(argv)}")
    return output
