"""Config and bad input: every mistake is a clear error naming the thing at fault, the CLI reports it without a
traceback, YAML and flags combine with the command line winning, and a failing run deletes nothing."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml
from trl import SFTConfig

from prift.core.config import ConfigError, parse_config
from prift.sft.config import PriftSFTConfig
from prift.sft.data import DatasetError, load_sft_dataset
from prift.sft.methods import METHODS
from prift.sft.priorities import RULES
from prift.sft.sources import SOURCES
from prift.sft.train import run_sft

PRIFT_FIELDS = [f for f in dataclasses.fields(PriftSFTConfig) if f.name not in {g.name for g in dataclasses.fields(SFTConfig)}]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _parse(argv):
    return parse_config(PriftSFTConfig, argv, prog="prift sft")


def _recipe(path, mapping):
    path.write_text(yaml.safe_dump(mapping))
    return path


def _main(argv):
    from prift.commands.sft import main

    return main(argv)


# --- presets, rules, sources ----------------------------------------------------------------------------------------


def test_unknown_method_names_the_valid_presets(tmp_path):
    with pytest.raises(ValueError, match=r"unknown method 'foo'") as err:
        PriftSFTConfig(method="foo", output_dir=str(tmp_path))
    assert all(name in str(err.value) for name in METHODS)
    with pytest.raises(ValueError, match="'bar'"):
        PriftSFTConfig(method="nll,bar", output_dir=str(tmp_path))  # every method of a list is checked


def test_unknown_rule_names_the_valid_rules(tmp_path):
    with pytest.raises(ValueError, match=r"unknown priority rule 'foo'") as err:
        PriftSFTConfig(method="nll", rule="foo", output_dir=str(tmp_path))
    assert all(name in str(err.value) for name in RULES)


def test_unknown_source_names_the_valid_sources(tmp_path):
    with pytest.raises(ValueError, match=r"unknown signal source 'frozen'") as err:
        PriftSFTConfig(method="dft", source="frozen", output_dir=str(tmp_path))
    assert all(name in str(err.value) for name in SOURCES)


@pytest.mark.parametrize(("key", "value", "named"), [
    ("method", "foo", "unknown method 'foo'"),
    ("rule", "foo", "unknown priority rule 'foo'"),
    ("divisor", "median", "divisor"),
    ("reference_mode", "remote", "reference_mode"),
])
def test_bad_values_in_a_recipe_name_file_and_thing(key, value, named, tmp_path):
    recipe = _recipe(tmp_path / "recipe.yaml", {key: value, "output_dir": str(tmp_path / "out")})
    with pytest.raises(ConfigError) as err:
        _parse(["--config", str(recipe)])
    assert str(recipe) in str(err.value) and named in str(err.value)


# --- YAML keys and value types ----------------------------------------------------------------------------------------


def test_unknown_yaml_key_names_file_and_key(tmp_path):
    recipe = _recipe(tmp_path / "recipe.yaml", {"learning_rat": 1e-4, "method": "nll"})
    with pytest.raises(ConfigError) as err:
        _parse(["--config", str(recipe)])
    message = str(err.value)
    assert str(recipe) in message and "'learning_rat'" in message
    assert "learning_rate" in message  # the closest valid key is suggested


def test_bad_value_type_names_the_key(tmp_path):
    recipe = _recipe(tmp_path / "recipe.yaml", {"learning_rate": "fast"})
    with pytest.raises(ConfigError, match="learning_rate") as err:
        _parse(["--config", str(recipe)])
    assert str(recipe) in str(err.value) and "fast" in str(err.value)
    with pytest.raises(ConfigError, match="max_steps"):
        _parse(["--max_steps", "three"])


def test_recipe_that_is_not_a_mapping(tmp_path):
    recipe = tmp_path / "list.yaml"
    recipe.write_text("- nll\n- dft\n")
    with pytest.raises(ConfigError, match=re.escape(str(recipe))):
        _parse(["--config", str(recipe)])
    with pytest.raises(ConfigError, match="does not exist"):
        _parse(["--config", str(tmp_path / "missing.yaml")])


# --- precedence -------------------------------------------------------------------------------------------------------


def test_command_line_overrides_recipe(tmp_path):
    recipe = _recipe(tmp_path / "recipe.yaml", {
        "learning_rate": 0.5, "method": "prift_mass", "rule_params": {"threshold": 0.4}, "use_chat_template": False,
        "output_dir": str(tmp_path / "out"), "max_steps": 7,
    })
    plain = _parse(["--config", str(recipe)])
    assert (plain.learning_rate, plain.method, plain.max_steps) == (0.5, "prift_mass", 7)
    assert plain.rule_params == {"threshold": 0.4} and plain.use_chat_template is False
    assert plain.resolved_method().params == {"threshold": 0.4}
    for argv in (["--config", str(recipe), "--learning_rate", "1e-3"],
                 ["--learning_rate", "1e-3", "--config", str(recipe)],
                 [f"--config={recipe}", "--learning_rate", "1e-3"]):
        config = _parse(argv)
        assert config.learning_rate == 1e-3, argv
        assert (config.method, config.max_steps) == ("prift_mass", 7), argv  # the rest still comes from the recipe


def test_abbreviated_config_flag_is_not_silently_ignored(tmp_path):
    recipe = _recipe(tmp_path / "recipe.yaml", {"learning_rate": 0.5})
    with pytest.raises(ConfigError, match="--config"):
        _parse(["--conf", str(recipe)])


# --- help -------------------------------------------------------------------------------------------------------------


def test_help_exits_zero_and_documents_every_prift_field(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    options = re.split(r"\n(?=  -)", text)  # one block per option
    assert len(PRIFT_FIELDS) >= 15
    for field in PRIFT_FIELDS:
        blocks = [b for b in options if re.match(rf"\s*--{field.name}\b", b)]
        assert len(blocks) == 1, f"--{field.name} is not in --help"
        help_text = field.metadata.get("help", "")
        assert len(help_text) > 20, f"{field.name} has no help text"
        body = " ".join(blocks[0].split())
        assert " ".join(help_text.split()[:6]) in body, f"--{field.name}'s help text is not shown"


# --- data -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_dataset_is_an_error(content, tmp_path):
    data = tmp_path / "empty.jsonl"
    data.write_text(content)
    with pytest.raises(DatasetError, match="no rows") as err:
        load_sft_dataset(str(data))
    assert str(data) in str(err.value)


@pytest.mark.parametrize(("change", "field", "what"), [
    (lambda row: row.pop("completion"), "completion", "has no field 'completion'"),
    (lambda row: row.pop("prompt"), "prompt", "has no field 'prompt'"),
    (lambda row: row.update(completion="   "), "completion", "has an empty 'completion'"),
])
def test_row_without_a_field_names_file_row_and_field(change, field, what, tmp_path, arith_rows, write_jsonl):
    rows = [dict(row) for row in arith_rows]
    change(rows[2])
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DatasetError) as err:
        load_sft_dataset(str(data))
    message = str(err.value)
    assert str(data) in message and "row 2 " in message and what in message


def test_invalid_json_line_names_the_line(tmp_path):
    data = tmp_path / "broken.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a", \n')
    with pytest.raises(DatasetError, match=r"line 2 is not valid JSON") as err:
        load_sft_dataset(str(data))
    assert str(data) in str(err.value)


# --- reference vocabulary ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mismatched_references(tmp_path_factory):
    """Two references the policy cannot use: another tokenizer (vocab 320), and the same tokenizer with a model
    whose vocabulary is larger (400 rows instead of 384)."""
    from prift.models.tiny import save_tiny_checkpoint, tiny_causal_lm, tiny_tokenizer

    root = tmp_path_factory.mktemp("refs")
    other_tokenizer = save_tiny_checkpoint(root / "vocab320", vocab_size=320)
    wide = root / "wide-head"
    tiny_causal_lm(vocab_size=400).save_pretrained(wide)
    tiny_tokenizer(384).save_pretrained(wide)
    return {"tokenizer": other_tokenizer, "vocab_size": wide}


def _existing_output(out):
    """An output folder holding an earlier run's files; returns {path: content}."""
    (out / "checkpoint-1").mkdir(parents=True)
    files = {out / "run.json": '{"earlier": true}\n', out / "marker.txt": "keep me\n",
             out / "checkpoint-1" / "config.json": "{}\n"}
    for path, content in files.items():
        path.write_text(content)
    return files


def _untouched(files):
    return all(path.is_file() and path.read_text() == content for path, content in files.items())


@pytest.mark.parametrize("mode", ("cache", "live"))
@pytest.mark.parametrize("mismatch", ("tokenizer", "vocab_size"))
def test_reference_with_other_vocabulary_is_rejected(mismatch, mode, mismatched_references, tmp_path, prift_cache,
                                                     tiny_checkpoint, arith_jsonl, sft_config):
    reference = mismatched_references[mismatch]
    out = tmp_path / "out"
    files = _existing_output(out)
    config = sft_config(tiny_checkpoint, arith_jsonl, out, method="prift_prob", reference_model=str(reference),
                        reference_mode=mode)
    with pytest.raises(ValueError, match="reference_model") as err:
        run_sft(config)
    message = str(err.value)
    assert str(reference) in message
    assert ("tokenizer" in message) if mismatch == "tokenizer" else ("400" in message and "384" in message)
    assert _untouched(files)
    assert not list(prift_cache.glob("reference-signals/*/shard-*"))  # nothing was scored with the wrong model


# --- the CLI and failing runs -----------------------------------------------------------------------------------------


def test_cli_reports_a_bad_recipe_without_traceback(tmp_path, capsys):
    recipe = _recipe(tmp_path / "bad.yaml", {"methodd": "nll"})
    assert _main(["--config", str(recipe)]) != 0
    err = capsys.readouterr().err
    assert str(recipe) in err and "'methodd'" in err and "did you mean method" in err
    assert "Traceback" not in err


def test_failing_run_deletes_nothing(tmp_path, capsys, prift_cache, tiny_checkpoint, arith_rows, write_jsonl):
    rows = [dict(row) for row in arith_rows]
    del rows[4]["completion"]
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    out = tmp_path / "out"
    files = _existing_output(out)
    argv = ["--model_name_or_path", str(tiny_checkpoint), "--dataset", str(data), "--output_dir", str(out),
            "--method", "nll", "--max_steps", "1", "--report_to", "none"]
    assert _main(argv) != 0
    err = capsys.readouterr().err
    assert str(data) in err and "row 4 " in err and "'completion'" in err
    assert "Traceback" not in err
    assert _untouched(files)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-1", "marker.txt", "run.json"]
