"""prift's RL stage beside plain TRL: the same run with ``trl.GRPOTrainer`` and nothing of prift's around it.

Reads a finished ``prift rl`` run (its ``run.json``: the GRPOConfig fields it trained with, the SFT checkpoint it
started from, its per-step log), trains plain ``GRPOTrainer`` from the same checkpoint with the same config on the
same dataset with prift's reward function, and compares step by step: the mean reward and ``frac_reward_zero_std``
TRL logged, then the final weights (largest absolute difference of any parameter). prift's additions (the budget
that cuts the last step, the dynamic-sampling refills, the budget-placed LR schedule) must be no-ops on a run
whose budget is whole steps and without dynamic sampling, so the two runs must agree. A run with dynamic sampling
or a budget that ends mid-step is refused: plain TRL has no counterpart.

Run: ``.venv/bin/python benchmarks/crosscheck_trl_rl.py outputs/demo/rl/nll [--dataset recipes/data/addsub/rl.jsonl]``
(the demo's RL stages qualify; about as long as the RL stage itself).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import torch

# GRPOConfig fields a prift run records that plain TRL must not take over (paths, launch settings)
NOT_COPIED = {"output_dir", "logging_dir", "deepspeed", "accelerator_config", "fsdp_config", "generation_batch_size",
              "report_to", "save_strategy", "disable_tqdm"}


def plain_trl(run: dict, dataset: Path, out: Path):
    from datasets import load_dataset
    from trl import GRPOConfig, GRPOTrainer

    from prift.models.loading import load_causal_lm, load_tokenizer
    from prift.rewards.registry import get_reward

    config = run["config"]
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    args = GRPOConfig(**{k: v for k, v in config.items() if k in fields and k not in NOT_COPIED},
                      output_dir=str(out), report_to=[], save_strategy="no", disable_tqdm=True)
    model_path = config["model_name_or_path"]
    settings = config.get("reward_settings") or {}
    settings = json.loads(settings) if isinstance(settings, str) else settings
    rewards = [get_reward(name, **settings.get(name, {})) for name in config["rewards"]]
    trainer = GRPOTrainer(model=load_causal_lm(model_path, torch.float32, "cpu"), reward_funcs=rewards, args=args,
                          train_dataset=load_dataset("json", data_files=str(dataset))["train"],
                          processing_class=load_tokenizer(model_path))
    trainer.train()
    return trainer.state.log_history, trainer.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a finished `prift rl` output folder (run.json + weights)")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="its prompt/answer JSONL (default: the run's own dataset path from run.json)")
    args = parser.parse_args()
    run = json.loads((args.run_dir / "run.json").read_text())
    config = run["config"]
    if config.get("dynamic_sampling"):
        raise SystemExit("dynamic sampling has no plain-TRL counterpart: pick a run without it")
    dataset = args.dataset or Path(config["dataset"])
    with tempfile.TemporaryDirectory(prefix="prift-trl-") as out:
        history, model = plain_trl(run, dataset, Path(out))
    ours = [h for h in run["log_history"] if "reward" in h]
    theirs = [h for h in history if "reward" in h]
    if len(ours) != len(theirs):
        raise SystemExit(f"prift logged {len(ours)} steps, plain TRL {len(theirs)}: the budget did not end on a step")
    print(f"{'step':>4} {'prift reward':>13} {'TRL reward':>11} {'prift zero_std':>15} {'TRL zero_std':>13}")
    for a, b in zip(ours, theirs, strict=True):
        print(f"{a['step']:>4} {a['reward']:>13.4f} {b['reward']:>11.4f} {a['frac_reward_zero_std']:>15.3f} "
              f"{b['frac_reward_zero_std']:>13.3f}")
    same = sum(abs(a["reward"] - b["reward"]) < 1e-6 for a, b in zip(ours, theirs, strict=True))
    prift_weights = weights(args.run_dir)
    start = weights(Path(config["model_name_or_path"]))
    trl_weights = {k: v.detach() for k, v in model.state_dict().items()}
    shared = sorted(set(prift_weights) & set(trl_weights))
    print(f"identical step rewards {same}/{len(ours)}; largest weight difference over {len(shared)} tensors: "
          f"{largest_difference(prift_weights, trl_weights, shared):.3g} (RL moved them by up to "
          f"{largest_difference(prift_weights, start, shared):.3g} from the start checkpoint)")


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors = {}
    for shard in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(shard))
    return tensors


def largest_difference(a: dict, b: dict, names: list[str]) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in names)


if __name__ == "__main__":
    main()
