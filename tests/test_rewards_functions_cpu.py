"""RL rewards: TRL signature, string and conversational completions, registry lookup and its errors."""

from __future__ import annotations

import pickle

import pytest

from prift.rewards import functions
from prift.rewards.registry import get_reward, register_reward, reward_names


def chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_registry_lists_the_builtin_rewards():
    expected = {
        "math_accuracy",
        "gsm8k_numeric",
        "multiple_choice",
        "code_pass",
        "code_pass_fraction",
        "format_boxed",
        "soft_overlong",
    }
    assert expected <= set(reward_names())


def test_duplicate_names_are_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_reward("math_accuracy")(lambda prompts, completions, **kw: [])


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="math_accuracy") as err:
        get_reward("no_such_reward")
    assert "format_boxed" in str(err.value)


@pytest.mark.parametrize("path", ["prift.rewards.functions:format_boxed", "prift.rewards.functions.format_boxed"])
def test_dotted_path_fallback(path):
    assert get_reward(path) is functions.format_boxed


def test_bad_dotted_path_is_a_value_error():
    with pytest.raises(ValueError, match="cannot import"):
        get_reward("prift.rewards.functions:nope")


def test_unknown_setting_lists_accepted_ones():
    with pytest.raises(ValueError, match="timeout_s"):
        get_reward("code_pass", timeot_s=3)


def test_math_accuracy_on_strings_and_conversations():
    reward = get_reward("math_accuracy")
    completions = ["so \\boxed{85}", chat("the answer is \\boxed{\\frac{1}{2}}"), "\\boxed{7}", None, "x"]
    answers = ["85", "0.5", "8", "3", None]
    assert reward(["p"] * 5, completions, answer=answers) == [1.0, 1.0, 0.0, 0.0, None]


def test_math_accuracy_needs_its_column():
    with pytest.raises(ValueError, match="'answer'"):
        get_reward("math_accuracy")(["p"], ["\\boxed{1}"])


def test_gsm8k_numeric_reads_full_gold_solutions():
    reward = get_reward("gsm8k_numeric")
    gold = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"
    completions = ["48 + 24 = 72\n#### 72", chat("The answer is 72."), "#### 71", "\\boxed{\\frac{144}{2}}"]
    assert reward([""] * 4, completions, answer=[gold] * 4) == [1.0, 1.0, 0.0, 0.0]


def test_multiple_choice_reward():
    reward = get_reward("multiple_choice")
    completions = ["The answer is (B).", chat("Answer: E"), "\\boxed{C}", "no idea", "Answer: A"]
    assert reward([""] * 5, completions, answer=["B", "E", "D", "A", None]) == [1.0, 1.0, 0.0, 0.0, None]


def test_code_rewards_run_the_last_python_block():
    good = "Here:\n```python\ndef inc(x):\n    return x + 1\n```"
    half = "```python\ndef inc(x):\n    return 2 if x == 1 else 0\n```"
    tests = "assert inc(1) == 2\nassert inc(5) == 6\n"
    completions = [good, chat(half), "```python\nwhile True: pass\n```", "not code", good]
    rows = [tests, tests, tests, tests, None]
    assert get_reward("code_pass", timeout_s=2)([""] * 5, completions, tests=rows) == [1.0, 0.0, 0.0, 0.0, None]
    fraction = get_reward("code_pass_fraction", timeout_s=2)([""] * 5, completions, tests=rows)
    assert fraction == [1.0, 0.5, 0.0, 0.0, None]


def test_code_reward_scores_a_malformed_test_spec_zero():
    assert get_reward("code_pass")([""], ["def f(): pass"], tests=["assert (("]) == [0.0]


def test_format_boxed():
    assert get_reward("format_boxed")([""] * 3, ["\\boxed{1}", chat("\\boxed{"), "1"]) == [1.0, 0.0, 0.0]


def test_soft_overlong_matches_dapo_formula():
    reward = get_reward("soft_overlong", max_completion_len=100, soft_punish_cache=20)
    ids = [[0] * n for n in (10, 80, 90, 100, 101)]
    assert reward([""] * 5, [""] * 5, completion_ids=ids) == [0.0, 0.0, -0.5, -1.0, -1.0]


def test_bound_rewards_pickle_and_keep_their_name():
    reward = get_reward("soft_overlong", max_completion_len=10, soft_punish_cache=2)
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "soft_overlong"
    assert clone([""], [""], completion_ids=[[0] * 9]) == [-0.5]


async def scaled_length(prompts, completions, scale=1.0, **kwargs):
    """An async reward with a setting (a remote judge would be one)."""
    return [scale * len(c) for c in completions]


def test_an_async_reward_with_settings_stays_async_for_trl():
    """TRL awaits the rewards its own `is_async_callable` finds async, and calls the others; binding a setting must
    not turn an async reward into a sync one that returns an unawaited coroutine."""
    import asyncio

    from trl.trainer.utils import is_async_callable

    plain = get_reward(f"{__name__}:scaled_length")
    bound = get_reward(f"{__name__}:scaled_length", scale=2.0)
    assert is_async_callable(plain) and is_async_callable(bound)
    assert not is_async_callable(get_reward("soft_overlong", max_completion_len=10, soft_punish_cache=2))
    assert asyncio.run(bound(["p", "p"], ["ab", "abcd"])) == [4.0, 8.0]
    clone = pickle.loads(pickle.dumps(bound))
    assert is_async_callable(clone) and clone.__name__ == "scaled_length"


def test_log_metric_receives_timeouts():
    logged = {}
    get_reward("code_pass", timeout_s=1)(
        [""],
        ["while True: pass"],
        tests=["assert True"],
        log_metric=lambda name, value: logged.__setitem__(name, value),
    )
    assert logged["sandbox_timeouts"] == 1
