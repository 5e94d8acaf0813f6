"""`PriftGRPOTrainer`: TRL's `GRPOTrainer` with DAPO dynamic sampling, an exact budget and per-step group metrics.

Loss, generation and buffering stay TRL's. Only two methods are wrapped (`_generate`, `_calculate_rewards`, to see
each round's token count and gathered rewards) and one is extended (`_generate_and_score_completions`, train mode):

1. the generation batch is cut to the whole groups the budget still allows (`Budget.completions_left`);
2. with ``dynamic_sampling``, each round is scored by TRL, groups with zero reward variance are set aside, and
   fresh prompts from a `RefillStream` are scored until the *global* batch holds P*B*S/G varying groups or
   ``max_refill_rounds`` extra rounds ran. Groups are chosen in global order (round by round, process by process),
   so the prompts consumed and the groups trained on do not depend on the number of processes P; the decisions
   read only TRL's gathered rewards, so all processes run the same rounds (TRL's scoring contains collectives)
   without extra communication. Each process then receives its B*S/G chosen groups (moved from the process that
   scored them when needed), re-padded into one batch of B*S rows; a shortfall is filled with zero-variance groups
   whose completion mask is 0; ``num_items_in_batch`` (the "dapo" loss normalizer) is recounted for that batch;
3. every round's prompts, completions and tokens are added to ``budget.spent``.

Logged per step (means over the step's rounds where TRL logs per round): ``groups/solved_frac`` (groups where at
least one completion scored >= 1 on the first reward, i.e. pass@G), and with dynamic sampling
``dynamic_sampling/{groups_kept,groups_dropped,filler_groups,refill_rounds,refill_completions}``.
"""

from __future__ import annotations

import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer

from prift.rl.budget import Budget, BudgetCallback
from prift.rl.dynamic_sampling import RefillStream, group_rewards, keep_mask, masked, merge_groups, split_groups


class BudgetScheduler:
    """TRL's LR schedule, placed by the budget: each step moves it to ``position()`` (None: one step on, as usual)
    and a step where ``skip()`` is true (a filler-only batch) does not move it. Everything else (state_dict,
    get_last_lr, ...) is the wrapped scheduler's, so checkpoints hold the plain scheduler state."""

    def __init__(self, scheduler, skip, position):
        self.scheduler, self.skip, self.position = scheduler, skip, position

    def step(self, *args, **kwargs):
        if self.skip():
            return None
        target = self.position()
        if target is not None:
            self.scheduler.last_epoch = target - 1  # LambdaLR.step() adds one and evaluates the schedule there
        return self.scheduler.step(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.scheduler, name)


class PriftGRPOTrainer(GRPOTrainer):
    def __init__(self, *args, budget: Budget, **kwargs):
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.add_callback(BudgetCallback(budget, self._generation_due))
        self._refill: RefillStream | None = None
        self._last_rewards: torch.Tensor | None = None
        self._round_tokens = 0
        self._filler_only = False  # the current generation batch holds no group with reward variance
        self._round_span: tuple[float, float] | None = None  # budget fraction spent before / after this round
        self._round_steps = 0  # optimizer steps taken on this round
        self.filler_only_steps = 0

    def create_optimizer(self, *args, **kwargs):
        """TRL's optimizer, whose ``step`` is skipped (and counted) on a filler-only batch: dynamic sampling found no
        group with reward variance within its refill cap, every completion is masked out, and an update would be
        only AdamW's momentum and weight decay."""
        optimizer = super().create_optimizer(*args, **kwargs)
        if not getattr(optimizer, "_prift_filler_guard", False):
            optimizer.step = self._unless_filler_only(optimizer.step)
            optimizer._prift_filler_guard = True
        return optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """TRL's LR schedule over ``num_training_steps`` (max_steps: for a prompts, completions or tokens budget,
        the most steps it can buy), placed by the budget spent rather than the steps taken, so it ends where the
        budget does even when refills or long completions spend it in fewer steps; a filler-only step (no update)
        does not move it."""
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if not isinstance(scheduler, BudgetScheduler):
            self.lr_scheduler = scheduler = BudgetScheduler(
                scheduler, lambda: self._filler_only, lambda: self._schedule_position(num_training_steps))
        return scheduler

    def _schedule_position(self, length: int) -> int | None:
        """length x the fraction of the budget spent; the optimizer steps of one generation round split its spend
        evenly (None: no budget, or a steps budget, which the step count already follows)."""
        if self.budget.amount is None or self.budget.unit == "steps" or self._round_span is None:
            return None
        start, end = self._round_span
        self._round_steps += 1
        per_round = max(self.args.steps_per_generation * self.num_iterations // self.args.gradient_accumulation_steps,
                        1)
        return max(1, round(length * (start + (end - start) * min(self._round_steps, per_round) / per_round)))

    def _unless_filler_only(self, step):
        def guarded(*args, **kwargs):
            if not self._filler_only:
                return step(*args, **kwargs)
            self.filler_only_steps += 1
            print(f"[prift] step {self.state.global_step + 1}: no prompt group with reward variance within "
                  f"max_refill_rounds; update skipped ({self.filler_only_steps} so far)", flush=True)
            return None

        return guarded

    def _generation_due(self) -> bool:
        """Whether the next micro-step generates (TRL regenerates every steps_per_generation * num_iterations)."""
        return self._step % (self.args.steps_per_generation * self.num_iterations) == 0

    def _generate(self, prompts: list):
        result = super()._generate(prompts)
        self._round_tokens = sum(len(ids) for ids in result[1])  # result[1]: this process's completion ids
        return result

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        self._last_rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        return self._last_rewards

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict:
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        start = self.budget.fraction_spent()
        inputs = self._within_budget(inputs)
        batch = self._dynamic_batch(inputs) if self.args.dynamic_sampling else self._scored_round(inputs, refill=False)
        self._round_span, self._round_steps = (start, self.budget.fraction_spent()), 0  # for _schedule_position
        return batch

    def _sum(self, value: float) -> float:
        return self.accelerator.gather(torch.tensor([value], device=self.accelerator.device)).sum().item()

    def _within_budget(self, rows: list[dict]) -> list[dict]:
        """The first rows of this process's batch that the budget allows (all processes cut alike; the config
        guarantees whole groups and an even split into steps_per_generation micro-batches)."""
        left = self.budget.completions_left()
        return rows if left is None else rows[: left // self.accelerator.num_processes]

    def _scored_round(self, rows: list[dict], refill: bool) -> dict:
        """One TRL generation + scoring round, accounted in the budget."""
        out = super()._generate_and_score_completions(rows)
        G = self.num_generations
        prompt_ids = gather_object([row.get("row_id") for row in rows[::G]])
        tokens = int(self._sum(self._round_tokens))
        self.budget.spent.add_round(prompt_ids, len(prompt_ids) * G, tokens, refill)
        solved = (self._last_rewards[:, 0].view(-1, G) >= 1.0).any(dim=1).float().mean().item()
        self._metrics["train"]["groups/solved_frac"].append(solved)
        return out

    def _refill_stream(self) -> RefillStream:
        if self._refill is None:
            dataset = self.train_dataset
            if self.args.remove_unused_columns:
                dataset = self._remove_unused_columns(dataset, "Training")
            self._refill = RefillStream(dataset, self.num_generations,
                                        self.args.per_device_train_batch_size * self.args.steps_per_generation,
                                        self.accelerator.num_processes, self.accelerator.process_index,
                                        self.args.seed)
            self._refill.skip(self.budget.spent.refill_rounds)  # a resumed run goes on where it stopped
        return self._refill

    def _dynamic_batch(self, rows: list[dict]) -> dict:
        """Score rounds until the global batch holds enough groups with reward variance (or the cap), then merge this
        process's share of the chosen groups."""
        G, P = self.num_generations, self.accelerator.num_processes
        target = len(rows) * P // G  # groups in the global batch
        scored: dict[tuple[int, int], dict] = {}  # (round, global group index) -> group scored by this process
        kept, spare, rounds, refill_rows = [], [], 0, 0
        totals: dict[tuple[int, int], float] = {}  # (round, group) -> mean total reward
        dropped = {"all_correct": 0, "all_wrong": 0}
        read = self.args.filter_mask()  # DAPO's default reads the accuracy rewards only
        full = sum(w for w, used in zip(self.reward_weights.tolist(), read, strict=True) if used)  # all right
        while True:
            out = self._scored_round(rows, refill=rounds > 0)
            first = self.accelerator.process_index * len(rows) // G
            scored.update({(rounds, first + g): group for g, group in enumerate(split_groups(out, G))})
            # global: the same on every process
            keep = keep_mask(self._last_rewards, self.reward_weights, G, read).tolist()
            filtered = group_rewards(self._last_rewards, self.reward_weights, G, read).nanmean(dim=1).tolist()
            total = group_rewards(self._last_rewards, self.reward_weights, G).nanmean(dim=1).tolist()
            for g, varying in enumerate(keep):
                (kept if varying else spare).append((rounds, g))
                totals[(rounds, g)] = total[g]
                if not varying and filtered[g] == filtered[g]:  # not NaN: every completion scored the same
                    kind = "all_correct" if filtered[g] >= full else "all_wrong" if filtered[g] <= 0 else "other"
                    dropped[kind] = dropped.get(kind, 0) + 1
            if len(kept) >= target or rounds == self.args.max_refill_rounds:
                break
            rows = self._within_budget(self._refill_stream().next_batch())
            if not rows:
                break
            rounds, refill_rows = rounds + 1, refill_rows + len(rows)
        fill = spare[: max(target - len(kept), 0)]
        scored.update({key: masked(scored[key]) for key in fill if key in scored})
        merged = merge_groups(self._share(scored, kept[:target] + fill), self._tokenizer.pad_token_id)
        loss_mask = merged["completion_mask"] * merged.get("tool_mask", 1)
        merged["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        metrics = self._metrics["train"]
        metrics["dynamic_sampling/groups_kept"].append(min(len(kept), target))
        metrics["dynamic_sampling/groups_dropped"].append(len(spare))
        metrics["dynamic_sampling/filler_groups"].append(len(fill))
        metrics["dynamic_sampling/refill_rounds"].append(rounds)
        metrics["dynamic_sampling/refill_completions"].append(refill_rows * P)
        for kind, count in dropped.items():  # why groups were dropped (TRL's own reward means are pre-filter)
            metrics[f"dynamic_sampling/dropped_{kind}"].append(count)
        if kept:  # the reward of what is trained on
            metrics["dynamic_sampling/kept_reward_mean"].append(sum(totals[k] for k in kept[:target]) / len(kept[:target]))
        self._filler_only = not kept  # global: every process saw the same keep decisions
        metrics["dynamic_sampling/filler_only"].append(float(self._filler_only))
        return merged

    def _share(self, scored: dict[tuple[int, int], dict], chosen: list[tuple[int, int]]) -> list[dict]:
        """This process's contiguous share of the `chosen` groups (global keys, the same list on every process): the
        ones it scored stay where they are, the others arrive from the processes that scored them."""
        P, rank = self.accelerator.num_processes, self.accelerator.process_index
        share = len(chosen) // P
        if P > 1:
            outgoing = [(key, {k: v.cpu() for k, v in scored[key].items()})
                        for i, key in enumerate(chosen) if key in scored and i // share != rank]
            device = self.accelerator.device
            for key, group in gather_object(outgoing):
                scored.setdefault(key, {k: v.to(device) for k, v in group.items()})
        return [scored[key] for key in chosen[rank * share:(rank + 1) * share]]
