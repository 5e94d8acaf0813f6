"""Recipe validation: every bad recipe fails with a clear error (file, key, suggestion) before any work starts (no
output folder is created), the budget check rejects inits that would get different RL budgets, and the packaged
recipes (the CPU demo and the paper reproductions) validate and print their plan with `--dry-run`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from prift import main
from prift.core.config import ConfigError
from prift.recipes.arithmetic import TASKS
from prift.recipes.recipe import load_recipe

data_dir = TASKS["arith"].data_dir

BASE = {
    "name": "check",
    "sft": {"dataset": "rows.jsonl", "max_steps": 1, "learning_rate": "1e-5"},
    "variants": ["nll", "prift_mass"],
    "rl": {"dataset": "prompts.jsonl", "budget": 4, "budget_unit": "prompts", "num_generations": 2,
           "per_device_train_batch_size": 4},
    "eval": {"benchmarks": f"arith={data_dir() / 'test.jsonl'}", "max_samples": 2},
}


@pytest.fixture
def recipe(tmp_path, tiny_checkpoint):
    """`recipe(**changes) -> path`: BASE with `changes` merged (None deletes a key), written as YAML."""

    def write(**changes) -> Path:
        data = {**BASE, "base_model": str(tiny_checkpoint), **changes}
        data = {k: v for k, v in data.items() if v is not None}
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


def run_cli(path: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, str, str]:
    rc = main(["run", str(path), "--output_dir", str(tmp_path / "run"), *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_a_valid_recipe_builds_every_stage_config(recipe):
    loaded = load_recipe(recipe())
    assert [v.name for v in loaded.variants] == ["nll", "prift_mass"]
    config = loaded.sft_config(loaded.variants[1], "out")
    assert config.learning_rate == 1e-5 and config.method == "prift_mass" and config.seed == loaded.seed
    assert loaded.rl_inits() == ["nll", "prift_mass"]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"varaints": ["nll"]}, ["unknown key 'varaints'", "did you mean variants"]),
    ({"sft": {"learnng_rate": 1e-5}}, ["sft: unknown key 'learnng_rate'", "learning_rate"]),
    ({"sft": {"output_dir": "x"}}, ["sft: key 'output_dir' is set by the pipeline"]),
    ({"variants": ["nll", "prift_mas"]}, ["unknown method preset 'prift_mas'", "prift_mass"]),
    ({"variants": [{"name": "a", "method": "dft", "rl": {"budjet": 3}}]}, ["variant 'a': rl: unknown key 'budjet'"]),
    ({"variants": ["nll", "nll"]}, ["unique", "nll"]),
    ({"base_model": "./no-such-model"}, ["base_model", "no-such-model"]),
    ({"base_model": None}, ["missing required key 'base_model'"]),
    ({"eval": {"benchmarks": "gsm9k"}}, ["eval", "unknown benchmark 'gsm9k'"]),
    ({"eval_overrides": {"gsm8k": {"max_samples": 2}}}, ["eval_overrides: 'gsm8k' is not in eval.benchmarks"]),
    ({"unavailable_benchmarks": ["math500"]}, ["prift can evaluate", "math500"]),
    ({"unavailable_benchmarks": ["minerva", "amc23"]}, ["prift can evaluate", "'minerva', 'amc23'"]),
    ({"eval": {"benchmarks": "gsm8k,mine=./missing.jsonl"}}, ["eval: benchmarks", "'mine=", "no such file", "missing.jsonl"]),
    ({"eval": {"benchmarks": "gsm8k=./rows.jsonl"}}, ["eval: benchmarks", "'gsm8k' is a built-in benchmark"]),
    ({"rl": {**BASE["rl"], "budget": None}}, ["rl.budget must be set"]),
    ({"variants": ["nll", {"name": "greedy", "method": "dft", "rl": {"budget": 8}}]},
     ["'nll' and 'greedy' would get different budgets", "budget: 4 vs 8"]),
    ({"variants": ["nll", {"name": "long", "method": "dft", "rl": {"max_completion_length": 64}}]},
     ["different budgets", "max_completion_length"]),
])
def test_bad_recipes_fail_before_any_work_with_a_clear_error(recipe, tmp_path, capsys, changes, expected):
    path = recipe(**changes)
    rc, _, err = run_cli(path, tmp_path, capsys)
    assert rc == 2
    assert str(path) in err
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError):
        load_recipe(path)


def test_paper_suite_and_local_file_benchmarks_resolve_against_the_recipe(recipe, tmp_path):
    (tmp_path / "mine.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n')
    loaded = load_recipe(recipe(eval={"benchmarks": "minerva,olympiadbench,aime24,amc23,mine=./mine.jsonl"},
                                eval_overrides={"mine": {"max_samples": 1}}))
    configs = loaded.eval_config("model", tmp_path / "out").configs
    assert list(configs) == ["minerva", "olympiadbench", "aime24", "amc23", "mine"]
    assert configs["mine"].benchmarks == f"mine={tmp_path / 'mine.jsonl'}" and configs["mine"].max_samples == 1
    assert configs["mine"].output_dir == str(tmp_path / "out" / "mine")


def test_dry_run_prints_the_plan_and_creates_nothing(recipe, tmp_path, capsys):
    rc, out, _ = run_cli(recipe(rl_from_base=True), tmp_path, capsys, "--dry-run")
    assert rc == 0
    for stage in ("eval/base", "sft/nll", "sft/prift_mass", "eval/sft-nll", "rl/nll", "rl/base", "eval/rl-base"):
        assert f"run     {stage}" in out
    assert "one budget of 4 prompts for each of nll, prift_mass, base" in out
    assert not (tmp_path / "run").exists()


def _packaged(folder: str) -> list[Path]:
    return sorted(Path(str(resources.files("prift.recipes") / folder)).glob("*.yaml"))


@pytest.mark.parametrize("path", _packaged("paper") + _packaged("demo") + _packaged("ablations")
                         + _packaged("ablations/cpu"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_packaged_recipes_validate_and_print_their_plan(path, tmp_path, capsys):
    rc, out, err = run_cli(path, tmp_path, capsys, "--dry-run")
    assert rc == 0, err
    assert "[prift] plan" in out and ("sft/prift_mass" in out or "ablations" in path.parts)
    if path.parent.name == "paper" and "math" in path.stem:  # the paper's whole math suite, nothing left out
        assert all(f"eval {b}:" in out for b in ("math500", "minerva", "olympiadbench", "aime24", "amc23"))
        assert "NOT EVALUATED" not in out


def test_packaged_recipe_folders_are_not_empty():
    assert len(_packaged("paper")) >= 5 and len(_packaged("demo")) == 2 and len(_packaged("accelerate")) == 4
    gpu = {path.stem.removeprefix("math_qwen25_math_1p5b_") for path in _packaged("ablations")}
    assert len(gpu) >= 5 and gpu == {path.stem for path in _packaged("ablations/cpu")}  # each has a CPU twin
