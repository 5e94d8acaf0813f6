"""The HF backend's greedy loop (`prift.eval.greedy_hf`): the same completions, token counts and finish reasons as
transformers' own greedy ``generate`` on left-padded prompts of different lengths, with rows that stop at
different steps (stop tokens and stop strings), whether the prompts are prefilled as a padded batch or one by one
and merged into one padded cache, while each stopped row leaves the batch."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

import prift.eval.backend_hf as backend_hf
import prift.eval.greedy_hf as greedy_hf
from prift.eval.backend_hf import HFBackend
from prift.eval.backends import Sampling
from prift.models.tiny import save_tiny_checkpoint

PROMPTS = ["12 + 30 =", "What is 7 times 8? The answer", "a", "Question: 99 - 1\nAnswer:", "x y z w v u t s", "3"]


@pytest.fixture(scope="module")
def backend(tmp_path_factory, one_torch_thread):
    """The tiny random model with sharpened attention (q, k x 8): its greedy tokens then depend on the positions
    and the cache, which a random init's near-uniform attention barely reads."""
    path = save_tiny_checkpoint(tmp_path_factory.mktemp("greedy") / "tiny", arch="qwen2", seed=0)
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(8)
            layer.self_attn.k_proj.weight.mul_(8)
    model.save_pretrained(path)
    return HFBackend(str(path), device="cpu", dtype="float32", batch_size=len(PROMPTS))


def generate_s(backend, sampling, monkeypatch) -> list:
    """transformers' ``generate`` through the same backend (the reference)."""
    with monkeypatch.context() as patch:
        patch.setattr(backend_hf, "plain_greedy", lambda model: False)
        return backend.generate(PROMPTS, [1] * len(PROMPTS), sampling, seed=0)


def stops_at_different_steps(backend) -> tuple[tuple[int, ...], str]:
    """Stop tokens that end rows 0 and 1 at steps 2 and 5 of their free-running greedy output, and a stop string
    taken from row 3's (so rows stop at different steps, the others run to max_tokens)."""
    tok = backend.tokenizer
    batch = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    free = backend.model.generate(**batch, max_new_tokens=12, do_sample=False, temperature=None, top_p=None,
                                  top_k=None, eos_token_id=[], pad_token_id=tok.pad_token_id)[:, batch["input_ids"].shape[1]:]
    # a stop string must be readable text: transformers' stop-string criterion matches token strings, and misses
    # one inside a token that decodes to a partial UTF-8 character (then only the text is cut)
    text = next(t for k in range(3, 12) if (t := tok.decode(free[3, k])).strip() and t.isascii() and t.isprintable())
    return (int(free[0, 2]), int(free[1, 5])), text


def forward_shapes(backend, sampling) -> list[torch.Size]:
    """The ``input_ids`` shape of every model forward while the backend generates ``PROMPTS``."""
    shapes = []
    hook = backend.model.register_forward_pre_hook(lambda _, args, kwargs: shapes.append(kwargs["input_ids"].shape),
                                                   with_kwargs=True)
    try:
        backend.generate(PROMPTS, [1] * len(PROMPTS), sampling, seed=0)
    finally:
        hook.remove()
    return shapes


@pytest.fixture(params=["batched prefill", "unpadded prefill"])
def prefill(request, monkeypatch):
    """Both prefill routes: the padded batch (these prompts are short) and one prompt at a time."""
    if request.param == "unpadded prefill":
        monkeypatch.setattr(greedy_hf, "UNPADDED_PREFILL_MIN_TOKENS", 0)
    return request.param


def test_greedy_equals_generate_with_stop_tokens_and_strings(backend, prefill, monkeypatch):
    stop_ids, stop_text = stops_at_different_steps(backend)
    for sampling in (Sampling(max_tokens=12, stop_token_ids=stop_ids),
                     Sampling(max_tokens=12, stop_token_ids=stop_ids, stop=(stop_text,)),
                     Sampling(max_tokens=12)):
        ours = backend.generate(PROMPTS, [1] * len(PROMPTS), sampling, seed=0)
        theirs = generate_s(backend, sampling, monkeypatch)
        assert [(g[0].text, g[0].tokens, g[0].finish_reason) for g in ours] == \
               [(g[0].text, g[0].tokens, g[0].finish_reason) for g in theirs], sampling
    assert {g[0].finish_reason for g in ours} <= {"stop", "length"}


def test_each_prompt_is_prefilled_unpadded_and_a_stopped_row_leaves_the_batch(backend, monkeypatch):
    stop_ids, _ = stops_at_different_steps(backend)
    monkeypatch.setattr(greedy_hf, "UNPADDED_PREFILL_MIN_TOKENS", 0)
    shapes = forward_shapes(backend, Sampling(max_tokens=12, stop_token_ids=stop_ids))
    lengths = [len(backend.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in PROMPTS]
    prefill, widths = shapes[:len(PROMPTS)], [rows for rows, length in shapes[len(PROMPTS):]]
    assert sorted(length for rows, length in prefill) == sorted(lengths) and {rows for rows, _ in prefill} == {1}
    assert widths[0] == len(PROMPTS) and widths == sorted(widths, reverse=True) and widths[-1] < len(PROMPTS)
    assert {length for _, length in shapes[len(PROMPTS):]} == {1}


def test_a_logits_processor_in_the_generation_config_falls_back_to_generate(backend, monkeypatch):
    sampling = Sampling(max_tokens=12)
    plain = [g[0].text for g in backend.generate(PROMPTS, [1] * len(PROMPTS), sampling, seed=0)]
    monkeypatch.setattr(backend.model.generation_config, "repetition_penalty", 5.0)
    assert not backend_hf.plain_greedy(backend.model)
    penalised = [g[0].text for g in backend.generate(PROMPTS, [1] * len(PROMPTS), sampling, seed=0)]
    assert penalised != plain  # generate applied the config's penalty, which the argmax loop would have skipped


def test_short_prompts_are_prefilled_as_one_padded_batch(backend):
    shapes = forward_shapes(backend, Sampling(max_tokens=3))
    assert shapes[0][0] == len(PROMPTS) and shapes[0][1] < greedy_hf.UNPADDED_PREFILL_MIN_TOKENS
