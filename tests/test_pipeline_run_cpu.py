"""`prift run` end to end on a tiny model: the whole chain and its report, a rerun that does no work, a changed RL
setting that reruns only RL and its evals, a kill in the middle of RL (a real SIGKILL of a `prift run` process)
whose rerun finishes with the results of an uninterrupted run, and a failing stage recorded while independent
stages still run.

The RL rewards include `kill_switch` (by dotted path, as a user's reward would be): the parity of the completion's
token-id sum (so a tiny model's groups have reward variance and RL moves the weights), and it SIGKILLs its own
process once the step in $PRIFT_TEST_KILL_AT_STEP is reached, so both runs share one recipe and fingerprint.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from prift import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KILL_ENV = "PRIFT_TEST_KILL_AT_STEP"
STAGES = ["eval/base", "sft/nll", "sft/prift_mass", "eval/sft-nll", "eval/sft-prift_mass", "diagnostics", "rl/nll",
          "rl/prift_mass", "rl/base", "eval/rl-nll", "eval/rl-prift_mass", "eval/rl-base"]


def kill_switch(prompts, completions, completion_ids=(), trainer_state=None, **kwargs):
    step = os.environ.get(KILL_ENV)
    if step and trainer_state is not None and trainer_state.global_step >= int(step):
        os.kill(os.getpid(), signal.SIGKILL)
    return [float(sum(ids) % 2) for ids in completion_ids]


RECIPE = """
name: tiny
base_model: {model}
seed: 3
sft: {{dataset: {data}/arith/sft.jsonl, max_samples: 4, max_length: 128, per_device_train_batch_size: 2, max_steps: 2,
      learning_rate: 1.0e-3, save_strategy: "no", report_to: none, disable_tqdm: true, dtype: float32}}
variants: [nll, prift_mass]
rl: {{dataset: {data}/arith/rl.jsonl, rewards: [math_accuracy, "{module}:kill_switch"], num_generations: 2,
     per_device_train_batch_size: 4, max_completion_length: 8, temperature: 1.0, learning_rate: {rl_lr},
     budget: 6, budget_unit: prompts, save_strategy: steps, save_steps: 1, disable_tqdm: true, dtype: float32,
     validation_benchmarks: "arith={data}/arith/test.jsonl", validation_steps: 2, validation_max_samples: 2,
     validation_max_tokens: 8}}
rl_from_base: true
eval: {{benchmarks: "arith={data}/arith/test.jsonl", max_samples: 4, max_tokens: 8, batch_size: 4, progress: false}}
diagnostics: {{dataset: {data}/arith/test.jsonl, samples: 3}}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private cache root for this module (and its subprocesses)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRIFT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.delenv(KILL_ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def write_recipe(tiny_checkpoint, tmp_path_factory):
    from prift.recipes.arithmetic import TASKS
    data_dir = TASKS["arith"].data_dir

    folder = tmp_path_factory.mktemp("recipes")

    def write(name: str = "tiny.yaml", rl_lr: str = "1.0e-3") -> Path:
        path = folder / name
        path.write_text(RECIPE.format(model=tiny_checkpoint, data=data_dir().parent, module=__name__, rl_lr=rl_lr))
        return path

    return write


def summary(run: Path) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads((run / "pipeline.json").read_text())["stages"]}


def weights(run: Path, stage: str) -> dict[str, torch.Tensor]:
    return load_file(run / stage / "model.safetensors")


@pytest.fixture(scope="module")
def full_run(env, write_recipe, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "full"
    assert main(["run", str(write_recipe()), "--output_dir", str(run)]) == 0
    return run


def test_whole_chain_writes_every_stage_and_a_report_with_all_of_them(full_run):
    stages = summary(full_run)
    assert list(stages) == STAGES
    assert {s["status"] for s in stages.values()} == {"done"}
    html = (full_run / "report" / "report.html").read_text()
    for stage in STAGES:
        assert stage in html
    for section in ("RL prompt order: identical for all 3 inits", "pre-RL", "post-RL", "RL gain", "RL budget spent", "Fig 1a", "Fig 3a", "Fig 5", "RL reward curves",
                    "pass@k curves: arith", "6/6 prompts", "Fig 1a over training", "Fig 1b over training",
                    "Held-out validation during RL", "arith: paired differences", "prift_mass − nll"):
        assert section in html, section
    assert html.count("data:image/png;base64,") >= 7
    diag = json.loads((full_run / "diagnostics" / "diagnostics.json").read_text())
    assert set(diag["checkpoints"]) == {"nll", "prift_mass"}
    assert {"m_t nll", "m_t prift_mass", "p_ref"} <= set(diag["example"]["rows"])


def test_rerun_does_no_work_and_a_changed_rl_setting_reruns_only_rl_and_its_evals(full_run, write_recipe, tmp_path):
    run = tmp_path / "moved"
    shutil.copytree(full_run, run)  # a moved run folder keeps its fingerprints
    before = {name: (run / name / "stage.json").stat().st_mtime_ns for name in STAGES}
    assert main(["run", str(write_recipe()), "--output_dir", str(run)]) == 0
    assert {s["status"] for s in summary(run).values()} == {"skipped"}
    assert {name: (run / name / "stage.json").stat().st_mtime_ns for name in STAGES} == before

    assert main(["run", str(write_recipe("changed.yaml", rl_lr="2.0e-3")), "--output_dir", str(run)]) == 0
    rerun = {name for name, s in summary(run).items() if s["status"] == "done"}
    assert rerun == {"rl/nll", "rl/prift_mass", "rl/base", "eval/rl-nll", "eval/rl-prift_mass", "eval/rl-base"}
    assert all(summary(run)[name]["action"] == "rerun" for name in rerun)
    assert not torch.equal(weights(run, "rl/nll")["lm_head.weight"], weights(full_run, "rl/nll")["lm_head.weight"])


def test_kill_in_the_middle_of_rl_then_rerun_matches_an_uninterrupted_run(full_run, write_recipe, tmp_path):
    run = tmp_path / "killed"
    tests = str(Path(__file__).parent)
    child_env = {**os.environ, KILL_ENV: "1", "OMP_NUM_THREADS": "1",
                 "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "prift", "run", str(write_recipe()), "--output_dir", str(run)],
                          env=child_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    state = json.loads((run / "rl" / "nll" / "stage.json").read_text())
    assert state["status"] == "running" and (run / "rl" / "nll" / "checkpoint-1").is_dir()
    assert not (run / "rl" / "nll" / "run.json").exists()

    assert main(["run", str(write_recipe()), "--output_dir", str(run)]) == 0
    stages = summary(run)
    assert stages["rl/nll"]["action"] == "resume" and stages["sft/nll"]["status"] == "skipped"
    for stage in ("rl/nll", "rl/prift_mass", "rl/base"):
        full, resumed = weights(full_run, stage), weights(run, stage)
        assert all(torch.equal(full[k], resumed[k]) for k in full), stage
        spent = [json.loads((r / stage / "run.json").read_text())["budget"]["spent"] for r in (full_run, run)]
        assert {k: v for k, v in spent[0].items() if k != "wall_time_s"} == \
               {k: v for k, v in spent[1].items() if k != "wall_time_s"}
        validation = [json.loads((r / stage / "run.json").read_text())["validation"] for r in (full_run, run)]
        assert validation[0] == validation[1] and [h["step"] for h in validation[0]["history"]] == [2, 3]
    for stage in ("eval/rl-nll", "eval/rl-base"):
        results = [json.loads((r / stage / "results.json").read_text())["results"]["arith"]["metrics"]
                   for r in (full_run, run)]
        assert results[0] == results[1]


def test_a_failing_stage_is_recorded_and_independent_stages_still_run(env, write_recipe, tmp_path, capsys):
    recipe = write_recipe("broken.yaml")
    text = recipe.read_text().replace("variants: [nll, prift_mass]",
                                      f"variants: [nll, {{name: broken, method: dft, dataset: {tmp_path}/none.jsonl}}]")
    recipe.write_text(text.replace("rl_from_base: true", "rl_from_base: false"))
    assert main(["run", str(recipe), "--output_dir", str(tmp_path / "run")]) == 1
    stages = summary(tmp_path / "run")
    assert stages["sft/broken"]["status"] == "failed" and "none.jsonl" in stages["sft/broken"]["error"]
    assert {stages[n]["status"] for n in ("eval/sft-broken", "rl/broken", "eval/rl-broken", "diagnostics")} == \
           {"blocked"}
    assert {stages[n]["status"] for n in ("eval/base", "sft/nll", "eval/sft-nll", "rl/nll", "eval/rl-nll")} == \
           {"done"}
    assert "sft/broken" in capsys.readouterr().out
    assert "failed" in (tmp_path / "run" / "report" / "report.html").read_text()


def test_report_gives_each_init_s_share_of_rl_steps_without_reward_variance(full_run):
    md = (full_run / "report" / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| init | pre-RL |")).split(" | ")
    column = header.index("RL steps without reward variance")
    for init in ("nll", "prift_mass", "base"):
        history = json.loads((full_run / "rl" / init / "run.json").read_text())["log_history"]
        shares = [h["frac_reward_zero_std"] for h in history if "frac_reward_zero_std" in h]
        row = next(line for line in md.splitlines() if line.startswith(f"| {init} | ")).split(" | ")
        assert row[column] == f"{100 * sum(shares) / len(shares):.0f}%", (init, row)
    assert "## Resolved differences\n\n- " in md  # sentences, listed
