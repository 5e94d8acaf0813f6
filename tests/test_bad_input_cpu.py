"""Bad input never fails obscurely and never loses finished work: over-long rows are counted and recorded (SFT and
RL), chat rows without a chat template fail before training naming the tokenizer, a full or unwritable disk fails
before work starts (or, mid-run, leaves the complete checkpoints a rerun resumes from), and bad files, recipes and
hub ids give errors naming the file, line or id (those are in test_bad_files_cpu.py).

(Missing or empty fields, invalid JSON lines and wrong-typed SFT completions are in test_config_cpu.py,
test_rl_train_cpu.py and test_sft_adapters_cpu.py; the unwritable SFT output dir in test_sft_faults_cpu.py.)
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from prift.core.diskspace import DiskSpaceError, check_checkpoint_space
from prift.rl.config import PriftRLConfig
from prift.rl.template import TemplateError
from prift.rl.train import run_rl
from prift.sft.train import run_sft

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAX_LENGTH = 48
TRAIN = dict(learning_rate=1e-2, lr_scheduler_type="constant")


def _run_json(out: Path) -> dict:
    return json.loads((Path(out) / "run.json").read_text())


@pytest.fixture(scope="module")
def no_template(tmp_path_factory, tiny_checkpoint) -> Path:
    """The tiny checkpoint with its tokenizer's chat template removed (a base model)."""
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("no-template") / "tiny"
    shutil.copytree(tiny_checkpoint, path)
    for file in path.glob("chat_template.*"):
        file.unlink()
    config = json.loads((path / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    assert AutoTokenizer.from_pretrained(path).chat_template is None
    return path


@pytest.fixture(scope="module")
def long_jsonl(tmp_path_factory, arith_rows, write_jsonl) -> Path:
    """The six arithmetic rows with row 1's completion and row 3's prompt made far longer than MAX_LENGTH tokens."""
    rows = [dict(row) for row in arith_rows]
    rows[1]["completion"] = " ".join(["12 * 5 = 60."] * 12)
    rows[3]["prompt"] = "What is " + " + ".join(["20"] * 40) + "?"
    return write_jsonl(tmp_path_factory.mktemp("long") / "long.jsonl", rows)


def _trl_trainer(model: Path, data: Path, out: Path, **args):
    """TRL's own SFTTrainer on the rows prift would give it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from prift.sft.data import load_sft_dataset

    config = SFTConfig(output_dir=str(out), bf16=False, activation_checkpointing=False, report_to="none", **args)
    return SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model), args=config,
                      train_dataset=load_sft_dataset(str(data))[0],
                      processing_class=AutoTokenizer.from_pretrained(model))


# --- over-long rows -------------------------------------------------------------------------------------------------


def test_overlong_sft_rows_are_counted_warned_and_recorded(tmp_path, prift_cache, tiny_checkpoint, long_jsonl,
                                                           sft_config, caplog):
    untruncated = _trl_trainer(tiny_checkpoint, long_jsonl, tmp_path / "trl", max_length=None).train_dataset
    cut, lost, emptied = [], 0, []
    for index, row in enumerate(untruncated):
        if len(row["input_ids"]) > MAX_LENGTH:
            cut.append(index)
            lost += sum(label != -100 for label in row["labels"][MAX_LENGTH:])
            if all(label == -100 for label in row["labels"][:MAX_LENGTH]):
                emptied.append(index)
    assert cut == [1, 3] and emptied == [3] and lost > 0  # the fixture does what it claims

    with caplog.at_level(logging.WARNING, logger="prift"):
        out = run_sft(sft_config(tiny_checkpoint, long_jsonl, tmp_path / "sft", max_length=MAX_LENGTH, max_steps=1))
    data = _run_json(out)["data"]
    assert data["max_length"] == MAX_LENGTH
    assert data["truncated_rows"] == 2 and data["truncated_row_indices"] == [1, 3]
    assert data["truncated_completion_tokens"] == lost
    assert data["fully_truncated_rows"] == 1 and data["fully_truncated_row_indices"] == [3]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(long_jsonl) in warning and "2 of 6 rows" in warning and "rows 1, 3" in warning
    assert f"{lost} completion tokens" in warning and "train nothing" in warning and "(rows 3)" in warning


@pytest.mark.parametrize("mode", ["keep_start", "keep_end"])
def test_measured_preparation_gives_trls_own_rows(mode, tmp_path, tiny_checkpoint, long_jsonl, sft_config,
                                                  prepare_trainer):
    """Measuring before TRL truncates must not change what trains: the same rows, cut, dropped and shuffled alike."""
    settings = dict(max_length=MAX_LENGTH, truncation_mode=mode, shuffle_dataset=mode == "keep_end", seed=5)
    ours = prepare_trainer(sft_config(tiny_checkpoint, long_jsonl, tmp_path / "ours", **settings))
    theirs = _trl_trainer(tiny_checkpoint, long_jsonl, tmp_path / "trl", **settings).train_dataset
    assert len(ours.train_dataset) == len(theirs) == (5 if mode == "keep_start" else 6)
    for column in ("input_ids", "labels"):
        assert ours.train_dataset[column] == theirs[column]
    report = ours.truncation["train"]
    assert report.truncated == (1, 3)
    assert report.fully_truncated == ((3,) if mode == "keep_start" else ())  # keep_end keeps row 3's answer


@pytest.fixture(scope="module")
def overlong_prompts_jsonl(tmp_path_factory, write_jsonl) -> Path:
    rows = [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(4)]
    rows[2]["prompt"] = "What is " + " + ".join(["7"] * 300) + "?"
    return write_jsonl(tmp_path_factory.mktemp("rl-long") / "prompts.jsonl", rows)


def _rl_config(model, dataset, out, **overrides) -> PriftRLConfig:
    fields = dict(model_name_or_path=str(model), dataset=str(dataset), output_dir=str(out), rewards=["format_boxed"],
                  num_generations=2, per_device_train_batch_size=4, max_completion_length=8, budget=1,
                  save_strategy="no", disable_tqdm=True, dataloader_pin_memory=False, seed=7)
    fields.update(overrides)
    return PriftRLConfig(**fields)


def test_overlong_rl_prompts_are_counted_warned_and_recorded(tmp_path, tiny_checkpoint, overlong_prompts_jsonl,
                                                            caplog):
    from prift.models.loading import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_checkpoint))
    lengths = [len(tokenizer.apply_chat_template([{"role": "user", "content": json.loads(line)["prompt"]}],
                                                 add_generation_prompt=True, tokenize=True, return_dict=True)
                   ["input_ids"]) for line in overlong_prompts_jsonl.read_text().splitlines()]
    limit = 512 - 8  # the tiny model's max_position_embeddings - max_completion_length
    assert [n > limit for n in lengths] == [False, False, True, False]

    with caplog.at_level(logging.WARNING, logger="prift"):
        out = run_rl(_rl_config(tiny_checkpoint, overlong_prompts_jsonl, tmp_path / "rl", instruction=""))
    data = _run_json(out)["data"]
    assert data["prompt_limit"] == limit and data["prompt_tokens_max"] == max(lengths)
    assert data["overlong_prompts"] == 1 and data["overlong_prompt_row_ids"] == [2]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(overlong_prompts_jsonl) in warning and "1 of 4 prompts" in warning and "(rows 2)" in warning


# --- a tokenizer without a chat template ---------------------------------------------------------------------------


def test_sft_chat_rows_without_a_chat_template_fail_before_training(tmp_path, prift_cache, no_template, arith_jsonl,
                                                                    arith_rows, write_jsonl, sft_config):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="has no chat template") as err:
        run_sft(sft_config(no_template, arith_jsonl, out))
    message = str(err.value)
    assert str(no_template) in message and str(arith_jsonl) in message
    assert "use_chat_template=false" in message and "chat_template_path" in message
    assert not list(out.iterdir())  # nothing trained, nothing written

    messages = write_jsonl(tmp_path / "messages.jsonl", [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["completion"]}]}
        for r in arith_rows])
    with pytest.raises(ValueError, match="has no chat template") as err:
        run_sft(sft_config(no_template, messages, out))
    assert "use_chat_template=false" not in str(err.value)  # no use for rows that are messages in the file

    # the advice works: plain prompt + completion text trains with this tokenizer
    trained = run_sft(sft_config(no_template, arith_jsonl, out, use_chat_template=False, max_steps=1))
    assert (trained / "model.safetensors").is_file() and _run_json(trained)["data"]["truncated_rows"] == 0


def test_rl_chat_prompts_without_a_chat_template_fail_before_training(tmp_path, no_template, write_jsonl):
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"prompt": "What is 1 + 1?", "answer": "2"}] * 4)
    with pytest.raises(TemplateError, match="has no chat template") as err:
        run_rl(_rl_config(no_template, plain, tmp_path / "a"))
    assert str(no_template) in str(err.value) and "use_chat_template=false" in str(err.value)

    chat = write_jsonl(tmp_path / "chat.jsonl", [{"prompt": [{"role": "user", "content": "1 + 1?"}], "answer": "2"}] * 4)
    with pytest.raises(TemplateError, match="has no chat template") as err:
        run_rl(_rl_config(no_template, chat, tmp_path / "b", use_chat_template=False))
    assert str(no_template) in str(err.value) and str(chat) in str(err.value)
    assert not (tmp_path / "a" / "run.json").exists() and not (tmp_path / "b" / "run.json").exists()


def _eval_config(model, benchmark: Path, out: Path, chat_template: str):
    from prift.eval.config import EvalConfig

    return EvalConfig(model_name_or_path=str(model), benchmarks=f"arith={benchmark}", output_dir=str(out), max_tokens=2,
                      use_chat_template=chat_template, progress=False)


def test_eval_auto_chat_template_falls_back_to_plain_prompts(tmp_path, no_template, arith_benchmark):
    from prift.eval.runner import evaluate

    results = json.loads(evaluate(_eval_config(no_template, arith_benchmark, tmp_path / "ev", "auto")).read_text())
    arith = results["results"]["arith"]
    assert arith["chat_template"] is False and arith["counts"]["error"] == 0
    prompts = [json.loads(line)["prompt"] for line in (tmp_path / "ev" / "samples" / "arith.jsonl").open()]
    assert len(prompts) == 2 and all("What is" in p for p in prompts)


def test_eval_chat_template_on_without_one_is_an_error(tmp_path, no_template, arith_benchmark):
    from prift.eval.runner import evaluate

    with pytest.raises(ValueError, match="chat template") as err:
        evaluate(_eval_config(no_template, arith_benchmark, tmp_path / "ev", "on"))
    assert str(no_template) in str(err.value)


# --- disk space and unwritable output ------------------------------------------------------------------------------


@pytest.mark.parametrize(("save_strategy", "save_only_model", "ema", "copies"), [
    ("no", False, False, 1),  # the final model only
    ("steps", False, False, 3),  # weights + AdamW's two moments
    ("steps", True, False, 1),
    ("steps", False, True, 4),  # + the EMA's weights
])
def test_checkpoint_estimate_is_weights_times_copies(save_strategy, save_only_model, ema, copies, tmp_path,
                                                     tiny_checkpoint, free_bytes):
    model_bytes = sum(t.numel() * 4 for t in load_file(str(tiny_checkpoint / "model.safetensors")).values())
    from prift.models.loading import load_causal_lm

    model = load_causal_lm(str(tiny_checkpoint), "float32")
    args = SimpleNamespace(save_strategy=save_strategy, save_only_model=save_only_model)
    need = copies * model_bytes
    free_bytes(tmp_path, need)
    check_checkpoint_space(tmp_path / "out", model, args, ema=ema)  # exactly enough passes
    free_bytes(tmp_path, need - 1)
    with pytest.raises(DiskSpaceError) as err:
        check_checkpoint_space(tmp_path / "out", model, args, ema=ema)
    assert f"({need - 1} bytes) free" in str(err.value) and f"({need} bytes)" in str(err.value)
    assert err.value.errno == errno.ENOSPC and str(tmp_path / "out") in str(err.value)


@pytest.mark.parametrize("stage", ["sft", "rl"])
def test_too_little_free_space_fails_before_any_work(stage, tmp_path, prift_cache, tiny_checkpoint, arith_jsonl,
                                                     overlong_prompts_jsonl, sft_config, free_bytes):
    out = tmp_path / "out"
    free_bytes(out, 1000)
    with pytest.raises(DiskSpaceError, match=r"has 1000\.0 B \(1000 bytes\) free but one checkpoint") as err:
        if stage == "sft":
            run_sft(sft_config(tiny_checkpoint, arith_jsonl, out, method="prift_prob", save_strategy="steps"))
        else:
            run_rl(_rl_config(tiny_checkpoint, overlong_prompts_jsonl, out, save_strategy="steps"))
    assert str(out) in str(err.value) and "optimizer state" in str(err.value)
    assert list(out.iterdir()) == []  # no checkpoint, no run.json
    assert not prift_cache.exists()  # the reference cache was not built either


def test_unwritable_output_dir_fails_first_in_rl_and_eval(tmp_path, overlong_prompts_jsonl, arith_benchmark):
    from prift.eval.runner import evaluate

    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    missing_model = tmp_path / "no-such-model"  # would fail later: the output dir is checked first
    with pytest.raises(PermissionError, match="file-not-dir"):
        run_rl(_rl_config(missing_model, overlong_prompts_jsonl, blocker / "rl"))
    with pytest.raises(PermissionError, match="file-not-dir"):
        evaluate(_eval_config(missing_model, arith_benchmark, blocker / "eval", "auto"))


def test_disk_full_while_saving_keeps_complete_checkpoints_and_resumes_exactly(tmp_path, prift_cache,
                                                                              tiny_checkpoint, arith_jsonl,
                                                                              sft_config, monkeypatch):
    import transformers.modeling_utils as modeling_utils

    settings = dict(method="nll", max_steps=4, save_strategy="steps", save_steps=1, seed=3, data_seed=3, **TRAIN)
    clean = run_sft(sft_config(tiny_checkpoint, arith_jsonl, tmp_path / "clean", **settings))

    real_save, calls = modeling_utils.safe_save_file, []

    def fills_the_disk_on_the_second_save(tensors, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real_save(tensors, filename, *args, **kwargs)

    out = tmp_path / "full"
    monkeypatch.setattr(modeling_utils, "safe_save_file", fills_the_disk_on_the_second_save)
    with pytest.raises(DiskSpaceError) as err:
        run_sft(sft_config(tiny_checkpoint, arith_jsonl, out, **settings))
    monkeypatch.undo()
    message = str(err.value)
    assert str(out) in message and "is full" in message and f"resumes from {out / 'checkpoint-1'}" in message
    assert (out / "checkpoint-1" / "trainer_state.json").is_file()
    assert not (out / "checkpoint-2" / "trainer_state.json").exists() and not (out / "run.json").exists()

    resumed = run_sft(sft_config(tiny_checkpoint, arith_jsonl, out, **settings))
    assert _run_json(resumed)["resumed_from"] == str(out / "checkpoint-1")
    want, got = load_file(str(clean / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert want.keys() == got.keys()
    for name in want:
        assert torch.equal(want[name], got[name]), name
