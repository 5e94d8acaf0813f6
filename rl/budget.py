"""RL budgets: what a run may spend, what it did spend, and the callback that stops it there.

A budget is ``amount`` of one unit:

| unit | counts | stops |
|---|---|---|
| ``steps`` | optimizer steps | exactly (TRL's ``max_steps``) |
| ``prompts`` | prompt groups rolled out, refills included | exactly: a round is cut to the groups left |
| ``completions`` | completions generated (prompts x G), refills included | exactly, as for prompts |
| ``tokens`` | completion tokens generated, refills included | at the first optimizer step that reaches it |

Generation lengths are unknown before sampling, so a token budget overshoots by less than one step's tokens; the
overshoot is what ``spent`` records. Training stops only when the next micro-step would generate (never in the
middle of reusing a generation batch, ``num_iterations > 1``). ``spent`` is saved in every checkpoint folder as
``budget.json`` (by the main process, after ``trainer_state.json``: a checkpoint without it is incomplete) and
restored on resume; it also counts what dynamic sampling's refill rounds cost.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, get_args

from transformers import TrainerCallback

from prift.core.provenance import write_json_atomic

BudgetUnit = Literal["steps", "prompts", "completions", "tokens"]
UNITS = get_args(BudgetUnit)
BUDGET_FILE = "budget.json"


@dataclass
class Spent:
    """What a run has generated and trained so far (global counts, all processes)."""

    steps: int = 0
    prompts: int = 0
    completions: int = 0
    tokens: int = 0
    refill_rounds: int = 0
    refill_prompts: int = 0
    refill_completions: int = 0
    refill_tokens: int = 0
    wall_time_s: float = 0.0
    main_prompt_ids: list = field(default_factory=list)
    refill_prompt_ids: list = field(default_factory=list)

    def add_round(self, prompt_ids: list, completions: int, tokens: int, refill: bool) -> None:
        self.prompts += len(prompt_ids)
        self.completions += completions
        self.tokens += tokens
        (self.refill_prompt_ids if refill else self.main_prompt_ids).extend(prompt_ids)
        if refill:
            self.refill_rounds += 1
            self.refill_prompts += len(prompt_ids)
            self.refill_completions += completions
            self.refill_tokens += tokens

    def summary(self) -> dict:
        """The counts plus a digest of each prompt-id sequence (equal digests = the same prompts in the same order)."""
        counts = {k: v for k, v in asdict(self).items() if not k.endswith("prompt_ids")}
        for name in ("main_prompt_ids", "refill_prompt_ids"):
            ids = getattr(self, name)
            digest = hashlib.sha256(json.dumps(ids).encode()).hexdigest()
            counts[name.replace("_ids", "_order")] = {"count": len(ids), "sha256": digest}
        counts["refill_completion_overhead"] = round(self.refill_completions / max(self.completions, 1), 4)
        return counts


@dataclass
class Budget:
    """``amount`` of ``unit`` (None: no budget, TRL's max_steps / num_train_epochs decide) and what was spent."""

    unit: str = "steps"
    amount: int | None = None
    num_generations: int = 1
    spent: Spent = field(default_factory=Spent)

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"budget_unit: unknown value {self.unit!r}; valid: {', '.join(UNITS)}")

    def exhausted(self) -> bool:
        return self.amount is not None and getattr(self.spent, self.unit) >= self.amount

    def fraction_spent(self) -> float | None:
        """Spent / amount in the budget's unit, at most 1 (None without a budget)."""
        if self.amount is None:
            return None
        return min(getattr(self.spent, self.unit) / self.amount, 1.0)

    def completions_left(self) -> int | None:
        """Completions that may still be generated (None: this unit does not bound completions)."""
        if self.amount is None or self.unit not in ("prompts", "completions"):
            return None
        limit = self.amount * self.num_generations if self.unit == "prompts" else self.amount
        return max(limit - self.spent.completions, 0)

    def save(self, folder: str | Path) -> None:
        write_json_atomic(Path(folder, BUDGET_FILE), asdict(self.spent))

    def load(self, folder: str | Path) -> None:
        path = Path(folder, BUDGET_FILE)
        if path.is_file():
            self.spent = Spent(**json.loads(path.read_text()))

    def record(self) -> dict:
        return {"unit": self.unit, "amount": self.amount, "reached": self.exhausted(), "spent": self.spent.summary()}


class BudgetCallback(TrainerCallback):
    """Stops training at the first optimizer step where the budget is spent and the next micro-step would generate;
    keeps ``spent.steps`` and ``spent.wall_time_s`` current and saves ``spent`` into every checkpoint."""

    def __init__(self, budget: Budget, generation_due: Callable[[], bool]):
        self.budget, self.generation_due = budget, generation_due
        self._since = time.time()

    def _tick(self, state) -> None:
        now = time.time()
        self.budget.spent.wall_time_s = round(self.budget.spent.wall_time_s + now - self._since, 3)
        self._since = now
        self.budget.spent.steps = state.global_step

    def on_train_begin(self, args, state, control, **kwargs):
        self._since = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        self._tick(state)
        if self.budget.exhausted() and self.generation_due():
            control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        self._tick(state)
        if state.is_world_process_zero:  # `spent` is global, the same on every process
            self.budget.save(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_train_end(self, args, state, control, **kwargs):
        self._tick(state)
