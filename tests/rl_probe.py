"""`prift` with probes, for runs launched in child processes: `python -m rl_probe rl ...` is `prift rl ...` that
also writes, into $PRIFT_PROBE_DIR, per rank, every write of `run.json` and `budget.json` and the weights the rank
holds when the model is saved. `rl_probe:prompt_reward` is a reward that depends on the prompt only, so the keep/drop decisions of
dynamic sampling are the same whatever was generated (and in runs with different process counts).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

GROUP = 4  # num_generations of the runs using prompt_reward


def _probe_file(name: str) -> Path:
    folder = Path(os.environ["PRIFT_PROBE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}-rank{os.environ.get('RANK', '0')}"


def _log(name: str, entry: dict) -> None:
    with _probe_file(name).with_suffix(".jsonl").open("a") as out:
        out.write(json.dumps(entry) + "\n")


def prompt_value(row_id: int, position: int) -> float:
    """row_id % 3 == 0: 1 for the first completion of the group, else 0 (varies); 1: always 1; 2: always 0."""
    if row_id % 3 == 0:
        return float(position == 0)
    return float(row_id % 3 == 1)


def prompt_reward(prompts, completions, row_id, trainer_state=None, **kwargs):
    """Rewards of this process's rows (whole groups of GROUP rows, in order); logs them with the step."""
    rewards = [prompt_value(r, i % GROUP) for i, r in enumerate(row_id)]
    if rewards:  # run_rl checks the reward on zero rows before training
        _log("rewards", {"step": trainer_state.global_step, "row_id": list(row_id), "rewards": rewards})
    return rewards


def _install() -> None:
    from safetensors.torch import save_model

    from prift.core.provenance import RunRecord
    from prift.rl.budget import Budget
    from prift.rl.trainer import PriftGRPOTrainer

    write_record, write_budget, save_final = RunRecord.write, Budget.save, PriftGRPOTrainer.save_model

    def logged_record(self, output_dir, **kwargs):
        _log("writes", {"file": "run.json", "folder": str(output_dir)})
        return write_record(self, output_dir, **kwargs)

    def logged_budget(self, folder):
        _log("writes", {"file": "budget.json", "folder": str(folder)})
        return write_budget(self, folder)

    def saved_weights(self, *args, **kwargs):
        save_model(self.accelerator.unwrap_model(self.model), str(_probe_file("weights").with_suffix(".safetensors")))
        return save_final(self, *args, **kwargs)

    RunRecord.write, Budget.save, PriftGRPOTrainer.save_model = logged_record, logged_budget, saved_weights


if __name__ == "__main__":
    import sys

    from prift import main

    _install()
    sys.exit(main())
