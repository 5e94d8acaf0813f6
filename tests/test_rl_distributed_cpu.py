"""`prift rl` with dynamic sampling under `accelerate launch` with 2 CPU processes (gloo DDP), against a 1-process run
with the same global batch.

The reward (`rl_probe:prompt_reward`) depends on the prompt only, so both runs make the same keep/drop decisions
whatever they generate: they must consume the same prompts in the same order (main stream and refills) and spend
exactly the configured budget. The 2-process run must also finish (a rank-divergent refill decision would hang
TRL's collectives), write run.json once, and end with the same weights on both ranks.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from launch import accelerate_launch, needs_accelerate, run_command
from rl_probe import GROUP, prompt_value
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from prift import main

pytestmark = [needs_accelerate, pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

GLOBAL_ROWS = 16  # completions per generation round: 4 prompts x 4
BUDGET = 64  # completions, refills included


def _args(model: Path, data: Path, out: Path, per_device: int) -> list[str]:
    return ["rl", "--model_name_or_path", str(model), "--dataset", str(data), "--output_dir", str(out),
            "--rewards", "rl_probe:prompt_reward", "--num_generations", str(GROUP), "--max_completion_length", "6",
            "--per_device_train_batch_size", str(per_device), "--learning_rate", "1e-2", "--seed", "0",
            "--dynamic_sampling", "true", "--max_refill_rounds", "6", "--budget_unit", "completions",
            "--budget", str(BUDGET), "--save_strategy", "steps", "--save_steps", "1", "--disable_tqdm", "true",
            "--dataloader_pin_memory", "false"]


def _rounds(probe: Path, ranks: int) -> list[dict]:
    """Every scored round in order, in global row order: step, row ids, rewards and each rank's varying groups."""
    logs = [[json.loads(line) for line in (probe / f"rewards-rank{r}.jsonl").read_text().splitlines()]
            for r in range(ranks)]
    assert len({len(log) for log in logs}) == 1, "the ranks scored different numbers of rounds"
    rounds = []
    for parts in zip(*logs, strict=True):
        assert len({p["step"] for p in parts}) == 1
        varying = [sum(len(set(p["rewards"][i:i + GROUP])) > 1 for i in range(0, len(p["rewards"]), GROUP))
                   for p in parts]
        rounds.append({"step": parts[0]["step"], "row_id": [i for p in parts for i in p["row_id"]],
                       "rewards": [x for p in parts for x in p["rewards"]], "varying": varying})
    return rounds


def test_two_process_dynamic_sampling_run_matches_one_process(tmp_path, tiny_checkpoint, write_jsonl, monkeypatch):
    data = write_jsonl(tmp_path / "prompts.jsonl",
                       [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(24)])
    two, one = tmp_path / "two", tmp_path / "one"
    run_command(accelerate_launch(2, module="rl_probe") + _args(tiny_checkpoint, data, two, GLOBAL_ROWS // 2),
        tmp_path / "cache", timeout_s=240, PRIFT_PROBE_DIR=str(tmp_path / "probe-two"))
    monkeypatch.setenv("PRIFT_PROBE_DIR", str(tmp_path / "probe-one"))
    assert main(_args(tiny_checkpoint, data, one, GLOBAL_ROWS)) == 0

    # run.json once and budget.json once per checkpoint, by rank 0 only; exactly the configured budget spent
    assert [p.name for p in (tmp_path / "probe-two").glob("writes-*")] == ["writes-rank0.jsonl"]
    writes = [json.loads(line) for line in (tmp_path / "probe-two" / "writes-rank0.jsonl").read_text().splitlines()]
    record = {name: json.loads((out / "run.json").read_text()) for name, out in (("two", two), ("one", one))}
    spent = {name: r["budget"]["spent"] for name, r in record.items()}
    checkpoints = sorted(two.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert [w["file"] for w in writes] == ["budget.json"] * spent["two"]["steps"] + ["run.json"]
    assert len(checkpoints) == spent["two"]["steps"]
    last_saved = json.loads((checkpoints[-1] / "budget.json").read_text())
    for key in ("steps", "prompts", "completions", "tokens", "refill_completions"):
        assert last_saved[key] == spent["two"][key], key
    assert record["two"]["world_size"] == 2
    assert spent["two"]["completions"] == spent["one"]["completions"] == BUDGET
    assert record["two"]["budget"]["reached"]

    # the same prompts in the same order, and the same keep/drop decisions, as one process
    rounds = {"two": _rounds(tmp_path / "probe-two", 2), "one": _rounds(tmp_path / "probe-one", 1)}
    assert [r["row_id"] for r in rounds["two"]] == [r["row_id"] for r in rounds["one"]]
    assert [r["step"] for r in rounds["two"]] == [r["step"] for r in rounds["one"]]
    for key in ("main_prompt_order", "refill_prompt_order", "prompts", "refill_rounds", "steps"):
        assert spent["two"][key] == spent["one"][key], key
    per_step = defaultdict(list)
    for r in rounds["two"]:
        assert r["rewards"] == [prompt_value(i, k % GROUP) for k, i in enumerate(r["row_id"])]
        per_step[r["step"]].append(r)
    assert any(len(rs) > 1 for rs in per_step.values()), "no step refilled: dynamic sampling was not exercised"
    assert any(len(set(r["varying"])) > 1 for r in rounds["two"]), \
        "no round in which the ranks' group filters differed: the divergent case was not exercised"
    history = [h for h in record["two"]["log_history"] if "dynamic_sampling/groups_kept" in h]
    for h in history:
        target = GLOBAL_ROWS // GROUP
        step_rounds = per_step[h["step"] - 1]
        varying = sum(sum(r["varying"]) for r in step_rounds)
        assert h["dynamic_sampling/refill_rounds"] == len(step_rounds) - 1
        assert h["dynamic_sampling/groups_kept"] == min(varying, target)
        # refills stop as soon as the *global* batch holds enough varying groups (or the budget ends the step)
        assert sum(sum(r["varying"]) for r in step_rounds[:-1]) < target

    # DDP: both ranks hold the same weights, the saved checkpoint's; it loads and it trained
    rank0, rank1 = (load_file(str(tmp_path / "probe-two" / f"weights-rank{r}.safetensors")) for r in (0, 1))
    saved = load_file(str(two / "model.safetensors"))
    start = load_file(str(tiny_checkpoint / "model.safetensors"))
    assert rank0.keys() == rank1.keys() == saved.keys()
    for name in saved:
        assert torch.equal(rank0[name], rank1[name]) and torch.equal(rank0[name], saved[name]), name
    assert max((saved[k] - start[k]).abs().max().item() for k in saved) > 1e-4
    AutoModelForCausalLM.from_pretrained(two)
