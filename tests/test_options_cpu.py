"""One name for one thing in every subcommand (docs/options.md): the shared options exist under the same name and
type wherever the concept does, the old names still work (saying their new name), and `--help` lists the
registries' current contents."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from prift.core.config import parse_config
from prift.eval.config import EvalConfig
from prift.rl.config import PriftRLConfig
from prift.sft.config import PriftSFTConfig

CONFIGS = {"sft": PriftSFTConfig, "rl": PriftRLConfig, "eval": EvalConfig}
SHARED = {  # name -> subcommands that have the concept
    "model_name_or_path": ("sft", "rl", "eval"), "dtype": ("sft", "rl", "eval"),
    "attn_implementation": ("sft", "rl", "eval"), "data_dir": ("sft", "rl", "eval"),
    "max_samples": ("sft", "rl", "eval"), "use_chat_template": ("sft", "rl", "eval"),
    "output_dir": ("sft", "rl", "eval"), "resume": ("sft", "rl", "eval"), "seed": ("sft", "rl", "eval"),
    "dataset": ("sft", "rl"), "dataset_split": ("sft", "rl"), "dataset_format": ("sft", "rl"),
    "backend": ("rl", "eval"), "verbose": ("sft", "rl"),
}


@pytest.fixture(autouse=True)
def _fresh_notes(monkeypatch):
    """Each deprecated name is noted once per process: start every test with none noted yet."""
    import prift.core.config

    monkeypatch.setattr(prift.core.config, "_SAID", set())


def _fields(config_type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(config_type)}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_a_shared_option_has_one_name_in_every_subcommand(name):
    for command in SHARED[name]:
        assert name in _fields(CONFIGS[command]), f"prift {command} has no --{name}"
    old_names = {old for config in CONFIGS.values() for old in getattr(config, "renamed_options", {})}
    assert name not in old_names


def test_the_dtype_choices_are_the_same_everywhere():
    hints = {command: typing.get_type_hints(config)["dtype"] for command, config in CONFIGS.items()}
    assert len({typing.get_args(h) for h in hints.values()}) == 1 and "bfloat16" in typing.get_args(hints["sft"])


def test_old_eval_flags_still_work_and_say_their_new_names(capsys):
    config = parse_config(EvalConfig, ["--model", "m", "--limit", "3", "--chat_template", "off", "--overwrite",
                                       "--vllm_max_model_len=512"], prog="prift eval")
    assert (config.model_name_or_path, config.max_samples, config.use_chat_template, config.resume,
            config.vllm_max_model_length) == ("m", 3, "false", False, 512)
    err = capsys.readouterr().err
    assert all(f"use '--{new}" in err for new in ("model_name_or_path", "max_samples", "use_chat_template",
                                                    "resume", "vllm_max_model_length"))
    assert parse_config(EvalConfig, ["--overwrite", "false"], prog="prift eval").resume is True


def test_old_names_in_a_yaml_file_and_a_recipe_still_work(tmp_path, capsys):
    from prift.recipes.recipe import load_recipe

    file = tmp_path / "eval.yaml"
    file.write_text("limit: 2\noverwrite: true\n")
    config = parse_config(EvalConfig, ["--config", str(file)], prog="prift eval")
    assert config.max_samples == 2 and config.resume is False
    data = tmp_path / "arith.jsonl"
    data.write_text('{"question": "1+1", "answer": "2"}\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\nbase_model: smollm2-135m-instruct\nvariants: [nll]\nrl: null\n"
                      f"sft: {{dataset: gsm8k, dataset_adapter: gsm8k}}\n"
                      f"eval: {{benchmarks: 'a={data}', limit: 1}}\n")
    loaded = load_recipe(recipe)
    assert loaded.sft["dataset_format"] == "gsm8k" and loaded.eval["max_samples"] == 1
    assert "use 'dataset_format'" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "names"), [
    ("sft", lambda: __import__("prift.sft.methods", fromlist=["METHODS"]).METHODS),
    ("sft", lambda: __import__("prift.sft.priorities", fromlist=["RULES"]).RULES),
    ("rl", lambda: __import__("prift.rewards.registry", fromlist=["reward_names"]).reward_names()),
    ("eval", lambda: __import__("prift.eval.benchmarks", fromlist=["benchmark_names"]).benchmark_names()),
])
def test_help_lists_every_registered_name(command, names, capsys):
    with pytest.raises(SystemExit):
        parse_config(CONFIGS[command], ["--help"], prog=f"prift {command}")
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    missing = [name for name in names() if name not in text]
    assert not missing, f"prift {command} --help does not list {missing}"
