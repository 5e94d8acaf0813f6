"""`run_rl(config)`: one GRPO/DAPO run, start checkpoint in, HF checkpoint + run.json out.

Linear on purpose: tokenizer and template checks, data with gold fields, rewards from the registry (checked
against the data's columns before any model loads), policy, trainer with the budget, train (resuming from the last
checkpoint and its spent budget), save, record provenance with the budget spent and a reward-curve summary.
"""

from __future__ import annotations

from pathlib import Path

from prift.models.checkpoints import last_complete_checkpoint
from prift.models.loading import load_causal_lm, load_tokenizer, resolve_model_path
from prift.models.provenance import RunRecord
from prift.rewards.registry import get_reward
from prift.rl.budget import BUDGET_FILE, Budget
from prift.rl.config import PriftRLConfig
from prift.rl.data import check_reward_columns, load_rl_dataset
from prift.rl.template import check_same_template, check_turn_end
from prift.rl.trainer import PriftGRPOTrainer

CURVES = ("reward", "reward_std", "groups/solved_frac", "frac_reward_zero_std", "completions/mean_length")


def reward_curve(log_history: list[dict]) -> dict:
    """Per logged curve (total reward, each reward function's mean, ...): first, last, min, max, mean and the
    (step, value) points."""
    names = [*CURVES, *sorted({k for h in log_history for k in h if k.startswith("rewards/") and k.endswith("/mean")})]
    summary = {}
    for name in names:
        points = [(h["step"], h[name]) for h in log_history if name in h]
        if points:
            values = [v for _, v in points]
            summary[name] = {"first": values[0], "last": values[-1], "min": min(values), "max": max(values),
                             "mean": sum(values) / len(values), "points": points}
    return summary


def run_rl(config: PriftRLConfig) -> Path:
    """Train; return the output folder holding the HF checkpoint and run.json (written by the main process; all
    processes return once it exists)."""
    record = RunRecord("rl", config, seed=config.seed)
    checkpoint = resolve_model_path(config.model_name_or_path)
    tokenizer_source = resolve_model_path(config.tokenizer_name_or_path or config.model_name_or_path)
    tokenizer = load_tokenizer(tokenizer_source)
    check_same_template(tokenizer, tokenizer_source, checkpoint)
    dataset, provenance = load_rl_dataset(
        config.dataset, split=config.dataset_split, data_dir=config.data_dir, max_samples=config.max_samples,
        instruction=config.instruction, chat_template=config.use_chat_template, fmt=config.dataset_format)
    record.extra["data"] = provenance
    rewards = {name: get_reward(name, **settings) for name, settings in config.reward_specs()}
    check_reward_columns(rewards, dataset, provenance["source"])
    policy = load_causal_lm(checkpoint, config.dtype)
    if config.use_chat_template:
        check_turn_end(tokenizer, policy.generation_config, tokenizer_source)
    record.extra["rollout"] = {"backend": config.rollout_backend,
                               **({"vllm_mode": config.vllm_mode,
                                   "vllm_gpu_memory_utilization": config.vllm_gpu_memory_utilization}
                                  if config.use_vllm else {})}
    print(f"[prift] rl: {config.loss_type} loss, G={config.num_generations}, rollouts by {config.rollout_backend}, "
          f"rewards {', '.join(rewards)}, budget {config.budget or 'none'} {config.budget_unit}", flush=True)
    budget = Budget(config.budget_unit, config.budget, config.num_generations)
    trainer = PriftGRPOTrainer(model=policy, reward_funcs=list(rewards.values()), args=config, train_dataset=dataset,
                               processing_class=tokenizer, budget=budget)
    last = last_complete_checkpoint(config.output_dir, (BUDGET_FILE,)) if config.resume else None
    if last:
        print(f"[prift] resuming from {last}", flush=True)
        budget.load(last)
    result = trainer.train(resume_from_checkpoint=last)
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():  # every process holds the same record; one writes it
        record.write(config.output_dir, metrics=result.metrics, resumed_from=last, budget=budget.record(),
                     reward_curve=reward_curve(trainer.state.log_history), log_history=trainer.state.log_history,
                     world_size=trainer.accelerator.num_processes)
    trainer.accelerator.wait_for_everyone()  # every process returns once run.json exists
    return Path(config.output_dir)
