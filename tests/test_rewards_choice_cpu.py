"""Multiple-choice extraction: each supported pattern, precedence, and what must stay ``None``; lighteval's own
extractive-match regression cases (``tests/fixtures/lighteval_choice_cases.jsonl``, source commit in its first line)
scored the way lighteval scores them: the letters extracted from gold and prediction must agree."""

from __future__ import annotations

import json
from pathlib import Path

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
        # base-model continuations of "...\nAnswer:"
        (" B. Aspirin", "B"),
        (" B", "B"),
        ("**B. Aspirin 81 mg daily**", "B"),
        (" (C) Metformin\n\nQuestion: A 45-year-old man ...\nA. x\nB. y", "C"),
        ("Option B", "B"),
        ("I would go with option (D) here because of the history.", "D"),
        ("D. it can't be A or B", "D"),
        ("The answer is for sure D", "D"),
        ("It's not A because of the rash, therefore I think it's B", "B"),
        ("It could be A or B.", None),
        ("A patient with these findings needs an ECG.", None),  # the article, not option A
        # restated options, then the choice
        ("A. aspirin\nB. heparin\nC. warfarin\nD. none\nC", "C"),
        ("A. aspirin\nB. heparin\nC. warfarin\nD. none\nI choose B because of the INR.", "B"),
        # other languages
        ("La respuesta correcta es C.", "C"),
        ("Die Antwort ist B, nicht A.", "B"),
        ("答案是D", "D"),
        ("答案：A", "A"),
        ("Ответ: C", "C"),
        ("La réponse est (B).", "B"),
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


@pytest.mark.parametrize(
    ("completion", "expected"),
    [(" yes", "A"), (" no", "B"), ("Maybe.", "C"), ("No, the trial found no difference.", "B"),
     ("The answer is yes.", "A"), ("Answer: (B) no", "B"), ("A: yes", "A"), ("Nothing conclusive", None),
     ("There is no clear answer here", None)],
)
def test_pubmedqa_answer_words_read_as_their_letters(completion, expected):
    assert extract_choice(completion, "ABC", ("yes", "no", "maybe")) == expected


def test_answer_words_must_match_the_letters():
    with pytest.raises(ValueError, match="2 answer words for 3 letters"):
        extract_choice("yes", "ABC", ("yes", "no"))


LIGHTEVAL = Path(__file__).parent / "fixtures" / "lighteval_choice_cases.jsonl"


def _lighteval_cases() -> tuple[dict, list[dict]]:
    header, *rows = (json.loads(line) for line in LIGHTEVAL.read_text(encoding="utf-8").splitlines())
    return header["source"], rows


def test_lighteval_fixture_names_its_source():
    source, rows = _lighteval_cases()
    assert source["repo"] == "https://github.com/huggingface/lighteval" and len(source["commit"]) == 40
    assert len(rows) == 15


@pytest.mark.parametrize("row", _lighteval_cases()[1], ids=lambda row: f"{row['test']}:{row['case']['pred'][:30]}")
def test_agrees_with_lighteval_extractive_match_cases(row):
    case = row["case"]
    gold, pred = extract_choice(case["gold"]), extract_choice(case["pred"])
    assert (gold is not None and gold == pred) == bool(case["expected"]), (gold, pred)
