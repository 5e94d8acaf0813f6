"""What a training stage prints: one progress bar, one concise line per logging step, no known-harmless noise.

By default (``verbose`` off) a stage shows one training progress bar and, at every logging step, one line

    [prift] sft prift_mass  step 12/40  loss 0.412  nll 1.873  mean_weight 0.31  lr 1.5e-05  ETA 1m20s

instead of the Trainer's raw metric dict; the data-preparation and shard-writing bars of ``datasets`` and
``transformers`` are off, and the warnings listed in ``HARMLESS_WARNINGS`` are silenced. ``--verbose`` (or
``PRIFT_VERBOSE=1``, which ``prift run`` passes to its stages) restores everything; ``prift eval`` turns the
libraries' bars off the same way and keeps its own (``--progress``). Every logged value still goes to
``trainer_state.json`` / run.json and to the ``report_to`` integrations: only the console changes.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import ClassVar

from transformers.trainer_callback import ProgressCallback

VERBOSE_ENV = "PRIFT_VERBOSE"
# (category, message regex): warnings every CPU or single-process run prints and nobody can act on
HARMLESS_WARNINGS = (
    (UserWarning, r".*'pin_memory' argument is set as true but no accelerator is found"),
    (FutureWarning, r".*`is_gradient_checkpointing` is deprecated"),
)
# the metrics a line shows, in this order, when the step logged them (the rest stay in the logs)
LINE_KEYS = ("loss", "nll", "mean_weight", "kept_fraction", "reward", "reward_std", "frac_reward_zero_std",
             "completions/mean_length", "kl", "grad_norm", "learning_rate")
SHORT_NAMES = {"learning_rate": "lr", "completions/mean_length": "len", "frac_reward_zero_std": "zero_std"}


def verbose_default() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def quiet_libraries(verbose: bool) -> None:
    """Turn the libraries' own progress bars and the harmless warnings off (``verbose``: leave them on)."""
    if verbose:
        return
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    for category, message in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s" if rest >= 60 else f"{rest}s"


def step_line(stage: str, step: int, max_steps: int, logs: dict, eta_s: float | None) -> str:
    """The console line of one logging step: stage, step/max_steps, the ``LINE_KEYS`` present, ETA (seconds)."""
    parts = [f"[prift] {stage}", f"step {step}/{max_steps}"]
    for key in LINE_KEYS:
        value = logs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            parts.append(f"{SHORT_NAMES.get(key, key)} {_number(float(value))}")
    if eta_s is not None:
        parts.append(f"ETA {_duration(eta_s)}")
    return "  ".join(parts)


class ConsoleCallback(ProgressCallback):
    """transformers' progress bar, with :func:`step_line` in place of the raw metric dict."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage, self.started, self.first_step = stage, 0.0, 0

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        self.started, self.first_step = time.monotonic(), state.global_step  # a resumed run times its own steps

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        if "train_runtime" in logs:  # the closing summary: the stage's own lines say it
            return
        done, left = state.global_step - self.first_step, state.max_steps - state.global_step
        eta = (time.monotonic() - self.started) / done * left if done > 0 and left > 0 else None
        self.training_bar.write(step_line(self.stage, state.global_step, state.max_steps, logs, eta))


def use_console(trainer, stage: str, verbose: bool) -> None:
    """Give ``trainer`` the concise console (``verbose``: keep transformers' own)."""
    if verbose or trainer.args.disable_tqdm:
        return
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(ConsoleCallback(stage))


@dataclass
class ConsoleArguments:
    """The console setting shared by the training stages' configs (``presentation``: fields that change only what
    is shown, left out of fingerprints and same-run checks)."""

    presentation: ClassVar[tuple[str, ...]] = ("verbose",)

    verbose: bool = field(
        default_factory=verbose_default,
        metadata={"help": "Show the Trainer's raw metric dicts, every library progress bar and the known-harmless "
                          f"warnings (default: one line per logging step; ${VERBOSE_ENV}=1 sets it)."})
