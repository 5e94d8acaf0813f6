"""RL step cost, measured in one run (SmolLM2-135M; CPU, or GPU when present).

Prints, per variant, the median seconds per optimizer step split into generation (TRL's `_generate`: rollouts),
reward (`_calculate_rewards`: the verifiers) and update (the rest: old/ref log-probs, advantages, forward + backward
+ optimizer), the rollout throughput in completion tokens/s, and the generation cost of DAPO dynamic sampling as a
ratio to plain GRPO on the same prompts (same seed, so the same main prompt stream; refills are extra rounds).
When vLLM is installed and a CUDA GPU is present, a vLLM-colocate variant is added and its rollout tokens/s is
reported as a ratio to HF generate.

    python benchmarks/rl_step.py                                   # 4 prompts x 4 generations x 32 tokens, 3 steps
    python benchmarks/rl_step.py --prompts 8 --tokens 64 --steps 3 # closer to a real step (~75 s per step on 2 cores)
    python benchmarks/rl_step.py --steps 2 --max-refill-rounds 1 --threads 1   # quick look on a busy machine

Variants run one after the other from the same start checkpoint; the load average is printed at start and end
because other work on the machine skews the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from transformers import TrainerCallback

from prift.models.loading import load_causal_lm, load_tokenizer
from prift.rewards.registry import get_reward
from prift.rl.budget import Budget
from prift.rl.config import PriftRLConfig
from prift.rl.data import load_rl_dataset
from prift.rl.rollout import BACKENDS
from prift.rl.trainer import PriftGRPOTrainer

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "recipes" / "data" / "gsm8k_train_sample.jsonl"


class TimedTrainer(PriftGRPOTrainer):
    """Adds the seconds spent in generation and in rewards to `self.phase_s` (per step, via StepTimer)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.phase_s: dict[str, float] = defaultdict(float)

    def _generate(self, prompts):
        started = time.perf_counter()
        result = super()._generate(prompts)
        self.phase_s["generation"] += time.perf_counter() - started
        self.phase_s["tokens"] += self._round_tokens
        return result

    def _calculate_rewards(self, *args):
        started = time.perf_counter()
        result = super()._calculate_rewards(*args)
        self.phase_s["reward"] += time.perf_counter() - started
        return result


class StepTimer(TrainerCallback):
    def __init__(self, trainer: TimedTrainer):
        self.trainer, self.steps = trainer, []

    def on_step_begin(self, args, state, control, **kwargs):
        self.trainer.phase_s.clear()
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        phases = dict(self.trainer.phase_s)
        total = time.perf_counter() - self.started
        self.steps.append({**phases, "total": total, "update": total - phases["generation"] - phases["reward"]})


def run_variant(args, name: str, out: str, **overrides) -> dict:
    config = PriftRLConfig(
        model_name_or_path=args.model, dataset=str(DATA), output_dir=out, rewards=["math_accuracy"],
        num_generations=args.generations, per_device_train_batch_size=args.prompts * args.generations,
        max_completion_length=args.tokens, budget=args.steps, save_strategy="no", disable_tqdm=True, seed=0,
        logging_steps=1000, dataloader_pin_memory=False, resume=False, **overrides)
    dataset, _ = load_rl_dataset(config.dataset)
    rewards = [get_reward(reward, **settings) for reward, settings in config.reward_specs()]
    trainer = TimedTrainer(model=load_causal_lm(config.model_name_or_path, config.dtype), reward_funcs=rewards,
                           args=config, train_dataset=dataset, processing_class=load_tokenizer(args.model),
                           budget=Budget("steps", args.steps, config.num_generations))
    timer = StepTimer(trainer)
    trainer.add_callback(timer)
    trainer.train()
    steps = timer.steps[1:] if len(timer.steps) > 1 else timer.steps  # the first step warms up
    median = {key: statistics.median(s[key] for s in steps) for key in ("total", "generation", "reward", "update")}
    spent = trainer.budget.spent
    return {"name": name, **median, "tokens_per_s": sum(s["tokens"] for s in steps) / sum(s["generation"] for s in steps),
            "completions": spent.completions, "refill_completions": spent.refill_completions,
            "generation_sum": sum(s["generation"] for s in timer.steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step")
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt (G)")
    parser.add_argument("--tokens", type=int, default=32, help="max completion length")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-refill-rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 is far faster than the default on a busy machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"# rl_step: {args.model} on {device}; {args.prompts} prompts x {args.generations} generations x "
          f"{args.tokens} tokens, {args.steps} steps; load average {os.getloadavg()[0]:.2f}")
    variants = {"grpo (hf)": dict(backend="hf", loss_type="grpo"),
                "dapo + dynamic sampling (hf)": dict(backend="hf", loss_type="dapo", dynamic_sampling=True,
                                                     max_refill_rounds=args.max_refill_rounds)}
    if BACKENDS["vllm"]() is None:
        variants["grpo (vllm colocate)"] = dict(backend="vllm", vllm_mode="colocate", loss_type="grpo")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_variant(args, name, str(Path(tmp) / str(i)), **kw) for i, (name, kw) in enumerate(variants.items())]
    print("\n| variant | step s | generation s | reward s | update s | rollout tokens/s | completions | refill |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['total']:.2f} | {r['generation']:.2f} | {r['reward']:.2f} | {r['update']:.2f} | "
              f"{r['tokens_per_s']:.1f} | {r['completions']} | {r['refill_completions']} |")
    plain, dynamic = rows[0], rows[1]
    print(f"\ndynamic sampling generation overhead vs plain GRPO (same prompts, all {args.steps} steps): "
          f"{dynamic['generation_sum'] / plain['generation_sum']:.2f}x time, "
          f"{dynamic['completions'] / plain['completions']:.2f}x completions")
    if len(rows) > 2:
        print(f"vLLM colocate vs HF generate rollout tokens/s: {rows[2]['tokens_per_s'] / plain['tokens_per_s']:.2f}x")
    else:
        print(f"vLLM vs HF: not measured here ({BACKENDS['vllm']()})")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
