"""`prift run` with a recipe `launch` section: an SFT stage launched as 2 gloo processes by `accelerate launch`
equals the in-process stage with the same global batch; a failing launcher is a recorded stage failure; the
launcher is part of the stage fingerprint; bad `launch` / `published` sections are errors before any work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from launch import free_port
from safetensors.torch import load_file

from prift import main
from prift.core.config import ConfigError
from prift.recipes.pipeline import build_stages, plan
from prift.recipes.recipe import load_recipe

ACCELERATE = Path(sys.executable).with_name("accelerate")
# the ranks meet on a free port (not accelerate's 29500), so launches running at the same time do not collide
TWO_PROCESSES = f"accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --main_process_port {free_port()} " \
                "--mixed_precision no --dynamo_backend no"
RECIPE = """
name: launched
base_model: {model}
seed: 5
sft: {{dataset: {data}, max_length: 128, per_device_train_batch_size: {per_device}, max_steps: 2,
      learning_rate: 1.0e-3, lr_scheduler_type: constant, save_strategy: "no", report_to: none, disable_tqdm: true,
      dtype: float32, dataloader_pin_memory: false}}
variants: [prift_mass]
rl: null
eval: {{benchmarks: gsm8k, data_dir: {eval_data}, max_samples: 2, max_tokens: 4, batch_size: 2, progress: false}}
{extra}
"""


@pytest.fixture
def write_recipe(tmp_path, tiny_checkpoint, arith_rows, write_jsonl, monkeypatch):
    from prift.recipes.arithmetic import TASKS
    data_dir = TASKS["arith"].data_dir

    monkeypatch.setenv("PRIFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a CPU test wherever it runs
    data = write_jsonl(tmp_path / "sft.jsonl", [*arith_rows, *arith_rows[:2]])  # 8 rows

    def write(name: str, per_device: int = 4, extra: str = "") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(RECIPE.format(model=tiny_checkpoint, data=data, per_device=per_device,
                                      eval_data=data_dir().parent, extra=extra))
        return path

    return write


def statuses(run: Path) -> dict[str, str]:
    return {s["name"]: s["status"] for s in json.loads((run / "pipeline.json").read_text())["stages"]}


@pytest.mark.slow
@pytest.mark.skipif(not ACCELERATE.is_file(), reason="accelerate's launcher is not installed")
def test_launched_two_process_sft_stage_equals_the_in_process_stage(write_recipe, tmp_path, tiny_checkpoint):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["run", str(write_recipe("in_process")), "--output_dir", str(one)]) == 0
    launched = write_recipe("launched", per_device=2, extra=f"launch: {{sft: {TWO_PROCESSES}}}")
    assert main(["run", str(launched), "--output_dir", str(two)]) == 0
    assert set(statuses(two).values()) == {"done"}

    config = (two / "sft/prift_mass/stage_config.yaml").read_text()
    assert "per_device_train_batch_size: 2" in config and "method: prift_mass" in config
    record = json.loads((two / "sft/prift_mass/run.json").read_text())
    assert record["world_size"] == 2

    a, b = (load_file(str(run / "sft/prift_mass/model.safetensors")) for run in (one, two))
    start = load_file(str(tiny_checkpoint / "model.safetensors"))
    assert max((a[k] - start[k]).abs().max().item() for k in a) > 1e-4  # it trained: equality is not trivial
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=2e-6, rtol=1e-5)

    assert main(["run", str(launched), "--output_dir", str(two)]) == 0  # rerun: nothing launched again
    assert set(statuses(two).values()) == {"skipped"}


def test_a_failing_launcher_is_a_recorded_failure_and_independent_stages_still_run(write_recipe, tmp_path):
    run = tmp_path / "run"
    recipe = write_recipe("failing", extra=f"launch: {{sft: {sys.executable} -c 'import sys; sys.exit(3)'}}")
    assert main(["run", str(recipe), "--output_dir", str(run)]) == 1
    assert statuses(run) == {"eval/base": "done", "sft/prift_mass": "failed", "eval/sft-prift_mass": "blocked"}
    stage = json.loads((run / "sft/prift_mass/stage.json").read_text())
    assert "exited with status 3" in stage["error"]


def test_the_launcher_is_part_of_the_fingerprint_and_is_shown_in_the_plan(write_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    plain = plan(build_stages(load_recipe(write_recipe("plain")), run), run)
    launched = plan(build_stages(load_recipe(write_recipe("launched", extra=f"launch: {{sft: {TWO_PROCESSES}}}")),
                                 run), run)
    fingerprints = [{s.name: s.fingerprint for s in stages} for stages in (plain, launched)]
    assert fingerprints[0]["eval/base"] == fingerprints[1]["eval/base"]
    assert fingerprints[0]["sft/prift_mass"] != fingerprints[1]["sft/prift_mass"]
    assert fingerprints[0]["eval/sft-prift_mass"] != fingerprints[1]["eval/sft-prift_mass"]  # depends on it
    recipe = write_recipe("shown", extra=f"launch: {{sft: {TWO_PROCESSES}}}")
    assert main(["run", str(recipe), "--output_dir", str(run), "--dry-run"]) == 0
    assert "via accelerate launch --multi_gpu" in capsys.readouterr().out


def test_launcher_file_arguments_resolve_against_the_recipe_folder(write_recipe, tmp_path):
    (tmp_path / "ddp.yaml").write_text("distributed_type: MULTI_GPU\n")
    recipe = load_recipe(write_recipe("files", extra="launch: {rl: accelerate launch --config_file ddp.yaml}"))
    assert recipe.launch == {"rl": ["accelerate", "launch", "--config_file", str((tmp_path / "ddp.yaml").resolve())]}


@pytest.mark.parametrize(("extra", "message"), [
    ("launch: {eval: accelerate launch}", "'eval' cannot be launched"),
    ("launch: {sft: ''}", "launch: sft: expected a command"),
    ("launch: [accelerate]", "expected a mapping of stage kind"),
    ("launch: {sft: no-such-launcher --num_processes 2}", "launcher 'no-such-launcher' is not on PATH"),
    ("launch: {rl: /no/such/torchrun}", "launcher '/no/such/torchrun' does not exist"),
    ("published: {scores: {dpo: {avg@16: 1.0}}}", "scores for ['dpo'], which are not variants"),
    ("published: {scores: {prift_mass: {avg@16: high}}}", "expected {METRIC: NUMBER}"),
    ("published: {table: 3}", "published: expected {source"),
])
def test_bad_launch_or_published_sections_fail_before_any_work(extra, message, write_recipe, tmp_path):
    recipe = write_recipe("bad", extra=extra)
    with pytest.raises(ConfigError, match="bad.yaml") as err:
        load_recipe(recipe, str(tmp_path / "run"))
    assert message in str(err.value)
    assert not (tmp_path / "run").exists()


def test_a_changed_launcher_config_file_reruns_the_stage(write_recipe, tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "ddp.yaml"
    config.write_text("num_processes: 2\n")
    recipe = write_recipe("files", extra="launch: {sft: accelerate launch --config_file ddp.yaml}")
    before = {s.name: s.fingerprint for s in plan(build_stages(load_recipe(recipe), run), run)}
    config.write_text("num_processes: 4\n")
    after = {s.name: s.fingerprint for s in plan(build_stages(load_recipe(recipe), run), run)}
    assert before["sft/prift_mass"] != after["sft/prift_mass"] and before["eval/base"] == after["eval/base"]
