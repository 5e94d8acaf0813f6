"""Built-in RL rewards (TRL signature), each the same verifier that evaluation uses.

| name | reward per row | gold column |
|---|---|---|
| ``math_accuracy`` | 1 if ``math.grade(completion, answer)`` else 0 | ``answer`` |
| ``gsm8k_numeric`` | 1 if the final number equals ``answer`` exactly (numeric fast path only) else 0 | ``answer`` |
| ``multiple_choice`` | 1 if ``extract_choice(completion)`` equals ``answer`` else 0 | ``answer`` (a letter) |
| ``code_pass`` | 1 if the extracted program passes every test else 0 | ``tests`` |
| ``code_pass_fraction`` | passed cases / all cases | ``tests`` |
| ``format_boxed`` | 1 if the completion contains a ``\\boxed{...}`` else 0 | none |
| ``soft_overlong`` | DAPO eq. 13: 0 if L <= Lmax - C; (Lmax - C - L) / C if L <= Lmax; -1 beyond | none (``completion_ids``) |

Gold answers written as a full GSM8K solution (``... #### 72``) are reduced to the text after the last ``####``.
A row without a gold value scores ``None`` (not applicable); a malformed completion scores 0.
Timeouts and sandbox errors are reported through TRL's ``log_metric`` when the trainer provides it.
"""

from __future__ import annotations

from collections.abc import Sequence

from prift.core.boxed import last_boxed
from prift.core.datasets import gsm8k_gold
from prift.rewards.choice import extract_choice
from prift.rewards.code import extract_code
from prift.rewards.math import grade_many, grade_numeric
from prift.rewards.registry import RewardFn, register_reward
from prift.rewards.sandbox import SandboxConfig, run_many

Rewards = list[float | None]
LETTERS = "ABCDEFGHIJ"


def completion_text(completion: object) -> str:
    """Text of a completion: a string, or the assistant messages of a conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "\n".join(
            _content(m) for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant"
        )
    return ""


def _content(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):  # multimodal-style parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _gold(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    return gsm8k_gold(text) if "####" in text else text


def _require(column: Sequence[object] | None, name: str) -> Sequence[object]:
    if column is None:
        raise ValueError(f"this reward needs a {name!r} column in the dataset")
    return column


def _log(kwargs: dict, name: str, value: float) -> None:
    log_metric = kwargs.get("log_metric")
    if callable(log_metric):
        log_metric(name, value)


@register_reward("math_accuracy", accuracy=True)
def math_accuracy(prompts: list, completions: list, answer: Sequence[object] | None = None, **kwargs) -> Rewards:
    """1.0 iff the completion's final answer is mathematically equal to ``answer`` (math-verify, gold first)."""
    answer = _require(answer, "answer")
    golds = [_gold(a) for a in answer]
    verdicts = grade_many([completion_text(c) for c in completions], ["" if g is None else g for g in golds])
    _log(kwargs, "math_timeouts", sum(v.timed_out for v in verdicts))
    return [None if g is None else float(v.equal) for g, v in zip(golds, verdicts, strict=True)]


@register_reward("gsm8k_numeric", accuracy=True)
def gsm8k_numeric(prompts: list, completions: list, answer: Sequence[object] | None = None, **kwargs) -> Rewards:
    """1.0 iff the completion's final number equals ``answer`` exactly (``1,000`` == ``1000.0``)."""
    answer = _require(answer, "answer")
    return [
        None if _gold(a) is None else float(grade_numeric(completion_text(c), _gold(a)))
        for c, a in zip(completions, answer, strict=True)
    ]


@register_reward("multiple_choice", accuracy=True)
def multiple_choice(prompts: list, completions: list, answer: Sequence[object] | None = None, **kwargs) -> Rewards:
    """1.0 iff the extracted letter equals ``answer``; letters allowed: ``A``-``D``, widened up to the gold letter."""
    answer = _require(answer, "answer")
    rewards: Rewards = []
    for completion, gold in zip(completions, answer, strict=True):
        letter = str(gold).strip().upper() if gold is not None else ""
        if len(letter) != 1 or letter not in LETTERS:
            rewards.append(None)
            continue
        letters = LETTERS[: max(4, LETTERS.index(letter) + 1)]
        rewards.append(float(extract_choice(completion_text(completion), letters) == letter))
    return rewards


def _code_reward(name: str, fraction: bool, doc: str) -> RewardFn:
    """A sandboxed code reward: all tests pass (1.0 / 0.0), or the fraction of test cases passed."""

    def reward(
        prompts: list,
        completions: list,
        tests: Sequence[object] | None = None,
        timeout_s: float = 10.0,
        memory_mb: int = 1024,
        workers: int | None = None,
        **kwargs,
    ) -> Rewards:
        config = SandboxConfig(timeout_s=timeout_s, memory_mb=memory_mb, **({"workers": workers} if workers else {}))
        tests = _require(tests, "tests")
        rows = [i for i, t in enumerate(tests) if t is not None]
        programs = [extract_code(completion_text(completions[i])) for i in rows]
        results = run_many(programs, [tests[i] for i in rows], config, stop_on_failure=not fraction)
        _log(kwargs, "sandbox_timeouts", sum(r.status == "timeout" for r in results))
        _log(kwargs, "sandbox_errors", sum(r.status == "error" for r in results))
        rewards: Rewards = [None] * len(completions)
        for i, result in zip(rows, results, strict=True):
            rewards[i] = result.pass_fraction if fraction else float(result.ok)
        return rewards

    reward.__name__ = reward.__qualname__ = name
    reward.__doc__ = doc
    return register_reward(name, accuracy=True)(reward)


code_pass = _code_reward("code_pass", False, "1.0 iff the last Python block of the completion passes all of ``tests`` "
                                              "in the sandbox.")
code_pass_fraction = _code_reward("code_pass_fraction", True, "Fraction of ``tests`` cases the completion's program "
                                                               "passes (every case runs).")


@register_reward("format_boxed")
def format_boxed(prompts: list, completions: list, **kwargs) -> Rewards:
    """1.0 iff the completion contains a complete ``\\boxed{...}``."""
    return [float(last_boxed(completion_text(c)) is not None) for c in completions]


@register_reward("soft_overlong")
def soft_overlong(
    prompts: list,
    completions: list,
    completion_ids: list | None = None,
    max_completion_len: int | None = None,
    soft_punish_cache: int = 0,
    **kwargs,
) -> Rewards:
    """DAPO's soft overlong punishment on completion token counts (see the table in the module docstring)."""
    if completion_ids is None or max_completion_len is None:
        raise ValueError("soft_overlong needs completion_ids (from TRL) and the max_completion_len setting")
    start = max_completion_len - soft_punish_cache
    return [
        0.0 if len(ids) <= start else (start - len(ids)) / soft_punish_cache if len(ids) <= max_completion_len else -1.0
        for ids in completion_ids
    ]
