"""Disk space for a stage's outputs: a pre-flight check before any work, and a clear error when the disk fills mid-run.

`check_output_space(folder, need, what, setting)` proves `folder` writable (`ensure_writable`) and that its filesystem
has `need` bytes free, else raises `DiskSpaceError` naming the setting and folder, the free bytes and the need.
`checkpoint_bytes` estimates one training checkpoint: the weights, plus the optimizer state (AdamW: two moments per
parameter, in the parameter's dtype) when the checkpoint carries it, plus any extra weight-sized copies (an EMA).

`disk_full_errors(output_dir)` turns ENOSPC / EDQUOT raised inside it into a `DiskSpaceError` that says a rerun
resumes from the last complete checkpoint (a half-written one is skipped, see `prift.core.checkpoints`).
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prift.core.checkpoints import last_complete_checkpoint
from prift.core.provenance import ensure_writable

OPTIMIZER_STATE_FACTOR = 2  # AdamW's exp_avg and exp_avg_sq: one weight-sized tensor each
DISK_FULL = tuple(getattr(errno, name) for name in ("ENOSPC", "EDQUOT") if hasattr(errno, name))


class DiskSpaceError(OSError):
    """Not enough free space for a stage's outputs (errno ENOSPC), with the folder, the free bytes and the need."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)


def human_bytes(count: int) -> str:
    """`count` bytes with a binary unit, e.g. `1.5 GiB (1610612736 bytes)`."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.1f} {unit} ({count} bytes)"
        value /= 1024
    return f"{value:.1f} TiB ({count} bytes)"


def checkpoint_bytes(model, *, optimizer_state: bool, extra_copies: int = 0) -> int:
    """Bytes of one checkpoint of `model`: weights x (1 + OPTIMIZER_STATE_FACTOR if the optimizer is saved + extra
    weight-sized copies). Tied parameters count once."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return weights * (1 + (OPTIMIZER_STATE_FACTOR if optimizer_state else 0) + extra_copies)


def _saves_optimizer(args) -> bool:
    """Whether the Trainer's checkpoints carry optimizer state (intermediate saves on, `save_only_model` off)."""
    return str(getattr(args.save_strategy, "value", args.save_strategy)) != "no" and not args.save_only_model


def check_output_space(folder: str | Path, need: int, what: str, setting: str = "output_dir") -> Path:
    """Create `folder`, prove it writable, and require `need` free bytes on its filesystem; return the folder.
    `setting` names the option that chose the folder, so the error says what to change."""
    folder = ensure_writable(folder)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DiskSpaceError(f"{setting} {str(folder)!r} has {human_bytes(free)} free but {what} needs about "
                             f"{human_bytes(need)}; free some space or choose another {setting}")
    return folder


def check_checkpoint_space(output_dir: str | Path, model, args, ema: bool = False) -> Path:
    """`check_output_space` for one checkpoint of `model` as a Trainer with `args` writes it: the optimizer state
    only with intermediate saves that keep it, and a copy of the weights for an EMA source."""
    optimizer = _saves_optimizer(args)
    need = checkpoint_bytes(model, optimizer_state=optimizer, extra_copies=int(ema))
    params = sum(p.numel() for p in model.parameters())
    parts = ["weights", *(["optimizer state"] if optimizer else []), *(["EMA weights"] if ema else [])]
    return check_output_space(output_dir, need, f"one checkpoint of this {params}-parameter model "
                                                f"({' + '.join(parts)})")


@contextmanager
def disk_full_errors(output_dir: str | Path) -> Iterator[None]:
    """Re-raise a disk-full OSError from the block as a `DiskSpaceError` naming `output_dir` and the resume point."""
    try:
        yield
    except OSError as err:
        if err.errno not in DISK_FULL or isinstance(err, DiskSpaceError):
            raise
        try:
            free = human_bytes(shutil.disk_usage(output_dir).free)
        except OSError:
            free = "unknown"
        last = last_complete_checkpoint(output_dir)
        resume = f"resumes from {last}" if last else "starts over (no complete checkpoint yet)"
        raise DiskSpaceError(f"the disk holding output dir {str(output_dir)!r} is full ({err.strerror} while "
                             f"writing {err.filename or 'a checkpoint'}; {free} free). Complete checkpoints are kept: "
                             f"free some space and rerun with the same output_dir, which {resume}") from err
