"""`PriftRLConfig`: TRL's `GRPOConfig` plus prift's data, reward, dynamic-sampling, budget and rollout settings.

Every GRPOConfig/TrainingArguments field keeps its meaning. The DAPO knobs are TRL's own fields: `loss_type`
(TRL 1.16's menu: grpo, dr_grpo, dapo, bnpo, cispo, sapo, luspo, vespo; GSPO is `importance_sampling_level=sequence`;
each composes with dynamic sampling and budgets, which only choose the rows a loss sees), `epsilon` /
`epsilon_high` (clip-higher), `beta` (KL, 0 as in DAPO),
`num_generations`, `max_completion_length`, `mask_truncated_completions` (overlong filtering), `temperature`,
`learning_rate`, `seed`. prift changes these defaults: `epsilon_high=0.28` (DAPO's clip-higher), a constant
learning rate, `logging_steps=1`, `bf16` and activation checkpointing on only when a CUDA GPU is present (on a CPU
both make training ~15x slower), `report_to=none`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from trl import GRPOConfig

from prift.core.console import ConsoleArguments
from prift.core.datasets import DataArguments
from prift.models.arguments import ModelArguments
from prift.models.hardware import HardwareDefaults, parse_mapping
from prift.rewards.registry import reward_names
from prift.rl.budget import UNITS, BudgetUnit
from prift.rl.rollout import resolve_backend

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")  # TRL 1.16's GRPO losses
OVERLONG = "soft_overlong"


@dataclass
class PriftRLConfig(HardwareDefaults, ConsoleArguments, ModelArguments, DataArguments, GRPOConfig):
    r"""Configuration of the GRPO/DAPO stage (`prift rl`).

    Per prompt, G completions are sampled and scored by the weighted sum of the reward functions,
    r_i = sum_f w_f r_f,i; advantages are A_i = (r_i - mean_G(r)) / (std_G(r) + 1e-4) (`scale_rewards=group`).
    """

    renamed_options = {**ModelArguments.renamed_options, **DataArguments.renamed_options, "rollout_backend": "backend",
                       "validation_limit": "validation_max_samples"}  # docs/options.md

    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Tokenizer (and chat template) that renders prompts; default: the start checkpoint's own. "
                          "Its chat template and EOS must equal the start checkpoint's, else the run stops with an "
                          "error naming both."})
    instruction: str | None = field(
        default=None,
        metadata={"help": "Text appended to every prompt; default: a built-in dataset's own instruction (the one SFT "
                          "and eval use, prift.core.datasets), nothing for a prompt file. An empty string appends "
                          "nothing."})
    rewards: list[str] = field(
        default_factory=lambda: ["math_accuracy"],
        metadata={"aliases": ["--reward"], "help": "Reward functions summed into r (weights: --reward_weights): registered names ("
                          f"{', '.join(reward_names())}) or dotted paths 'pkg.module:function'."})
    reward_settings: dict | str | None = field(
        default=None,
        metadata={"help": "Settings per reward as a JSON/YAML mapping, e.g. '{\"code_pass\": {\"timeout_s\": 5}}'."})
    overlong_buffer: int = field(
        default=0,
        metadata={"help": "DAPO soft overlong punishment: when > 0, adds the soft_overlong reward (weight "
                          "--overlong_weight) with L_max = max_completion_length and L_cache = this many tokens: 0 "
                          "up to L_max - L_cache, then linearly down to -1 at L_max."})
    overlong_weight: float = field(
        default=0.5,
        metadata={"help": "Weight of the soft overlong reward. DAPO adds its penalty (down to -1) with weight 1 to a "
                          "+1/-1 accuracy reward; prift's accuracy rewards are 1/0, half that span, so 0.5 keeps "
                          "DAPO's relative strength."})
    dynamic_sampling: bool = field(
        default=False,
        metadata={"help": "DAPO dynamic sampling: drop prompt groups whose G rewards are all equal (zero advantage) "
                          "and refill the batch from fresh prompts, up to --max_refill_rounds extra generation rounds "
                          "per step. Needs per_device_train_batch_size * steps_per_generation divisible by "
                          "num_generations."})
    dynamic_sampling_metric: str = field(
        default="accuracy",
        metadata={"help": "What a kept group's rewards must vary in: accuracy (as DAPO filters: the accuracy rewards "
                          "math_accuracy, gsm8k_numeric, multiple_choice, code_pass, code_pass_fraction and your own "
                          "reward functions, not the shaping ones format_boxed and soft_overlong; a group all wrong "
                          "or all right is dropped even when its length reward varies) or total (the weighted sum of "
                          "every reward)."})
    max_refill_rounds: int = field(
        default=4,
        metadata={"help": "Cap on extra generation rounds per step. When it is reached with too few varying groups, "
                          "the batch is filled with zero-variance groups whose tokens are masked out of the loss."})
    budget_unit: BudgetUnit = field(
        default="steps",
        metadata={"help": f"Unit of --budget: {', '.join(UNITS)} (prompts, completions and tokens include what "
                          "dynamic sampling's refills generate)."})
    budget: int | None = field(
        default=None,
        metadata={"help": "Stop once this much of --budget_unit is spent (steps, prompts and completions exactly; "
                          "tokens at the first step reaching it) and record the spend in run.json. Default: no "
                          "budget (max_steps / num_train_epochs decide)."})
    backend: Literal["auto", "vllm", "hf"] = field(
        default="auto",
        metadata={"help": "Who generates rollouts: vllm (TRL's vLLM integration, see --vllm_mode colocate|server and "
                          "--vllm_gpu_memory_utilization), hf (model.generate), or auto (vllm when installed and a "
                          "CUDA GPU is present, else hf)."})
    validation_benchmarks: str | None = field(
        default=None,
        metadata={"help": "Held-out benchmarks scored during RL by prift's evaluators (the graders and templates of "
                          "`prift eval`), in `prift eval --benchmarks` syntax (gsm8k, math500, or name=path.jsonl); "
                          "outside the budget. Results go to output_dir/validation/step-N and into the log history as "
                          "validation/<benchmark>/<metric>."})
    validation_steps: int = field(
        default=0, metadata={"help": "Validate every N optimizer steps (and after the last one); 0 with "
                                     "validation_benchmarks set is an error."})
    validation_max_samples: int | None = field(
        default=64, metadata={"help": "Problems per validation benchmark (the first N; None = all)."})
    validation_n: int = field(default=1, metadata={"help": "Samples per validation problem (k of avg@k/pass@k)."})
    validation_temperature: float = field(default=0.0, metadata={"help": "Validation sampling temperature; 0 = greedy."})
    validation_max_tokens: int | None = field(
        default=None, metadata={"help": "Maximum new tokens per validation sample; default max_completion_length."})
    checkpoint_choice: Literal["final", "best"] = field(
        default="final",
        metadata={"help": "The model output_dir ends with: final (the last step's) or best (the validation step "
                          "with the highest avg@k on the first validation benchmark; needs validation_benchmarks). "
                          "Fixed before the run; run.json records the step chosen."})
    resume: bool = field(
        default=True,
        metadata={"help": "Continue from the last checkpoint-* folder in output_dir when one exists."})
    # prift's defaults for inherited fields (None = decided by the hardware in __post_init__)
    output_dir: str | None = field(default="outputs/rl", metadata={"help": "Where checkpoints and run.json go."})
    epsilon_high: float | None = field(
        default=0.28,
        metadata={"help": "Upper clip bound of the ratio, 1 + epsilon_high (DAPO clip-higher; None = epsilon)."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "Learning-rate schedule (DAPO: constant)."})
    logging_steps: float = field(default=1, metadata={"help": "Log every X optimizer steps."})

    def __post_init__(self):
        self.resolve_hardware()
        if self.reference_placement != "auto":
            raise ValueError("reference_placement: TRL places the RL stage's KL reference (beta > 0) itself (sharded "
                             f"under ZeRO-3, else per rank); only auto applies here, got {self.reference_placement!r}")
        if isinstance(self.reward_settings, str):
            self.reward_settings = parse_mapping("reward_settings", self.reward_settings,
                                                 '{"code_pass": {"timeout_s": 5}}')
        self.backend = resolve_backend("vllm" if self.use_vllm else self.backend)
        self.use_vllm = self.backend == "vllm"
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type: TRL offers {', '.join(LOSS_TYPES)}; got {self.loss_type!r}")
        if self.importance_sampling_level not in ("token", "sequence"):
            raise ValueError(f"importance_sampling_level: token or sequence (GSPO); got {self.importance_sampling_level!r}")
        self._check_dynamic_sampling_scaling()
        if self.budget_unit not in UNITS:
            raise ValueError(f"budget_unit: unknown value {self.budget_unit!r}; valid: {', '.join(UNITS)}")
        if self.budget is not None and self.budget <= 0:
            raise ValueError(f"budget must be a positive number of {self.budget_unit}; got {self.budget}")
        self._check_validation()
        self._add_overlong_reward()
        if self.dynamic_sampling_metric not in ("accuracy", "total"):
            raise ValueError(f"dynamic_sampling_metric: expected accuracy or total, got {self.dynamic_sampling_metric!r}")
        if self.dynamic_sampling and self.dynamic_sampling_metric == "accuracy" and not any(self.filter_mask()):
            raise ValueError(f"dynamic_sampling_metric=accuracy needs an accuracy reward among rewards "
                             f"({', '.join(self.rewards)}); set dynamic_sampling_metric=total to filter on all of them")
        if self.max_refill_rounds < 0:
            raise ValueError(f"max_refill_rounds must be >= 0; got {self.max_refill_rounds}")
        if self.generation_batch_size is not None and self.steps_per_generation is not None:
            # a copy of a resolved config (dataclasses.replace) carries both, which GRPOConfig rejects
            self.generation_batch_size = None
        super().__post_init__()
        self._check_batch_shapes()
        self._apply_budget()

    def _check_validation(self) -> None:
        if self.checkpoint_choice not in ("final", "best"):
            raise ValueError(f"checkpoint_choice: final or best; got {self.checkpoint_choice!r}")
        if self.validation_benchmarks and self.validation_steps <= 0:
            raise ValueError("validation_benchmarks needs validation_steps > 0 (validate every N optimizer steps)")
        if self.checkpoint_choice == "best" and not self.validation_benchmarks:
            raise ValueError("checkpoint_choice=best picks the best validation step: set validation_benchmarks and "
                             "validation_steps")

    def _check_dynamic_sampling_scaling(self) -> None:
        """Advantages normalised across a scored round would depend on the groups dynamic sampling then drops."""
        if not self.dynamic_sampling:
            return
        if str(self.scale_rewards).lower() == "batch":
            raise ValueError("scale_rewards=batch with dynamic_sampling: TRL divides advantages by the standard deviation "
                             "of each whole scored round, groups that dynamic sampling then drops included; use "
                             "scale_rewards=group (DAPO's) or none")
        if self.multi_objective_aggregation == "normalize_then_sum":
            raise ValueError("multi_objective_aggregation=normalize_then_sum with dynamic_sampling: TRL normalises the "
                             "summed rewards over the whole scored round, so dropped groups change the kept ones' "
                             "advantages and a group whose rewards do not vary still gets non-zero ones; use "
                             "sum_then_normalize")

    def _check_batch_shapes(self) -> None:
        """Layouts whose budget (or dynamic sampling) cannot be exact are refused, naming the fields to change."""
        rows = self.per_device_train_batch_size * self.steps_per_generation
        if (self.dynamic_sampling or self.budget is not None) and rows % self.num_generations:
            what = "dynamic_sampling keeps" if self.dynamic_sampling else "a budget counts and cuts"
            raise ValueError(f"{what} whole prompt groups per process: per_device_train_batch_size * "
                             f"steps_per_generation ({rows}) must be divisible by num_generations "
                             f"({self.num_generations}), else a group is split across processes")
        micro = self.steps_per_generation * self.num_iterations  # optimizer-step micro-batches per generation round
        rounds = self.gradient_accumulation_steps // micro
        if self.budget is not None and self.budget_unit != "steps" and self.gradient_accumulation_steps > micro:
            # each optimizer step spans several generation rounds: the budget must buy whole steps
            if self.gradient_accumulation_steps % micro or self.budget_unit == "tokens":
                raise ValueError(f"gradient_accumulation_steps ({self.gradient_accumulation_steps}) > "
                                 f"steps_per_generation x num_iterations ({micro}): an optimizer step spans several "
                                 "generation rounds, which a budget can end only at a whole step; use a multiple "
                                 "of it and a prompts or completions budget, or steps_per_generation >= "
                                 "gradient_accumulation_steps")
            step_rows = rounds * self.generation_batch_size
            if self.budget_completions % step_rows:
                raise ValueError(f"a {self.budget_unit} budget of {self.budget} is {self.budget_completions} "
                                 f"completions; each optimizer step generates {step_rows} ({rounds} rounds of "
                                 f"{self.generation_batch_size}), so it must be a multiple of {step_rows}")
        rows_per_cut = math.lcm(self.num_generations, self.steps_per_generation) * self.world_size
        completions = self.budget_completions
        if completions is not None and completions % rows_per_cut:
            raise ValueError(f"a {self.budget_unit} budget of {self.budget} is {completions} completions; a round cut "
                             f"to the budget must hold whole groups that split evenly into steps_per_generation "
                             f"micro-batches on every process, so it must be a multiple of {rows_per_cut}")

    @property
    def budget_completions(self) -> int | None:
        """The budget in completions, for the prompts and completions units (None otherwise)."""
        if self.budget is None or self.budget_unit not in ("prompts", "completions"):
            return None
        return self.budget * self.num_generations if self.budget_unit == "prompts" else self.budget

    def _apply_budget(self) -> None:
        """steps -> max_steps; other units -> max_steps = an upper bound on the steps they can buy (each step
        generates at least one generation batch, each completion at least one token); the BudgetCallback stops at
        the budget itself."""
        if self.budget is None:
            return
        if self.budget_unit == "steps":
            self.max_steps = self.budget
            return
        completions = self.budget_completions or self.budget  # tokens: at least one per completion
        generations = math.ceil(completions / self.generation_batch_size)
        bound = math.ceil(generations * self.num_iterations * self.steps_per_generation
                          / self.gradient_accumulation_steps)  # a last partial step still runs
        if self.max_steps > 0 and self.max_steps != bound:  # equal: a copy of a resolved config
            raise ValueError(f"set either max_steps or a {self.budget_unit} budget, not both")
        self.max_steps = bound

    def _add_overlong_reward(self) -> None:
        """overlong_buffer > 0 appends `soft_overlong` to the rewards (once: a re-validated copy keeps it once)."""
        if self.overlong_buffer and not 0 < self.overlong_buffer < (self.max_completion_length or 0):
            raise ValueError(f"overlong_buffer must be in [0, max_completion_length={self.max_completion_length}); "
                             f"got {self.overlong_buffer}")
        if (OVERLONG in self.rewards) != (self.overlong_buffer > 0):
            if self.overlong_buffer == 0:
                raise ValueError(f"the {OVERLONG} reward needs --overlong_buffer > 0 (its L_cache in tokens)")
            if self.reward_weights is not None or self.overlong_weight != 1.0:
                self.reward_weights = [*(self.reward_weights or [1.0] * len(self.rewards)), self.overlong_weight]
            self.rewards = [*self.rewards, OVERLONG]

    def filter_mask(self) -> list[bool]:
        """Per reward in ``rewards`` order: whether dynamic sampling's keep/drop decision reads it (with ``accuracy``:
        the registered accuracy rewards and your own reward functions, not the built-in shaping ones)."""
        from prift.rewards.registry import is_accuracy_reward, reward_names

        builtin = set(reward_names())
        return [self.dynamic_sampling_metric == "total" or is_accuracy_reward(name) or name not in builtin
                for name in self.rewards]

    def reward_specs(self) -> list[tuple[str, dict]]:
        """(name, settings) of every reward; soft_overlong gets L_max = max_completion_length, L_cache =
        overlong_buffer."""
        settings = dict(self.reward_settings or {})
        unknown = sorted(set(settings) - set(self.rewards))
        if unknown:
            raise ValueError(f"reward_settings names {unknown}, which are not in rewards ({', '.join(self.rewards)})")
        if self.overlong_buffer:
            settings[OVERLONG] = {**settings.get(OVERLONG, {}), "max_completion_len": self.max_completion_length,
                                  "soft_punish_cache": self.overlong_buffer}
        return [(name, settings.get(name, {})) for name in self.rewards]
