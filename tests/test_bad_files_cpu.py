"""Bad files, configs and hub ids give errors naming the file, line, row or id (or, for eval, a recorded per-benchmark
failure while the others run), and the CLI prints them without a traceback. (Over-long rows, missing chat templates
and disk faults are in test_bad_input_cpu.py.)"""

from __future__ import annotations

import json

import pytest

from prift.core.datafiles import DatasetError
from prift.sft.train import run_sft

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _loaders():
    from prift.rl.data import load_rl_dataset
    from prift.sft.data import load_sft_dataset

    return {"sft": load_sft_dataset, "rl": load_rl_dataset}


@pytest.mark.parametrize("stage", ["sft", "rl"])
def test_non_utf8_jsonl_names_file_and_line(stage, tmp_path):
    data = tmp_path / "latin1.jsonl"
    data.write_bytes(b'{"prompt": "a", "completion": "b", "answer": "1"}\n\n'
                     b'{"prompt": "caf\xe9", "completion": "b", "answer": "1"}\n')
    with pytest.raises(DatasetError, match=r"line 3 is not UTF-8") as err:
        _loaders()[stage](str(data))
    assert str(data) in str(err.value)


@pytest.mark.parametrize(("suffix", "content"), [
    (".json", b'[{"prompt": "caf\xe9", "completion": "b"}]'),
    (".csv", b"prompt,completion\ncaf\xe9,b\n"),
])
def test_non_utf8_json_and_csv_name_the_file(suffix, content, tmp_path):
    data = tmp_path / f"latin1{suffix}"
    data.write_bytes(content)
    with pytest.raises(DatasetError, match=r"(?i)cannot be read as .*utf-?8") as err:
        _loaders()["sft"](str(data))
    assert str(data) in str(err.value)


def test_jsonl_line_that_is_not_an_object_names_the_line(tmp_path):
    data = tmp_path / "list.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n["a", "b"]\n')
    with pytest.raises(DatasetError, match=r"line 2 is a JSON list, not an object") as err:
        _loaders()["sft"](str(data))
    assert str(data) in str(err.value)


def test_utf8_bom_is_accepted(tmp_path):
    data = tmp_path / "bom.jsonl"
    data.write_bytes(b'\xef\xbb\xbf{"prompt": "a", "completion": "b"}\n')
    dataset, _ = _loaders()["sft"](str(data), chat_template=False)
    assert dataset[0] == {"prompt": "a", "completion": "b"}


@pytest.mark.parametrize("row", [{"prompt": 5, "answer": "1"}, {"prompt": ["a", "b"], "answer": "1"},
                                 {"question": "q", "answer": 42}])
def test_wrong_typed_rl_fields_are_a_dataset_error(row, tmp_path, write_jsonl):
    data = write_jsonl(tmp_path / "typed.jsonl", [{"prompt": "q", "answer": "1"} if "prompt" in row else
                                                  {"question": "q", "answer": "#### 1"}, row])
    with pytest.raises(DatasetError, match="row 1"):
        _loaders()["rl"](str(data))


def test_cli_reports_malformed_yaml_naming_the_file_without_traceback(tmp_path, capsys):
    from prift.commands.sft import main

    recipe = tmp_path / "bad.yaml"
    recipe.write_text("method: [nll\nlearning_rate: 1e-4\n")
    assert main(["--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert str(recipe) in err and "not valid YAML" in err and "Traceback" not in err



def test_cli_reports_a_non_utf8_config_naming_the_file(tmp_path, capsys):
    from prift.commands.sft import main

    recipe = tmp_path / "latin1.yaml"
    recipe.write_bytes("method: nll\n# caf\xe9\n".encode("latin-1"))
    assert main(["--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert str(recipe) in err and "not UTF-8" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["sft", "rl", "eval"])
def test_cli_reports_an_unwritable_output_dir_without_traceback(command, tmp_path, tiny_checkpoint, arith_jsonl,
                                                                 capsys):
    from prift import main

    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    model = ["--model" if command == "eval" else "--model_name_or_path", str(tiny_checkpoint)]
    data = [] if command == "eval" else ["--dataset", str(arith_jsonl)]
    assert main([command, *model, *data, "--output_dir", str(blocker / "out")]) == 1
    err = capsys.readouterr().err
    assert "file-not-dir" in err and "Traceback" not in err

@pytest.fixture
def offline(monkeypatch):
    """No network, as on this machine, without waiting for the hub clients' retries."""
    import datasets
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def test_offline_unknown_hub_dataset_names_the_id(offline, tmp_path, tiny_checkpoint, sft_config):
    with pytest.raises(DatasetError, match=r"'nobody/no-such-dataset' has no local file and could not be loaded"):
        run_sft(sft_config(tiny_checkpoint, "nobody/no-such-dataset", tmp_path / "out"))


def test_offline_unknown_hub_model_names_the_id(offline, tmp_path, arith_jsonl, sft_config):
    with pytest.raises(FileNotFoundError, match="nobody/no-such-model"):
        run_sft(sft_config("nobody/no-such-model", arith_jsonl, tmp_path / "out"))


def test_a_benchmark_whose_data_cannot_load_is_recorded_and_the_others_still_run(offline, tmp_path, tiny_checkpoint,
                                                                                 arith_benchmark):
    from prift.eval.config import EvalConfig
    from prift.eval.runner import BenchmarkUnavailable, evaluate

    empty = tmp_path / "no-data"  # neither minerva_math/test.jsonl here nor the hub (offline)
    empty.mkdir()
    config = EvalConfig(model_name_or_path=str(tiny_checkpoint), benchmarks=f"minerva,arith={arith_benchmark}", data_dir=str(empty),
                        output_dir=str(tmp_path / "ev"), max_tokens=2, progress=False)
    with pytest.raises(BenchmarkUnavailable, match="minerva") as err:
        evaluate(config)
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(results["results"]) == {"arith"} and results["results"]["arith"]["rows_loaded"] == 2
    assert set(results["failed"]) == {"minerva"}
    assert str(tmp_path / "ev" / "results.json") in str(err.value)


def test_a_tokenizer_only_folder_loads_as_a_tokenizer_but_not_as_a_model(tmp_path, tiny_checkpoint):
    from prift.models.loading import load_causal_lm, load_tokenizer

    folder = tmp_path / "tokenizer-only"
    load_tokenizer(str(tiny_checkpoint)).save_pretrained(folder)
    assert not (folder / "config.json").exists()
    assert load_tokenizer(str(folder)).vocab_size == load_tokenizer(str(tiny_checkpoint)).vocab_size
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_causal_lm(str(folder))
    with pytest.raises(FileNotFoundError, match="has no tokenizer_config.json"):
        load_tokenizer(str(tmp_path))
