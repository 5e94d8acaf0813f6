"""Multiple-choice extraction: each supported pattern, precedence, and what must stay ``None``."""

from __future__ import annotations

import pytest

from prift.rewards.choice import extract_choice


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("Reasoning...\n\\boxed{C}", "C"),
        ("so \\boxed{(B)}.", "B"),
        ("\\boxed{\\text{D}}", "D"),
        ("The answer is (A).", "A"),
        ("Thus the answer is B", "B"),
        ("Answer: D", "D"),
        ("**Answer:** **C**", "C"),
        ("Options A and B look plausible, but the answer is C.", "C"),
        ("I think the answer is A. Wait, no: the answer is D.", "D"),
        ("Let me think.\nB", "B"),
        ("Let me think.\n(C)", "C"),
        ("Final:\nA.", "A"),
        ("Answer: E", None),  # not an allowed letter
        ("The answer is a bit unclear.", None),  # the article "a" is not a choice
        ("The answer is Apple.", None),
        ("I cannot decide between A and B", None),
        ("", None),
        ("\\boxed{AB}", None),
    ],
)
def test_extract_choice(completion, expected):
    assert extract_choice(completion) == expected


def test_letters_argument_widens_and_narrows_the_choices():
    assert extract_choice("Answer: E", letters="ABCDE") == "E"
    assert extract_choice("Answer: D", letters="AB") is None


def test_boxed_wins_over_phrase():
    assert extract_choice("The answer is A... actually \\boxed{B}") == "B"


@pytest.mark.parametrize("bad", [None, 3, ["A"]])
def test_bad_input_is_none(bad):
    assert extract_choice(bad) is None
