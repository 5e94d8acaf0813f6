"""End-to-end RL runs on tiny models: 2 DAPO steps that save a loadable checkpoint, dynamic sampling (kept groups,
refills, the refill cap), exact budgets recorded in run.json, identical prompt order from different checkpoints,
resuming with the spent budget, and the errors a bad start checkpoint or dataset must give.

A recording reward (passed by dotted path, as a user's reward would be) logs every scored row; its value is a
known function of the prompt: for row_id % 3 == 0 the parity of the completion's token-id sum (varies within a
group), for 1 always 1, for 2 always 0 (zero variance).
"""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict
from pathlib import Path
from unittest.mock import ANY

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, TrainerCallback

from prift.models.loading import load_causal_lm, load_tokenizer
from prift.models.tiny import save_tiny_checkpoint
from prift.rewards.registry import get_reward
from prift.rl.budget import Budget
from prift.rl.config import PriftRLConfig
from prift.rl.data import DatasetError, load_rl_dataset
from prift.rl.template import TemplateError
from prift.rl.train import run_rl
from prift.rl.trainer import PriftGRPOTrainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CALLS: list[dict] = []  # one entry per reward call: step, row ids, completion ids, rewards
RECORDER = f"{__name__}:recording_reward"
G = 4


def fake_reward(row_id: int, ids: list[int]) -> float:
    return float(sum(ids) % 2) if row_id % 3 == 0 else float(row_id % 3 == 1)


def recording_reward(prompts, completions, completion_ids, row_id, trainer_state=None, **kwargs):
    rewards = [fake_reward(r, ids) for r, ids in zip(row_id, completion_ids, strict=True)]
    if not completion_ids:  # run_rl's zero-row column check
        return rewards
    step = trainer_state.global_step
    CALLS.append({"step": step, "row_id": list(row_id), "ids": [list(i) for i in completion_ids], "rewards": rewards})
    return rewards


def constant_reward(prompts, completions, **kwargs):
    return [0.0] * len(completions)


@pytest.fixture(autouse=True)
def _fresh_calls():
    CALLS.clear()


@pytest.fixture(scope="module")
def prompts_jsonl(tmp_path_factory, write_jsonl) -> Path:
    rows = [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(60)]
    return write_jsonl(tmp_path_factory.mktemp("rl-data") / "prompts.jsonl", rows)


def config(model, dataset, out, **overrides) -> PriftRLConfig:
    fields = dict(model_name_or_path=str(model), dataset=str(dataset), output_dir=str(out), rewards=[RECORDER],
                  num_generations=G, per_device_train_batch_size=8, max_completion_length=8, learning_rate=1e-2,
                  budget=2, save_strategy="no", disable_tqdm=True, dataloader_pin_memory=False, seed=7)
    fields.update(overrides)
    return PriftRLConfig(**fields)


def record(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def groups(call: dict) -> list[tuple[int, list, list]]:
    """(row id, completion ids, rewards) per group of one reward call."""
    return [(call["row_id"][i], call["ids"][i:i + G], call["rewards"][i:i + G]) for i in range(0, len(call["ids"]), G)]


# --- end to end ---------------------------------------------------------------------------------------------------


def test_two_dapo_steps_save_a_loadable_trained_checkpoint(tiny_checkpoint, tmp_path):
    out = run_rl(config(tiny_checkpoint, "recipes/data/gsm8k_train_sample.jsonl", tmp_path / "rl", loss_type="dapo",
                        rewards=["math_accuracy", RECORDER], max_samples=16, save_strategy="steps", save_steps=1))
    run = record(out)
    assert run["stage"] == "rl" and run["config"]["loss_type"] == "dapo" and run["rollout"]["backend"] == "hf"
    assert run["budget"]["spent"]["steps"] == 2 and (out / "checkpoint-2" / "budget.json").is_file()
    steps = [h for h in run["log_history"] if "reward" in h]
    assert len(steps) == 2 and all("rewards/math_accuracy/mean" in h and "entropy" in h for h in steps)
    assert "clip_ratio/region_mean" in steps[0] and "groups/solved_frac" in steps[0]
    assert run["reward_curve"]["reward"]["points"] == [[h["step"], h["reward"]] for h in steps]
    trained = AutoModelForCausalLM.from_pretrained(out)
    start = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    changed = [n for n, p in trained.state_dict().items() if not torch.equal(p, start.state_dict()[n])]
    assert changed, "two steps with a varying reward must change the weights"


# --- dynamic sampling ---------------------------------------------------------------------------------------------


class Snapshot(TrainerCallback):
    """The batch that reached the loss in each step (the trainer's buffered generation batch)."""

    def __init__(self):
        self.trainer, self.batches = None, {}

    def on_step_end(self, args, state, control, **kwargs):
        self.batches[state.global_step] = {k: v.clone() for k, v in self.trainer._buffered_inputs[0].items()}


def _train_with_snapshot(cfg) -> tuple[dict, list[dict]]:
    """Train with PriftGRPOTrainer built as run_rl builds it, snapshotting each step's loss batch."""
    dataset, _ = load_rl_dataset(cfg.dataset)
    snapshot = Snapshot()
    trainer = PriftGRPOTrainer(model=load_causal_lm(cfg.model_name_or_path), reward_funcs=[get_reward(RECORDER)],
                               args=cfg, train_dataset=dataset, processing_class=load_tokenizer(cfg.model_name_or_path),
                               budget=Budget(cfg.budget_unit, cfg.budget, cfg.num_generations), callbacks=[snapshot])
    snapshot.trainer = trainer
    trainer.train()
    return snapshot.batches, trainer.state.log_history


def _rows(batch: dict, rows=None) -> list[tuple]:
    """Completion token ids of the (selected) rows of a loss batch, right padding cut by the completion mask."""
    ids, mask = batch["completion_ids"], batch["completion_mask"]
    rows = range(len(ids)) if rows is None else rows
    return sorted(tuple(ids[i][: int(mask[i].sum())].tolist()) for i in rows)


def _varying(calls: list[dict]) -> list[tuple]:
    return [g for c in calls for g in groups(c) if len(set(g[2])) > 1]


def _expected(varying: list[tuple], n: int) -> list[tuple]:
    return sorted(tuple(ids) for _, ids_list, _ in varying[:n] for ids in ids_list)


@pytest.mark.parametrize(("loss_type", "level"), [("cispo", "token"), ("sapo", "token"), ("luspo", "sequence"),
                                                 ("vespo", "token"), ("grpo", "sequence")])  # the last is GSPO
def test_trl_s_loss_menu_trains_with_dynamic_sampling_and_a_budget(tiny_checkpoint, prompts_jsonl, tmp_path,
                                                                    loss_type, level):
    """Each of TRL's other losses runs through prift's trainer (dynamic sampling, a prompts budget), spends the
    budget exactly, changes the weights and records its settings in run.json."""
    out = run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / loss_type, loss_type=loss_type,
                        importance_sampling_level=level, dynamic_sampling=True, max_refill_rounds=4,
                        budget_unit="prompts", budget=4, learning_rate=1e-1))
    run = record(out)
    assert (run["config"]["loss_type"], run["config"]["importance_sampling_level"]) == (loss_type, level)
    assert run["budget"]["spent"]["prompts"] == 4  # refills included: the budget counts every generated group
    losses = [h["loss"] for h in run["log_history"] if "loss" in h]
    assert losses and all(math.isfinite(x) for x in losses)
    trained, start = load_causal_lm(str(out), "float32"), load_causal_lm(str(tiny_checkpoint), "float32")
    assert any(not torch.equal(p, start.state_dict()[n]) for n, p in trained.state_dict().items())


def _cosine(step: float, length: int, base: float) -> float:
    return base * 0.5 * (1 + math.cos(math.pi * step / length))


def test_the_lr_schedule_follows_the_budget_spent_and_ends_with_it(tiny_checkpoint, prompts_jsonl, tmp_path):
    """A cosine schedule under a prompts budget. The LR of step k+1 is set after step k: without refills each step
    spends 1/N of the budget and the LRs are TRL's schedule step by step; with dynamic sampling, refills spend it in
    fewer steps than max_steps' bound, and each LR is the schedule at the fraction of the budget spent so far (the
    schedule reaches its end when the budget does, not at the bound)."""
    base = 1e-2
    plain = record(run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "plain", budget_unit="prompts", budget=8,
                                 lr_scheduler_type="cosine", learning_rate=base)))
    lrs = [h["learning_rate"] for h in plain["log_history"] if "learning_rate" in h]
    assert lrs == pytest.approx([_cosine(k, 4, base) for k in range(4)], abs=1e-12)

    CALLS.clear()
    refilled = record(run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "ds", budget_unit="prompts", budget=12,
                                    lr_scheduler_type="cosine", learning_rate=base, dynamic_sampling=True,
                                    max_refill_rounds=4)))
    lrs = [h["learning_rate"] for h in refilled["log_history"] if "learning_rate" in h]
    spent = [sum(len(groups(c)) for c in CALLS if c["step"] < k) for k in range(1, len(lrs))]  # after steps 1..
    assert refilled["budget"]["spent"]["prompts"] == 12 and len(lrs) < 6, "refills must spend the budget early"
    assert lrs == pytest.approx([base] + [_cosine(round(6 * s / 12), 6, base) for s in spent], abs=1e-12)
    assert lrs != pytest.approx([_cosine(k, 6, base) for k in range(len(lrs))], abs=1e-6)  # not the step count


def test_dynamic_sampling_keeps_exactly_the_varying_groups_and_refills(tiny_checkpoint, prompts_jsonl, tmp_path):
    cfg = config(tiny_checkpoint, prompts_jsonl, tmp_path / "ds", dynamic_sampling=True, max_refill_rounds=8)
    batches, history = _train_with_snapshot(cfg)
    target = 8 // G
    for step, batch in batches.items():
        calls = [c for c in CALLS if c["step"] == step - 1]
        scored, varying = [g for c in calls for g in groups(c)], _varying(calls)
        assert len(varying) >= target, "the cap was not hit, so the batch must be full of varying groups"
        assert len(_varying(calls[:-1])) < target, "rounds stop as soon as the batch is full"
        assert _rows(batch) == _expected(varying, target)
        assert batch["completion_ids"].size(0) == 8 and bool((batch["advantages"] != 0).all())
        assert int(batch["num_items_in_batch"]) == int(batch["completion_mask"].sum())
        logged = next(h for h in history if h.get("step") == step and "reward" in h)
        assert logged["dynamic_sampling/refill_rounds"] == len(calls) - 1
        assert logged["dynamic_sampling/groups_dropped"] == len(scored) - len(varying)
        assert logged["dynamic_sampling/groups_kept"] == target
        # fake_reward: rows 1 mod 3 are all right, rows 2 mod 3 all wrong, rows 0 mod 3 vary
        dropped = [g for g in scored if len(set(g[2])) == 1]
        assert logged["dynamic_sampling/dropped_all_correct"] == sum(g[0] % 3 == 1 for g in dropped)
        assert logged["dynamic_sampling/dropped_all_wrong"] == sum(g[0] % 3 == 2 for g in dropped)
        trained = varying[:target]
        assert logged["dynamic_sampling/kept_reward_mean"] == pytest.approx(
            sum(sum(g[2]) / G for g in trained) / target)
    assert any(len([c for c in CALLS if c["step"] == s - 1]) > 1 for s in batches), "no step needed a refill"


def test_refill_cap_stops_refilling_and_masks_the_filler(tiny_checkpoint, prompts_jsonl, tmp_path):
    cfg = config(tiny_checkpoint, prompts_jsonl, tmp_path / "cap", dynamic_sampling=True, max_refill_rounds=1,
                 budget=4)
    batches, history = _train_with_snapshot(cfg)
    filler_steps = 0
    for step, batch in batches.items():
        calls = [c for c in CALLS if c["step"] == step - 1]
        kept = min(len(_varying(calls)), 2)
        assert len(calls) == (1 if len(_varying(calls[:1])) >= 2 else 2), "one refill at most, and only if short"
        live = [i for i in range(8) if batch["completion_mask"][i].sum() > 0]
        assert _rows(batch, live) == _expected(_varying(calls), kept)
        assert batch["completion_ids"].size(0) == 8
        assert int(batch["num_items_in_batch"]) == int(batch["completion_mask"].sum())
        filler_steps += kept < 2
    assert filler_steps > 0, "with the fixed seed at least one step hits the cap"
    assert all(h["dynamic_sampling/refill_rounds"] <= 1 for h in history if "reward" in h)


def test_a_filler_only_step_leaves_weights_and_learning_rate_unchanged(tiny_checkpoint, prompts_jsonl, tmp_path):
    """No group ever varies: every step is filler only. Without the guard AdamW's weight decay would still move the
    weights and the linear schedule would still decay."""
    from safetensors.torch import load_file

    cfg = config(tiny_checkpoint, prompts_jsonl, tmp_path / "filler", rewards=[f"{__name__}:constant_reward"],
                 dynamic_sampling=True, dynamic_sampling_metric="total", max_refill_rounds=0, budget=2,
                 weight_decay=0.1, lr_scheduler_type="linear")
    out = run_rl(cfg)
    done = record(out)
    start = load_file(tiny_checkpoint / "model.safetensors")
    trained = load_file(out / "model.safetensors")
    assert all(torch.equal(start[name], trained[name]) for name in start)
    steps = [h for h in done["log_history"] if "dynamic_sampling/filler_only" in h]
    assert len({h["learning_rate"] for h in steps}) == 1  # the schedule did not advance
    assert [h["dynamic_sampling/filler_only"] for h in steps] == [1.0, 1.0] and done["filler_only_steps"] == 2


# --- budgets ------------------------------------------------------------------------------------------------------


def _generated() -> tuple[int, int]:
    """(completions, completion tokens) the reward saw, i.e. everything generated."""
    return sum(len(c["ids"]) for c in CALLS), sum(len(i) for c in CALLS for i in c["ids"])


@pytest.mark.parametrize(("unit", "amount", "completions", "steps", "dynamic"), [
    ("steps", 3, 24, 3, False),
    ("completions", 12, 12, 2, False),  # one full batch of 8, then a batch cut to the 4 left
    ("prompts", 5, 20, 3, False),
    ("completions", 20, 20, None, True),  # refills count: the last round is cut to what is left
])
def test_budget_stops_exactly_and_is_recorded(tiny_checkpoint, prompts_jsonl, tmp_path, unit, amount, completions,
                                             steps, dynamic):
    out = run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / unit, budget_unit=unit, budget=amount,
                        dynamic_sampling=dynamic))
    budget = record(out)["budget"]
    generated, tokens = _generated()
    assert generated == completions == budget["spent"]["completions"]
    assert budget["spent"]["tokens"] == tokens and budget["spent"]["prompts"] == completions // G
    assert budget["reached"] and budget["unit"] == unit and budget["amount"] == amount
    if steps is not None:
        assert budget["spent"]["steps"] == steps
    if dynamic:
        assert budget["spent"]["refill_completions"] == sum(len(c["ids"]) for c in CALLS[1:]
                                                            if c["step"] == CALLS[CALLS.index(c) - 1]["step"])


def test_a_budget_over_accumulated_rounds_spends_exactly_whole_steps(tiny_checkpoint, prompts_jsonl, tmp_path):
    """gradient_accumulation_steps=2 over one-micro-batch rounds: each optimizer step generates two rounds; a
    budget of two steps' completions is spent exactly, in two steps (one round's worth, which used to round down
    to max_steps=0 and crash, is refused by the config)."""
    run = record(run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "ga", gradient_accumulation_steps=2,
                               steps_per_generation=1, budget_unit="completions", budget=32)))
    spent = run["budget"]["spent"]
    assert (spent["steps"], spent["completions"], spent["prompts"]) == (2, 32, 8)


def test_token_budget_stops_at_the_first_step_that_reaches_it(tiny_checkpoint, prompts_jsonl, tmp_path):
    budget = 100  # a step generates at most 8 x 8 = 64 tokens, so at least two steps
    out = run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "tokens", budget_unit="tokens", budget=budget))
    spent = record(out)["budget"]["spent"]
    per_step = defaultdict(int)
    for call in CALLS:
        per_step[call["step"]] += sum(len(i) for i in call["ids"])
    totals = [sum(per_step[s] for s in range(k + 1)) for k in range(len(per_step))]
    assert spent["tokens"] == totals[-1] >= budget > totals[-2]
    assert spent["steps"] == len(per_step)


# --- prompt order and resume ---------------------------------------------------------------------------------------


def test_same_seed_and_budget_from_two_checkpoints_see_the_same_prompts(tmp_path, prompts_jsonl):
    seen, orders = {}, {}
    for name, arch, seed in (("a", "qwen2", 0), ("b", "llama", 5)):
        start = save_tiny_checkpoint(tmp_path / name, arch=arch, seed=seed)
        CALLS.clear()
        out = run_rl(config(start, prompts_jsonl, tmp_path / f"rl-{name}", budget=3))
        seen[name] = [c["row_id"] for c in CALLS]
        orders[name] = record(out)["budget"]["spent"]["main_prompt_order"]
    assert seen["a"] == seen["b"] and orders["a"] == orders["b"]
    CALLS.clear()
    out = run_rl(config(tmp_path / "a", prompts_jsonl, tmp_path / "rl-other-seed", budget=3, seed=8))
    assert [c["row_id"] for c in CALLS] != seen["a"], "another seed must give another order"


def test_resume_continues_the_budget_and_prompt_order(tiny_checkpoint, prompts_jsonl, tmp_path):
    straight = record(run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "straight", budget=3)))
    straight_calls = [c["row_id"] for c in CALLS]
    CALLS.clear()
    run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "resumed", budget=2, save_strategy="steps", save_steps=1))
    shutil.rmtree(tmp_path / "resumed" / "checkpoint-2")  # killed after step 1's checkpoint
    CALLS.clear()
    resumed = record(run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "resumed", budget=3,
                                   save_strategy="steps", save_steps=1)))
    assert resumed["resumed_from"].endswith("checkpoint-1")
    assert [c["row_id"] for c in CALLS] == straight_calls[1:]
    for key in ("steps", "prompts", "completions", "main_prompt_order"):
        assert resumed["budget"]["spent"][key] == straight["budget"]["spent"][key]


def test_resume_after_a_step_with_refills_equals_an_uninterrupted_run(tiny_checkpoint, prompts_jsonl, tmp_path):
    """Dynamic sampling with refills, killed after step 1 and resumed: the same refill prompts in the same order as
    an uninterrupted run (the refill stream goes on where it stopped), the same budget and the same weights."""
    settings = dict(dynamic_sampling=True, max_refill_rounds=8, save_strategy="steps", save_steps=1)
    straight = record(run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "straight", budget=3, **settings)))
    straight_calls = [(c["step"], c["row_id"]) for c in CALLS]
    assert len([s for s, _ in straight_calls if s >= 1]) > 2, "steps 2-3 must use refills for this test to mean much"
    run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "resumed", budget=2, **settings))
    shutil.rmtree(tmp_path / "resumed" / "checkpoint-2")  # killed after step 1's checkpoint
    CALLS.clear()
    resumed = record(run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "resumed", budget=3, **settings)))
    assert resumed["resumed_from"].endswith("checkpoint-1")
    assert [(c["step"], c["row_id"]) for c in CALLS] == [call for call in straight_calls if call[0] >= 1]
    assert resumed["budget"]["spent"] == straight["budget"]["spent"] | {"wall_time_s": ANY}
    weights = {name: load_file(tmp_path / name / "model.safetensors") for name in ("straight", "resumed")}
    for key, value in weights["straight"].items():
        assert torch.equal(value, weights["resumed"][key]), key


@pytest.mark.parametrize("settings", [{"budget_unit": "tokens", "budget": 40},
                                      {"dynamic_sampling": True, "max_refill_rounds": 2, "budget": 2}],
                         ids=["tokens", "dynamic_sampling"])
def test_rerunning_a_finished_run_changes_nothing(settings, tiny_checkpoint, prompts_jsonl, tmp_path, capsys):
    cfg = config(tiny_checkpoint, prompts_jsonl, tmp_path / "rl", save_strategy="steps", save_steps=1, **settings)
    out = run_rl(cfg)
    before = {p.name: p.read_bytes() for p in (out / "run.json", out / "model.safetensors")}
    CALLS.clear()
    assert run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "rl", save_strategy="steps", save_steps=1,
                         **settings)) == out
    assert CALLS == [] and "already holds this run, finished" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (out / "run.json", out / "model.safetensors")} == before
    # another setting is another run: it trains (resuming from the checkpoints there, as before)
    run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "rl", save_strategy="steps", save_steps=1,
                  **{**settings, "learning_rate": 5e-3}))
    assert CALLS != []


# --- errors before training ---------------------------------------------------------------------------------------


def test_mismatched_chat_template_names_both_sides(tiny_checkpoint, prompts_jsonl, tmp_path):
    other = save_tiny_checkpoint(tmp_path / "other", arch="qwen2", seed=0)  # e.g. the base model of an SFT run
    tokenizer = load_tokenizer(str(other))
    tokenizer.chat_template = "{% for m in messages %}### {{ m['content'] }}\n{% endfor %}"
    tokenizer.save_pretrained(other)
    with pytest.raises(TemplateError, match="chat_template mismatch") as err:
        run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "rl", tokenizer_name_or_path=str(other)))
    assert str(other) in str(err.value) and str(tiny_checkpoint) in str(err.value)


def test_template_turn_end_that_does_not_stop_generation_is_an_error(prompts_jsonl, tmp_path):
    start = save_tiny_checkpoint(tmp_path / "eos", arch="qwen2", seed=0)
    tokenizer = load_tokenizer(str(start))
    tokenizer.eos_token = "<|endoftext|>"
    tokenizer.save_pretrained(start)
    model = AutoModelForCausalLM.from_pretrained(start)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(start)
    with pytest.raises(TemplateError, match=r"<\|im_end\|>.*none of the tokens that stop generation.*<\|endoftext\|>"):
        run_rl(config(start, prompts_jsonl, tmp_path / "rl"))


def test_missing_gold_field_names_row_and_field(tiny_checkpoint, tmp_path, write_jsonl):
    rows = [{"question": "What is 1 + 1?", "answer": "#### 2"}, {"question": "What is 2 + 2?"}]
    data = write_jsonl(tmp_path / "gsm8k_like.jsonl", rows)
    with pytest.raises(DatasetError, match=r"row 1 has no field 'answer'"):
        run_rl(config(tiny_checkpoint, data, tmp_path / "rl", rewards=["math_accuracy"]))
    prompts_only = write_jsonl(tmp_path / "prompts_only.jsonl", [{"prompt": "What is 1 + 1?", "level": 1}])
    with pytest.raises(DatasetError, match=r"reward 'math_accuracy'.*'answer'"):
        run_rl(config(tiny_checkpoint, prompts_only, tmp_path / "rl", rewards=["math_accuracy"]))


# --- validation during RL -------------------------------------------------------------------------------------------


def test_validation_during_rl_is_prift_eval_at_those_steps_and_leaves_training_unchanged(
        tiny_checkpoint, prompts_jsonl, tmp_path):
    """Validation every 2 of 4 steps: the logged metrics are `prift eval`'s on the checkpoint of that step, training
    ends with the same weights and budget as a run without validation (outside the budget, RNGs restored), and
    checkpoint_choice=best leaves the best step's weights (the earliest on a tie) in output_dir, as run.json says."""
    from prift.eval.config import EvalConfig
    from prift.eval.runner import evaluate
    from prift.recipes.arithmetic import TASKS
    data_dir = TASKS["arith"].data_dir

    bench = f"arith={data_dir() / 'test.jsonl'}"
    plain = record(run_rl(config(tiny_checkpoint, prompts_jsonl, tmp_path / "plain", budget=4)))
    plain_calls = [(c["step"], c["ids"]) for c in CALLS]
    CALLS.clear()
    validated = config(tiny_checkpoint, prompts_jsonl, tmp_path / "val", budget=4, validation_benchmarks=bench,
                       validation_steps=2, validation_max_samples=4, validation_max_tokens=8, checkpoint_choice="best")
    run = record(run_rl(validated))
    steps = [h for h in run["log_history"] if "validation/arith/avg@1" in h]
    assert [h["step"] for h in steps] == [2, 4]
    assert run["budget"]["spent"] == plain["budget"]["spent"] | {"wall_time_s": ANY}
    assert [(c["step"], c["ids"]) for c in CALLS] == plain_calls  # the same rollouts after each validation
    for step in (2, 4):
        again = evaluate(EvalConfig(model_name_or_path=str(tmp_path / "val" / f"checkpoint-{step}"), benchmarks=bench, max_samples=4,
                                    max_tokens=8, output_dir=str(tmp_path / f"eval-{step}"), progress=False))
        expected = json.loads(again.read_text())["results"]["arith"]["metrics"]["avg@1"]["value"]
        assert next(h for h in steps if h["step"] == step)["validation/arith/avg@1"] == expected
    final = load_file(tmp_path / "val" / "checkpoint-4" / "model.safetensors")
    assert all(torch.equal(v, final[k]) for k, v in load_file(tmp_path / "plain" / "model.safetensors").items())
    scores = {h["step"]: h["validation/arith/avg@1"] for h in steps}
    best = max(scores, key=lambda s: (scores[s], -s))
    assert run["validation"]["chosen_step"] == best and run["validation"]["metric"] == "arith/avg@1"
    kept = load_file(tmp_path / "val" / "model.safetensors")
    chosen = load_file(tmp_path / "val" / f"checkpoint-{best}" / "model.safetensors")
    assert all(torch.equal(v, chosen[k]) for k, v in kept.items())
