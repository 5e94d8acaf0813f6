"""`run_rl(config)`: one GRPO/DAPO run, start checkpoint in, HF checkpoint + run.json out.

Linear on purpose: tokenizer and template checks, data with gold fields, rewards from the registry (checked
against the data's columns before any model loads), policy, trainer with the budget, train (resuming from the last
checkpoint and its spent budget), save, record provenance with the budget spent and a reward-curve summary.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from prift.core.checkpoints import last_complete_checkpoint
from prift.core.console import quiet_libraries, use_console
from prift.core.diskspace import check_checkpoint_space, disk_full_errors
from prift.core.provenance import RunRecord, ensure_writable, presentation_fields, settings_of
from prift.models.loading import load_causal_lm, load_tokenizer, resolve_model_path
from prift.rewards.registry import get_reward
from prift.rl.budget import BUDGET_FILE, Budget
from prift.rl.config import PriftRLConfig
from prift.rl.data import check_reward_columns, load_rl_dataset
from prift.rl.template import TemplateError, check_same_template, check_turn_end
from prift.rl.trainer import PriftGRPOTrainer
from prift.rl.validation import ValidationCallback
from prift.sft.sources import zero_stage

logger = logging.getLogger(__name__)
EXAMPLES = 10  # row ids kept in run.json and the warning
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


def prompt_token_counts(tokenizer, prompts: list, chat_template_kwargs: dict | None = None) -> list[int]:
    """Tokens of each prompt as GRPOTrainer renders it (chat messages through the template with the generation
    prompt, plain text through the tokenizer)."""
    from trl.data_utils import is_conversational

    chat = is_conversational({"prompt": prompts[0]})
    counts = []
    for start in range(0, len(prompts), 512):
        batch = prompts[start:start + 512]
        ids = (tokenizer.apply_chat_template(batch, add_generation_prompt=True, tokenize=True, return_dict=True,
                                             **(chat_template_kwargs or {})) if chat else tokenizer(batch))["input_ids"]
        counts += [len(row) for row in ids]
    return counts


def overlong_prompts(config: PriftRLConfig, tokenizer, dataset, context: int | None, source: str) -> dict:
    """Prompts too long to leave `max_completion_length` tokens of the model's context, for run.json's `data`:
    `prompt_tokens_max`, `prompt_limit` (context - max_completion_length), `overlong_prompts` and the first
    `overlong_prompt_row_ids`. TRL 1.16 has no prompt limit and never truncates a prompt, so such rollouts run past
    the context the model was trained for (vLLM rejects them); a warning names them."""
    counts = prompt_token_counts(tokenizer, dataset["prompt"], config.chat_template_kwargs)
    report = {"prompt_tokens_max": max(counts), "prompt_limit": None, "overlong_prompts": 0,
              "overlong_prompt_row_ids": []}
    if context is None:
        return report
    limit = context - config.max_completion_length
    overlong = [row_id for row_id, count in zip(dataset["row_id"], counts, strict=True) if count > limit]
    report.update(prompt_limit=limit, overlong_prompts=len(overlong), overlong_prompt_row_ids=overlong[:EXAMPLES])
    if overlong:
        shown = ", ".join(map(str, overlong[:EXAMPLES])) + (", ..." if len(overlong) > EXAMPLES else "")
        logger.warning(f"{source}: {len(overlong)} of {len(counts)} prompts are longer than {limit} tokens (context "
                       f"{context} - max_completion_length {config.max_completion_length}); they are not truncated, "
                       f"so their rollouts run past the model's context (rows {shown}). Shorten them or drop them.")
    return report


def finished_run(config: PriftRLConfig) -> str | None:
    """What ``config.output_dir`` says of a finished run of exactly ``config`` (run.json is written only once
    training and the final save are done), or None when there is none to keep (or ``resume`` is off)."""
    path = Path(config.output_dir) / "run.json"
    if not config.resume or not path.is_file():
        return None
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    recorded = {k: v for k, v in (done.get("config") or {}).items() if k not in presentation_fields(config)}
    if recorded != json.loads(json.dumps(settings_of(config))):
        return None
    budget = done.get("budget") or {}
    spent = (budget.get("spent") or {}).get(budget.get("unit"))
    return f"{spent} of {budget.get('amount')} {budget.get('unit')} spent" if budget.get("amount") else "no budget"


def run_rl(config: PriftRLConfig) -> Path:
    """Train; return the output folder holding the HF checkpoint and run.json (written by the main process; all
    processes return once it exists). A rerun of a finished run with the same config is a no-op that says so."""
    ensure_writable(config.output_dir)
    if (finished := finished_run(config)) is not None:
        print(f"[prift] rl: {config.output_dir} already holds this run, finished ({finished}); nothing to do "
              "(resume=false or another output_dir trains again)", flush=True)
        return Path(config.output_dir)
    quiet_libraries(config.verbose)
    record = RunRecord("rl", config, seed=config.seed)
    checkpoint = resolve_model_path(config.model_name_or_path)
    tokenizer_source = resolve_model_path(config.tokenizer_name_or_path or config.model_name_or_path, "tokenizer")
    tokenizer = load_tokenizer(tokenizer_source)
    check_same_template(tokenizer, tokenizer_source, checkpoint)
    dataset, provenance = load_rl_dataset(
        config.dataset, split=config.dataset_split, data_dir=config.data_dir, max_samples=config.max_samples,
        instruction=config.instruction, chat_template=config.use_chat_template, fmt=config.dataset_format)
    record.extra["data"] = provenance
    rewards = {name: get_reward(name, **settings) for name, settings in config.reward_specs()}
    check_reward_columns(rewards, dataset, provenance["source"])
    policy = load_causal_lm(checkpoint, config.dtype, attn_implementation=config.attn_implementation)
    record.extra["attn_implementation"] = policy.config._attn_implementation
    chat_rows = not isinstance(dataset[0]["prompt"], str)
    if chat_rows and not config.use_chat_template and not tokenizer.chat_template:
        raise TemplateError(f"{provenance['source']}: the prompts are chat messages but tokenizer "
                            f"{tokenizer_source!r} has no chat template; give plain-text prompts or use a tokenizer "
                            "with a chat template")
    if chat_rows:
        check_turn_end(tokenizer, policy.generation_config, tokenizer_source)
    context = config.vllm_max_model_length if config.use_vllm and config.vllm_max_model_length else getattr(
        policy.config, "max_position_embeddings", None)
    provenance.update(overlong_prompts(config, tokenizer, dataset, context, provenance["source"]))
    check_checkpoint_space(config.output_dir, policy, config)
    record.extra["rollout"] = {"backend": config.backend,
                               **({"vllm_mode": config.vllm_mode,
                                   "vllm_gpu_memory_utilization": config.vllm_gpu_memory_utilization}
                                  if config.use_vllm else {})}
    print(f"[prift] rl: {config.loss_type} loss, G={config.num_generations}, rollouts by {config.backend}, "
          f"rewards {', '.join(rewards)}, budget {config.budget or 'none'} {config.budget_unit}", flush=True)
    budget = Budget(config.budget_unit, config.budget, config.num_generations)
    trainer = PriftGRPOTrainer(model=policy, reward_funcs=list(rewards.values()), args=config, train_dataset=dataset,
                               processing_class=tokenizer, budget=budget)
    use_console(trainer, "rl", config.verbose)
    validation = ValidationCallback(config, tokenizer) if config.validation_benchmarks else None
    if validation is not None:
        if zero_stage(trainer.accelerator) == 3:
            raise ValueError("validation_benchmarks under DeepSpeed ZeRO-3: validation generates with the whole policy, "
                             "which ZeRO-3 partitions; use ZeRO-2, DDP or one process, or validate the saved "
                             "checkpoints with `prift eval`")
        validation.trainer = trainer
        trainer.add_callback(validation)
    last = last_complete_checkpoint(config.output_dir, (BUDGET_FILE,)) if config.resume else None
    if last:
        print(f"[prift] resuming from {last}", flush=True)
        budget.load(last)
    with disk_full_errors(config.output_dir):
        result = trainer.train(resume_from_checkpoint=last)
        trainer.save_model(config.output_dir)
        chosen = None
        if validation is not None and trainer.is_world_process_zero():
            chosen = validation.finish(config.output_dir, trainer.state.global_step)
        if trainer.is_world_process_zero():  # every process holds the same record; one writes it
            record.write(config.output_dir, metrics=result.metrics, resumed_from=last, budget=budget.record(),
                         reward_curve=reward_curve(trainer.state.log_history),
                         log_history=trainer.state.log_history, world_size=trainer.accelerator.num_processes,
                         filler_only_steps=trainer.filler_only_steps, validation=chosen)
    trainer.accelerator.wait_for_everyone()  # every process returns once run.json exists
    return Path(config.output_dir)
