"""Eval stops at the chat template's turn end and at EOS (issue 18): a checkpoint whose EOS is not the template's
turn end, with weights set so that greedy decoding answers, closes the turn with ``<|im_end|>`` and then invents a
next user turn, must still end its completion at ``<|im_end|>``; results.json records the stops used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from prift.eval.benchmarks import get_benchmark
from prift.eval.config import EvalConfig
from prift.eval.runner import evaluate
from prift.eval.templates import render, resolve_template
from prift.models.chat import eos_token_ids, turn_end_text, turn_end_token_ids
from prift.models.loading import load_tokenizer
from prift.models.tiny import save_tiny_checkpoint

ANSWER = "7"


def _runs_on_checkpoint(path: Path, arith_benchmark: Path) -> Path:
    """A tiny ChatML checkpoint whose tokenizer EOS, pad and generation_config EOS are ``<|endoftext|>`` (a base
    model's, as Qwen2.5-Math base ships) and whose greedy continuation of a chat prompt is, forever,
    ``7<|im_end|><|im_start|>user\\n7<|im_end|>...``: attention and MLP outputs are zeroed, so each position's
    logits depend on its own token only, and embeddings / lm_head rows chain each token to the next."""
    save_tiny_checkpoint(path)
    tokenizer = load_tokenizer(str(path))
    tokenizer.eos_token = tokenizer.pad_token = "<|endoftext|>"
    tokenizer.save_pretrained(path)
    bench = get_benchmark(f"arith={arith_benchmark}")
    prompt = render(resolve_template("default", bench), bench, bench.load(1).problems[0], tokenizer, chat=True)
    start = tokenizer(prompt, add_special_tokens=False)["input_ids"][-1]  # "\n" after "<|im_start|>assistant"
    (answer,), (user,) = (tokenizer(t, add_special_tokens=False)["input_ids"] for t in (ANSWER, "user"))
    im_start, im_end = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    chain = [start, answer, im_end, im_start, user]  # each token's successor is the next one, user -> start
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.lm_head.weight.zero_()
        for k, token in enumerate(chain):
            model.model.embed_tokens.weight[token, k] = 10.0
            model.lm_head.weight[chain[(k + 1) % len(chain)], k] = 100.0
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def runs_on(tmp_path_factory, arith_benchmark) -> Path:
    return _runs_on_checkpoint(tmp_path_factory.mktemp("stops") / "runs-on", arith_benchmark)


def _config(model: Path, benchmark: Path, out: Path, **settings) -> EvalConfig:
    return EvalConfig(**{"model_name_or_path": str(model), "benchmarks": f"arith={benchmark}", "output_dir": str(out),
                         "max_tokens": 12, "progress": False, **settings})


def test_the_turn_end_and_eos_rule(tiny_checkpoint, runs_on):
    tiny, other = load_tokenizer(str(tiny_checkpoint)), load_tokenizer(str(runs_on))
    assert turn_end_text(tiny) == "<|im_end|>\n"
    assert tiny.convert_ids_to_tokens(turn_end_token_ids(tiny)) == ["<|im_end|>"]  # "\n" is no turn-end token
    model = AutoModelForCausalLM.from_pretrained(runs_on)
    assert other.convert_ids_to_tokens(eos_token_ids(other, model.generation_config)) == ["<|endoftext|>"]
    model.generation_config.eos_token_id = [other.eos_token_id, 2]
    assert eos_token_ids(other, model.generation_config) == [0, 2] and eos_token_ids(other) == [0]


def test_a_checkpoint_whose_eos_is_not_the_turn_end_stops_at_the_turn_end(tmp_path, runs_on, arith_benchmark,
                                                                          capsys):
    results = json.loads(evaluate(_config(runs_on, arith_benchmark, tmp_path / "ev")).read_text())["results"]["arith"]
    rows = [json.loads(line) for line in (tmp_path / "ev" / "samples" / "arith.jsonl").open()]
    assert results["chat_template"] is True and len(rows) == 2
    for row in rows:  # without the turn-end stop: "7user\n7user\n7..." up to max_tokens
        assert (row["completion"], row["finish_reason"], row["tokens"]) == (ANSWER, "stop", 1)
    assert results["stops"] == {"token_ids": [2, 0], "tokens": ["<|im_end|>", "<|endoftext|>"], "strings": [],
                                "source": "chat template turn end + eos"}
    assert results["sampling"]["stop_token_ids"] == [2, 0]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "turn end" in line]
    assert len(warnings) == 1 and str(runs_on) in warnings[0] and "<|im_end|>" in warnings[0]


def test_plain_prompts_stop_at_eos_and_their_own_strings(tmp_path, runs_on, arith_benchmark, capsys):
    config = _config(runs_on, arith_benchmark, tmp_path / "ev", template="fewshot")
    results = json.loads(evaluate(config).read_text())["results"]["arith"]
    base_stop = list(get_benchmark(f"arith={arith_benchmark}").base_stop)
    assert results["chat_template"] is False and base_stop
    assert results["stops"] == {"token_ids": [0], "tokens": ["<|endoftext|>"], "strings": base_stop,
                                "source": "eos"}
    assert "turn end" not in capsys.readouterr().err


def test_a_checkpoint_whose_eos_is_the_turn_end_is_not_warned_about(tmp_path, tiny_checkpoint, arith_benchmark,
                                                                     capsys):
    config = _config(tiny_checkpoint, arith_benchmark, tmp_path / "ev", max_tokens=2)
    results = json.loads(evaluate(config).read_text())["results"]["arith"]
    assert results["stops"]["tokens"] == ["<|im_end|>"] and results["stops"]["token_ids"] == [2]
    assert "turn end" not in capsys.readouterr().err


def test_vllm_backend_passes_the_stop_tokens_and_reads_the_checkpoints_generation_config(monkeypatch, runs_on):
    """No vLLM on the CPU machines: a stand-in ``vllm`` module records what the backend hands to it."""
    import sys
    from types import SimpleNamespace

    from prift.eval.backend_vllm import VLLMBackend
    from prift.eval.backends import Sampling

    sent = []

    class LLM:
        def __init__(self, **settings):
            pass

        def generate(self, prompts, params, use_tqdm):
            sent.extend(params)
            return [SimpleNamespace(outputs=[SimpleNamespace(text=ANSWER, token_ids=[1], finish_reason="stop")])
                    for _ in prompts]

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=LLM, SamplingParams=SimpleNamespace,
                                                             __version__="stand-in"))
    backend = VLLMBackend(str(runs_on))
    assert backend.generation_config.eos_token_id == 0  # the checkpoint's, not the turn end
    backend.generate(["a", "b"], [1, 1], Sampling(max_tokens=4, stop_token_ids=(2, 0)), seed=0)
    assert [p.stop_token_ids for p in sent] == [[2, 0], [2, 0]] and sent[0].stop is None


def test_generation_config_without_its_file_is_derived_from_config_json(tmp_path, tiny_checkpoint):
    import shutil

    from prift.models.chat import load_generation_config

    copy = Path(shutil.copytree(tiny_checkpoint, tmp_path / "no-generation-config"))
    (copy / "generation_config.json").unlink()
    assert load_generation_config(str(copy)).eos_token_id == 2  # config.json's eos_token_id
