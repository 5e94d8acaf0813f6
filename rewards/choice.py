"""Multiple-choice answer extraction (contract: ``extract_choice(completion, letters="ABCD") -> str | None``).

Patterns, strongest first; within a pattern the *last* occurrence wins (models restate options before answering):

1. ``\\boxed{X}`` (also ``\\boxed{(X)}``, ``\\boxed{\\text{X}}``),
2. "answer is (X)" / "answer is X" / "answer: X" / "Answer: **X**",
3. a final standalone letter: the last non-empty line is just ``X``, ``(X)``, ``X.`` or ``X)``.

Only letters in ``letters`` count (case-sensitive upper case, so the article "a" is never an answer); anything
else is ``None``, which grades as wrong.
"""

from __future__ import annotations

import re

from prift.core.boxed import last_boxed

_WRAPPERS = re.compile(r"\\text(?:bf)?\{|[{}()\[\]*$\s.:]")


def _letter(text: str | None, letters: str) -> str | None:
    """``text`` reduced to a single allowed letter once wrappers (``(X)``, ``**X**``, ``\\text{X}``) are removed."""
    if text is None:
        return None
    core = _WRAPPERS.sub("", text)
    return core if len(core) == 1 and core in letters else None


def _from_boxed(completion: str, letters: str) -> str | None:
    return _letter(last_boxed(completion), letters)


def _from_answer_phrase(completion: str, letters: str) -> str | None:
    choice = f"[{re.escape(letters)}]"
    phrase = re.compile(
        rf"answer(?:\s+is)?[\s*]*[:：]?[\s*]*(?:option\s+)?[(*\[]*({choice})\b[)*\]]*(?![\w'])", re.IGNORECASE
    )
    found = [m.group(1) for m in phrase.finditer(completion) if m.group(1) in letters]
    return found[-1] if found else None


def _from_last_line(completion: str, letters: str) -> str | None:
    lines = [line for line in completion.strip().splitlines() if line.strip()]
    return _letter(lines[-1], letters) if lines else None


_EXTRACTORS = (_from_boxed, _from_answer_phrase, _from_last_line)


def extract_choice(completion: str, letters: str = "ABCD") -> str | None:
    """The chosen option letter of ``completion`` (see the module docstring), or ``None``."""
    if not isinstance(completion, str):
        return None
    for extractor in _EXTRACTORS:
        choice = extractor(completion, letters)
        if choice is not None:
            return choice
    return None
