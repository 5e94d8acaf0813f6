"""Prompt templates: a registry of named ways to turn a benchmark problem into the text a model continues.

A template builds chat messages; with the chat template **on** they are rendered by the tokenizer's own chat
template (``apply_chat_template(..., add_generation_prompt=True)``), with it **off** by the template's plain form.

| name | messages | plain form (chat template off) | stop |
|---|---|---|---|
| ``qwen-boxed`` | system "You are a helpful assistant.", user = question + "\\nPlease reason step by step, and put your final answer within \\\\boxed{}." | the Qwen2.5-Math harness's literal ChatML text | — |
| ``qwen25-math-cot`` | system "Please reason step by step, and put your final answer within \\\\boxed{}.", user = question | literal ChatML | — |
| ``chat`` | user = the benchmark's zero-shot instruction (question + answer format) | the user text | — |
| ``fewshot`` | user = the benchmark's standard base-model prompt (few-shot where its protocol uses shots) | that prompt | the benchmark's |

``lm-eval`` (:mod:`.lmeval`) is lm-evaluation-harness's own prompt (gsm8k 5-shot, minerva_math 4-shot), stops and
filter verdicts.
``default`` picks each benchmark's own default (``qwen-boxed`` for math, ``chat`` for code and multiple choice).
``fewshot`` defaults to the chat template off (base models); the others default to on when the tokenizer has one.

Every template also stops at stop *tokens* (:func:`generation_stops`): with the chat template on, the template's
turn end (``<|im_end|>``) and the EOS tokens; with it off, the EOS tokens.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from prift.core.registry import Registry
from prift.eval.benchmarks import Benchmark, Problem
from prift.models.chat import eos_token_ids, model_eos_ids, turn_end_token_ids

BOXED = "Please reason step by step, and put your final answer within \\boxed{}."
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Template:
    name: str
    build: Callable[[Benchmark, Problem], Messages]
    plain: Callable[[Messages], str]
    chat_default: bool = True
    uses_base_stop: bool = False


TEMPLATES: Registry[Template] = Registry("prompt template", builtins=("prift.eval.lmeval",))  # + ``lm-eval``


def chatml(messages: Messages) -> str:
    """Messages as literal ChatML plus the assistant header (what the Qwen2.5-Math harness hard-codes)."""
    body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def user_text(messages: Messages) -> str:
    return "\n\n".join(m["content"] for m in messages)


def template(name: str, plain: Callable[[Messages], str] = user_text, chat_default: bool = True,
             uses_base_stop: bool = False):
    """Decorator registering ``build(benchmark, problem) -> messages`` as a template (duplicate names rejected)."""

    def decorate(build: Callable[[Benchmark, Problem], Messages]):
        TEMPLATES.add(name, Template(name, build, plain, chat_default, uses_base_stop))
        return build

    return decorate


@template("qwen-boxed", plain=chatml)
def qwen_boxed(benchmark: Benchmark, problem: Problem) -> Messages:
    return [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": f"{problem.question}\n{BOXED}"}]


@template("qwen25-math-cot", plain=chatml)
def qwen25_math_cot(benchmark: Benchmark, problem: Problem) -> Messages:
    return [{"role": "system", "content": BOXED}, {"role": "user", "content": problem.question}]


@template("chat")
def chat(benchmark: Benchmark, problem: Problem) -> Messages:
    return [{"role": "user", "content": benchmark.instruction(problem)}]


@template("fewshot", chat_default=False, uses_base_stop=True)
def fewshot(benchmark: Benchmark, problem: Problem) -> Messages:
    return [{"role": "user", "content": benchmark.base_prompt(problem)}]


def resolve_template(name: str, benchmark: Benchmark) -> Template:
    return TEMPLATES.get(benchmark.default_template if name in ("default", "", None) else name)


def use_chat_template(tmpl: Template, tokenizer, setting: str = "auto") -> bool:
    """``true``/``false``, or ``auto`` = the template's default when the tokenizer has a chat template."""
    if setting not in ("auto", "true", "false"):
        raise ValueError(f"use_chat_template: expected auto, true or false, got {setting!r}")
    if setting == "auto":
        return tmpl.chat_default and getattr(tokenizer, "chat_template", None) is not None
    return setting == "true"


def render(tmpl: Template, benchmark: Benchmark, problem: Problem, tokenizer=None, chat: bool = False) -> str:
    """The prompt text for ``problem`` (the tokenizer is needed only with the chat template on)."""
    messages = tmpl.build(benchmark, problem)
    if chat:
        if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("chat template requested but the tokenizer has none; use --chat_template off")
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tmpl.plain(messages)


def stop_strings(tmpl: Template, benchmark: Benchmark) -> tuple[str, ...]:
    return tuple(benchmark.base_stop) if tmpl.uses_base_stop else ()


_WARNED: set[str] = set()  # checkpoints already warned about in this process (RL validation evaluates repeatedly)


def generation_stops(tokenizer, generation_config, chat: bool, checkpoint: str) -> dict:
    """The stop tokens of a benchmark's samples, as results.json records them (``token_ids``, ``tokens``,
    ``source``). With the chat template on: the template's turn-end tokens (:mod:`prift.models.chat`), then the EOS
    tokens (the tokenizer's and ``generation_config``'s); off: the EOS tokens. With the chat template on and a
    ``generation_config`` whose EOS misses a turn-end token, one line on stderr names ``checkpoint`` (once per
    process): prift stops at the turn end anyway, but ``generate`` or vLLM left to the checkpoint's own settings
    would run on into an invented next turn."""
    names = tokenizer.convert_ids_to_tokens
    turn = turn_end_token_ids(tokenizer) if chat else []
    model_eos = model_eos_ids(generation_config)
    if generation_config is not None and set(turn) - set(model_eos) and checkpoint not in _WARNED:
        _WARNED.add(checkpoint)
        print(f"[prift] {checkpoint}: generation_config.eos_token_id {names(model_eos)} is not the chat template's "
              f"turn end {names(turn)}; prift eval stops at both, generation left to the checkpoint's own EOS runs on "
              "past the assistant turn", file=sys.stderr, flush=True)
    ids = list(dict.fromkeys([*turn, *eos_token_ids(tokenizer, generation_config)]))
    source = "chat template turn end + eos" if turn else ("eos (the chat template's turn end has no special token)"
                                                          if chat else "eos")
    return {"token_ids": ids, "tokens": names(ids), "source": source}
