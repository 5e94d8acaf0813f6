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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prift.core.registry import Registry
from prift.eval.benchmarks import Benchmark, Problem

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
    """``on``/``off``, or ``auto`` = the template's default when the tokenizer has a chat template."""
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"chat_template: expected auto, on or off, got {setting!r}")
    if setting == "auto":
        return tmpl.chat_default and getattr(tokenizer, "chat_template", None) is not None
    return setting == "on"


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
