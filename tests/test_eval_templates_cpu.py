"""Golden prompt renderings per template, chat template on/off, and the registries' duplicate-name rejection."""

from __future__ import annotations

import pytest

from prift.core.paths import data_root
from prift.core.registry import Registry
from prift.eval.benchmarks import BENCHMARKS, Problem, get_benchmark
from prift.eval.templates import TEMPLATES, render, resolve_template, stop_strings, use_chat_template
from prift.models.tiny import tiny_tokenizer

needs_data = pytest.mark.skipif(data_root() is None, reason="benchmark data dir ($PRIFT_DATA_DIR or ../shared/data) absent")
MATH = Problem("p1", "What is $1+1$?", "2")
MC = Problem("q1", "Which bone?\nA. femur\nB. ulna\nC. rib\nD. skull", "B")


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def test_qwen_boxed_plain_is_the_harness_literal():
    text = render(TEMPLATES.get("qwen-boxed"), get_benchmark("math500"), MATH, chat=False)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is $1+1$?\nPlease reason step by step, and put your final answer within "
        "\\boxed{}.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_qwen25_math_cot_plain_is_the_harness_literal():
    text = render(TEMPLATES.get("qwen25-math-cot"), get_benchmark("gsm8k"), MATH, chat=False)
    assert text == (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\nWhat is $1+1$?<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("name", ["qwen-boxed", "qwen25-math-cot"])
def test_chatml_tokenizer_renders_qwen_templates_identically(tokenizer, name):
    tmpl, bench = TEMPLATES.get(name), get_benchmark("math500")
    assert render(tmpl, bench, MATH, tokenizer, chat=True) == render(tmpl, bench, MATH, chat=False)


def test_chat_template_multiple_choice_golden(tokenizer):
    tmpl = TEMPLATES.get("chat")
    assert render(tmpl, get_benchmark("medqa"), MC, tokenizer, chat=True) == (
        "<|im_start|>user\nWhich bone?\nA. femur\nB. ulna\nC. rib\nD. skull\n\nAnswer the multiple choice question "
        "above. The last line of your response should be of the form 'Answer: X' where X is one of A, B, C, D."
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    plain = render(tmpl, get_benchmark("pubmedqa"), MC, chat=False)
    assert plain.endswith("'Answer: X' where X is one of A, B, C.")


def test_fewshot_base_prompts_and_stops():
    tmpl = TEMPLATES.get("fewshot")
    he = Problem("HumanEval/x", 'def f(x):\n    """double"""\n', None, {"entry_point": "f"})
    assert render(tmpl, get_benchmark("humaneval"), he, chat=False) == he.question
    assert stop_strings(tmpl, get_benchmark("humaneval")) == ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
    assert render(tmpl, get_benchmark("medqa"), MC, chat=False) == f"Question: {MC.question}\nAnswer:"
    assert stop_strings(TEMPLATES.get("chat"), get_benchmark("medqa")) == ()


@needs_data
def test_fewshot_gsm8k_uses_five_train_shots_in_lm_eval_layout():
    bench = get_benchmark("gsm8k")
    text = render(TEMPLATES.get("fewshot"), bench, MATH, chat=False)
    assert text.count("Question: ") == 6 and text.endswith("Question: What is $1+1$?\nAnswer:")
    assert text.startswith("Question: Natalia sold clips to 48 of her friends in April")
    assert "#### 72\n\nQuestion:" in text  # shots keep the full GSM8K answer with its #### line
    assert stop_strings(TEMPLATES.get("fewshot"), bench) == ("Question:",)


@needs_data
def test_fewshot_mbpp_and_mmlu_standard_shots():
    mbpp = get_benchmark("mbpp")
    problem = mbpp.load(limit=1).problems[0]
    text = render(TEMPLATES.get("fewshot"), mbpp, problem, chat=False)
    assert text.count("[BEGIN]") == 4 and text.count("[DONE]") == 3 and text.endswith("[BEGIN]\n")
    assert text.startswith("You are an expert Python programmer, and here is your task: Write a function to find "
                           "the similar elements")
    mmlu = get_benchmark("mmlu_medical")
    problem = mmlu.load(limit=1).problems[0]
    text = render(TEMPLATES.get("fewshot"), mmlu, problem, chat=False)
    assert text.startswith("The following are multiple choice questions (with answers) about anatomy.\n\n")
    assert text.count("\nAnswer: ") == 5 and text.endswith(f"{problem.question}\nAnswer:")


def test_defaults_and_chat_template_setting(tokenizer):
    assert resolve_template("default", get_benchmark("gsm8k")).name == "qwen-boxed"
    assert resolve_template("default", get_benchmark("humaneval")).name == "chat"
    assert use_chat_template(TEMPLATES.get("chat"), tokenizer, "auto") is True
    assert use_chat_template(TEMPLATES.get("fewshot"), tokenizer, "auto") is False
    assert use_chat_template(TEMPLATES.get("chat"), object(), "auto") is False  # no chat template
    with pytest.raises(ValueError, match="chat template requested"):
        render(TEMPLATES.get("chat"), get_benchmark("gsm8k"), MATH, object(), chat=True)


def test_registries_reject_duplicates_and_unknown_names():
    registry = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("a", 2)
    with pytest.raises(ValueError, match="valid: a"):
        registry.get("b")
    with pytest.raises(ValueError, match="already registered"):
        BENCHMARKS.register("gsm8k")(object)
    with pytest.raises(ValueError, match="already registered"):
        TEMPLATES.add("chat", TEMPLATES.get("chat"))
    with pytest.raises(ValueError, match="unknown benchmark"):
        get_benchmark("gsm9k")
