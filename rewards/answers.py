"""Final-answer extraction from free-form completions, and the exact numeric fast path.

Extraction order (first that finds something wins, each takes the *last* occurrence in the text):

1. ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces; also ``\\boxed 5``),
2. ``#### N`` (GSM8K),
3. "the answer is X" / "answer: X" (up to the end of the sentence or line),
4. the last number in the text.

The numeric fast path reads GSM8K-style answers exactly, as a :class:`fractions.Fraction`: thousands commas,
``$``/``\\$``, ``%``/``\\%``, surrounding ``$...$`` and a trailing ``.`` are ignored, so ``"1,000.0"`` and
``"1000"`` are the same number. A comma is a thousands separator only in groups of three after a first group
without a leading zero; any other ``digits,digits`` (``"1,22"``, ``"0,111"``) is a decimal comma, as math-verify
reads it, and can only confirm an equality (``"1,22" == "1.22"``): unequal, it may be a pair, so math-verify decides.
Anything else (fractions, LaTeX, units, sets) is left to math-verify.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from typing import NamedTuple

from prift.core.boxed import last_boxed

_HASHES = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*:?\s*(.+?)\s*(?:\.(?:\s|$)|\n|$)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d*)?|[+-]?\.\d+")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_NOISE = re.compile(r"\\[$%!,;]|[$%]|\{,\}|\\text\{\s*\}|\s")


def _after_hashes(text: str) -> str | None:
    found = _HASHES.findall(text)
    return found[-1].strip() if found else None


def _after_answer_is(text: str) -> str | None:
    found = _ANSWER_IS.findall(text)
    return found[-1].strip() if found else None


def _last_number(text: str) -> str | None:
    found = [m.strip(",") for m in _NUMBER.findall(text)]
    return found[-1] if found else None


_EXTRACTORS: tuple[Callable[[str], str | None], ...] = (last_boxed, _after_hashes, _after_answer_is, _last_number)


def extract_answer(completion: str) -> str | None:
    """The final answer of a free-form completion (see the module docstring for the order), or ``None``."""
    for extractor in _EXTRACTORS:
        answer = extractor(completion)
        if answer:
            return answer
    return None


class Number(NamedTuple):
    """An exactly parsed number; ``percent`` records that a ``%`` sign was dropped."""

    value: Fraction
    percent: bool


def parse_number(text: str) -> Number | None:
    """Parse a plain (GSM8K-style) number exactly, or return ``None`` when ``text`` is anything richer."""
    text = text.strip()
    inner = last_boxed(text) if text.startswith(("\\boxed", "\\fbox")) else None
    text = inner if inner is not None else text
    percent = "%" in text
    cleaned = _NOISE.sub("", text).rstrip(".")
    if not _PLAIN_NUMBER.fullmatch(cleaned):
        return None
    return Number(Fraction(cleaned.replace(",", "")), percent)


def decimal_comma(text: str) -> Fraction | None:
    """The value of a number written with a decimal comma (``"1,22"`` -> 1.22), else ``None``."""
    cleaned = _NOISE.sub("", text.strip()).rstrip(".")
    if not _DECIMAL_COMMA.fullmatch(cleaned) or _PLAIN_NUMBER.fullmatch(cleaned):
        return None
    return Fraction(cleaned.replace(",", "."))


def numbers_equal(gold: str, pred: str) -> bool | None:
    """Fast-path verdict: ``True``/``False`` when both sides are plain numbers, ``None`` when it cannot decide.

    Unequal values involving a ``%`` are undecided (``10%`` may mean ``0.1``), so math-verify gets them; so are
    sides with a decimal comma unless their values are equal.
    """
    g, p = parse_number(gold), parse_number(pred)
    if g is None or p is None:
        g_value = g.value if g else decimal_comma(gold)
        p_value = p.value if p else decimal_comma(pred)
        return True if g_value is not None and g_value == p_value else None
    if g.value == p.value:
        return True
    return None if g.percent or p.percent else False
