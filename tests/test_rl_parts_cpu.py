"""The RL stage's parts without training: the dynamic-sampling keep rule, group re-padding and the refill stream's
layout, budget arithmetic, config validation (also through `prift rl`), rollout-backend choice and RL data rows."""

from __future__ import annotations

import math

import pytest
import torch

from prift import main as prift_main
from prift.core.config import replace_config
from prift.rl.budget import Budget
from prift.rl.config import PriftRLConfig
from prift.rl.data import DatasetError, load_rl_dataset
from prift.rl.dynamic_sampling import RefillStream, keep_mask, masked, merge_groups, split_groups
from prift.rl.rollout import BACKENDS, resolve_backend

NAN = float("nan")


def _config(**overrides) -> PriftRLConfig:
    fields = dict(output_dir="/tmp/prift-rl-unused", num_generations=4, per_device_train_batch_size=8,
                  max_completion_length=16, use_cpu=True)
    return PriftRLConfig(**{**fields, **overrides})


# --- keep rule ----------------------------------------------------------------------------------------------------


def test_keep_mask_is_nonzero_std_of_the_weighted_sum():
    rewards = torch.tensor([
        [1.0, 0.0], [1.0, 0.0],      # group 0: same sum -> drop
        [1.0, 0.0], [0.0, 0.5],      # group 1: 1.0 vs 1.0 (weights 1, 2) -> drop
        [0.0, 0.0], [1.0, 1.0],      # group 2: 0 vs 3 -> keep
        [NAN, NAN], [1.0, NAN],      # group 3: one unscorable row, one scored row -> std NaN -> drop
        [NAN, 0.0], [NAN, 1.0],      # group 4: 0 vs 2 -> keep
    ])
    weights = torch.tensor([1.0, 2.0])
    assert keep_mask(rewards, weights, 2).tolist() == [False, False, True, False, True]


def test_dapo_filters_groups_on_accuracy_not_on_the_length_reward():
    # rewards [math_accuracy, soft_overlong]: group 0 all wrong but of different lengths, group 1 right and wrong
    rewards = torch.tensor([[0.0, 0.0], [0.0, -0.5], [1.0, 0.0], [0.0, 0.0]])
    weights = torch.tensor([1.0, 1.0])
    accuracy = _config(dynamic_sampling=True, max_completion_length=64, overlong_buffer=16)
    assert accuracy.rewards == ["math_accuracy", "soft_overlong"] and accuracy.filter_mask() == [True, False]
    assert keep_mask(rewards, weights, 2, accuracy.filter_mask()).tolist() == [False, True]  # DAPO: on accuracy
    total = _config(dynamic_sampling=True, max_completion_length=64, overlong_buffer=16,
                    dynamic_sampling_metric="total")
    assert keep_mask(rewards, weights, 2, total.filter_mask()).tolist() == [True, True]  # length alone keeps it
    with pytest.raises(ValueError, match="needs an accuracy reward among rewards"):
        _config(dynamic_sampling=True, rewards=["format_boxed"])
    with pytest.raises(ValueError, match="dynamic_sampling_metric: expected accuracy or total"):
        _config(dynamic_sampling_metric="kept")


def test_split_and_merge_repad_groups_from_different_rounds():
    pad = 9
    round_a = {"prompt_ids": torch.tensor([[1, 2], [1, 2]]), "prompt_mask": torch.ones(2, 2, dtype=torch.long),
               "completion_ids": torch.tensor([[5, 9, 9], [6, 7, 9]]),
               "completion_mask": torch.tensor([[1, 0, 0], [1, 1, 0]]),
               "old_per_token_logps": torch.full((2, 3), -1.0), "advantages": torch.tensor([1.0, -1.0]),
               "num_items_in_batch": torch.tensor(3)}
    round_b = {"prompt_ids": torch.tensor([[3, 4, 4], [3, 4, 4]]), "prompt_mask": torch.ones(2, 3, dtype=torch.long),
               "completion_ids": torch.tensor([[8], [8]]), "completion_mask": torch.tensor([[1], [1]]),
               "old_per_token_logps": torch.full((2, 1), -2.0), "advantages": torch.tensor([0.5, -0.5]),
               "num_items_in_batch": torch.tensor(2)}
    groups = split_groups(round_a, 2) + split_groups(round_b, 2)
    merged = merge_groups(groups, pad)
    assert merged["prompt_ids"].tolist() == [[9, 1, 2], [9, 1, 2], [3, 4, 4], [3, 4, 4]]
    assert merged["prompt_mask"].tolist() == [[0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]]
    assert merged["completion_ids"].tolist() == [[5, 9, 9], [6, 7, 9], [8, 9, 9], [8, 9, 9]]
    assert merged["completion_mask"].tolist() == [[1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 0, 0]]
    assert merged["old_per_token_logps"][2:].tolist() == [[-2.0, 0.0, 0.0]] * 2
    assert merged["advantages"].tolist() == [1.0, -1.0, 0.5, -0.5] and "num_items_in_batch" not in merged
    assert masked(groups[0])["completion_mask"].sum() == 0 and groups[0]["completion_mask"].sum() == 3


def test_split_rejects_fields_it_cannot_repad():
    with pytest.raises(NotImplementedError, match="pixel_values"):
        split_groups({"prompt_ids": torch.zeros(2, 1), "pixel_values": torch.zeros(2, 3)}, 2)


def test_refill_stream_shards_one_global_order_in_whole_groups():
    dataset = [{"row_id": i} for i in range(10)]
    ranks = [RefillStream(dataset, num_generations=2, rows=4, num_processes=2, rank=r, seed=3) for r in (0, 1)]
    seen = []
    for _ in range(4):  # 2 global batches of 4 prompts per epoch of 10 (the rest dropped), so 2 epochs
        parts = [[row["row_id"] for row in stream.next_batch()] for stream in ranks]
        for part in parts:
            assert part[0::2] == part[1::2], "each prompt repeated G times in a row"
        seen.append(parts[0][0::2] + parts[1][0::2])
    assert all(len(set(batch)) == 4 for batch in seen)
    assert len(set(seen[0] + seen[1])) == 8, "one epoch draws without replacement"
    assert seen[:2] != seen[2:], "the next epoch reshuffles"
    with pytest.raises(ValueError, match="only 3"):
        RefillStream(dataset[:3], num_generations=2, rows=4, num_processes=2, rank=0, seed=0)


# --- budget -------------------------------------------------------------------------------------------------------


def test_budget_counts_and_completions_left():
    budget = Budget("prompts", 5, num_generations=4)
    budget.spent.add_round([1, 2], completions=8, tokens=30, refill=False)
    assert budget.completions_left() == 12 and not budget.exhausted()
    budget.spent.add_round([7, 8, 9], completions=12, tokens=40, refill=True)
    assert budget.completions_left() == 0 and budget.exhausted()
    summary = budget.record()["spent"]
    assert summary["refill_completions"] == 12 and summary["refill_completion_overhead"] == 0.6
    assert summary["main_prompt_order"]["count"] == 2 and summary["refill_prompt_order"]["count"] == 3
    assert Budget("tokens", 100).completions_left() is None and Budget("steps", None).exhausted() is False


# --- config -------------------------------------------------------------------------------------------------------


def test_config_defaults_follow_dapo_and_the_hardware():
    config = _config()
    assert (config.loss_type, config.beta, config.epsilon_high, config.lr_scheduler_type) == ("dapo", 0.0, 0.28,
                                                                                              "constant")
    if not torch.cuda.is_available():
        assert not config.bf16 and not config.activation_checkpointing and config.backend == "hf"


@pytest.mark.parametrize(("unit", "amount", "max_steps"), [("steps", 5, 5), ("completions", 20, 3),
                                                           ("prompts", 5, 3), ("tokens", 100, 13)])
def test_budget_sets_an_upper_bound_on_steps(unit, amount, max_steps):
    config = replace_config(_config(budget_unit=unit, budget=amount), seed=3)  # a copy re-validates alike
    assert config.max_steps == max_steps == (amount if unit == "steps" else math.ceil(
        (amount * (4 if unit == "prompts" else 1)) / 8))


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(budget_unit="completions", budget=10), "multiple of 4"),
    (dict(budget_unit="completions", budget=12, max_steps=3), "either max_steps or"),
    (dict(budget_unit="hours", budget=1), "budget_unit"),
    (dict(loss_type="ppo"), "grpo, dr_grpo, dapo, bnpo, cispo, sapo, luspo, vespo"),
    (dict(importance_sampling_level="seq"), "importance_sampling_level"),
    (dict(validation_benchmarks="gsm8k"), "validation_steps > 0"),
    (dict(gradient_accumulation_steps=2, steps_per_generation=1, budget_unit="completions", budget=8),
     "must be a multiple of 16"),
    (dict(gradient_accumulation_steps=3, steps_per_generation=2, budget_unit="completions", budget=48),
     "spans several generation rounds"),
    (dict(gradient_accumulation_steps=2, steps_per_generation=1, budget_unit="tokens", budget=400),
     "spans several generation rounds"),
    (dict(checkpoint_choice="best"), "checkpoint_choice=best picks the best validation step"),
    (dict(checkpoint_choice="last"), "final or best"),
    (dict(dynamic_sampling=True, scale_rewards="batch"), "scale_rewards=batch with dynamic_sampling"),
    (dict(dynamic_sampling=True, multi_objective_aggregation="normalize_then_sum"), "use sum_then_normalize"),
    (dict(overlong_buffer=16), "overlong_buffer"),
    (dict(rewards=["math_accuracy", "soft_overlong"]), "overlong_buffer > 0"),
])
def test_config_rejects_what_cannot_run(overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(**overrides)


def test_a_budget_refuses_groups_split_across_processes(monkeypatch):
    """2 processes x 2 rows with G=4: TRL accepts it (the global batch is one group), but each process would hold
    half a group, which a budget would count twice and could cut in half."""
    monkeypatch.setattr(PriftRLConfig, "world_size", property(lambda self: 2))
    assert _config(per_device_train_batch_size=2).generation_batch_size == 4
    with pytest.raises(ValueError, match="a budget counts and cuts whole prompt groups per process"):
        _config(per_device_train_batch_size=2, budget_unit="prompts", budget=4)


def test_gradient_accumulation_over_several_rounds_buys_whole_steps():
    config = _config(gradient_accumulation_steps=2, steps_per_generation=1, budget_unit="completions", budget=32)
    assert config.max_steps == 2  # 4 rounds of 8, two per optimizer step


def test_batch_scaling_and_every_trl_loss_are_accepted_where_they_compose():
    assert _config(scale_rewards="batch").scale_rewards == "batch"  # without dynamic sampling: nothing is dropped
    assert _config(multi_objective_aggregation="normalize_then_sum", dynamic_sampling=False)
    for loss in ("cispo", "sapo", "luspo", "vespo"):
        assert _config(loss_type=loss, dynamic_sampling=True).loss_type == loss


def test_the_default_overlong_weight_keeps_dapo_s_strength_relative_to_accuracy():
    """DAPO: accuracy +1/-1 (span 2), overlong penalty down to -1 at weight 1; prift: accuracy 1/0 (span 1), so
    the penalty's full swing must be half the accuracy span, as in DAPO."""
    config = _config(rewards=["math_accuracy"], overlong_buffer=4)
    accuracy_span, penalty_swing = config.reward_weights[0] * (1 - 0), config.reward_weights[1] * (0 - -1)
    assert penalty_swing / accuracy_span == (1 * 1) / (1 - -1)


def test_overlong_buffer_adds_the_soft_overlong_reward_once():
    config = _config(rewards=["math_accuracy"], reward_weights=[2.0], overlong_buffer=4, overlong_weight=0.5)
    assert config.rewards == ["math_accuracy", "soft_overlong"] and config.reward_weights == [2.0, 0.5]
    assert dict(config.reward_specs())["soft_overlong"] == {"max_completion_len": 16, "soft_punish_cache": 4}
    again = replace_config(config, seed=1)  # what a recipe pipeline does to derive per-run configs
    assert (again.rewards, again.reward_weights, again.seed) == (config.rewards, config.reward_weights, 1)
    listed = _config(rewards=["math_accuracy", "soft_overlong"], overlong_buffer=4)
    assert listed.rewards == ["math_accuracy", "soft_overlong"] and listed.reward_weights is None


def test_backend_choice():
    assert resolve_backend("hf") == "hf"
    assert resolve_backend("auto") == next(n for n, missing in BACKENDS.items() if missing() is None)
    if BACKENDS["vllm"]() is not None:
        with pytest.raises(ValueError, match="backend='vllm' cannot run here"):
            _config(backend="vllm")
    with pytest.raises(ValueError, match="unknown value 'sglang'"):
        resolve_backend("sglang")


def test_cli_reports_bad_options_without_traceback(capsys):
    assert prift_main(["rl", "--budget_unit", "hours", "--budget", "3", "--output_dir", "/tmp/x"]) == 2
    err = capsys.readouterr().err
    assert "prift rl: error:" in err and "budget_unit" in err and "Traceback" not in err


# --- data ---------------------------------------------------------------------------------------------------------


def test_builtin_sources_carry_their_gold_fields():
    gsm8k, info = load_rl_dataset("recipes/data/gsm8k_train_sample.jsonl", max_samples=2)
    assert info["format"] == "gsm8k" and gsm8k[0]["answer"] == "72" and gsm8k[1]["row_id"] == 1
    assert gsm8k[0]["prompt"][0]["role"] == "user" and "\\boxed{}" in gsm8k[0]["prompt"][0]["content"]
    plain, _ = load_rl_dataset("recipes/data/gsm8k_train_sample.jsonl", max_samples=1, chat_template=False,
                               instruction="")
    assert isinstance(plain[0]["prompt"], str) and plain[0]["prompt"].endswith("April and May?")


def test_mbpp_rows_use_the_standard_train_split(tmp_path, write_jsonl):
    rows = [{"task_id": t, "text": f"task {t}", "test_list": [f"assert f({t}) == {t}"], "test_setup_code": ""}
            for t in (5, 600, 601, 974)]
    path = write_jsonl(tmp_path / "mbpp_rows.jsonl", rows)
    train, info = load_rl_dataset(str(path), fmt="mbpp")
    assert info["format"] == "mbpp" and [r["tests"] for r in train] == ["assert f(601) == 601", "assert f(974) == 974"]
    with pytest.raises(DatasetError, match="empty 'test_list'"):
        load_rl_dataset(str(write_jsonl(tmp_path / "bad.jsonl", [{**rows[2], "test_list": []}])), fmt="mbpp")
    with pytest.raises(DatasetError, match="no split 'dev'"):
        load_rl_dataset("mbpp", split="dev")
