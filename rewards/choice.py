"""Multiple-choice answer extraction (contract: ``extract_choice(completion, letters="ABCD", words=()) -> str | None``).

Rules, strongest first; the first rule that finds an answer decides:

1. ``\\boxed{X}`` (also ``\\boxed{(X)}``, ``\\boxed{\\text{X}}``), the last one;
2. an answer phrase, the last one: "answer is (X)", "answer: **X**", "correct option is X", "the answer is for sure
   X", and the same in French, Spanish, Portuguese, Italian, German, Russian, Chinese, Japanese and Hindi
   ("réponse est X", "respuesta correcta es X", "Antwort ist X", "答案是X", ...), the letter possibly on the next line;
3. the last non-empty line is only ``X``, ``(X)``, ``X.`` or ``X)``;
4. the first line that *starts* with an option marker: ``X.``, ``X)``, ``(X)``, ``**X. ...**``, ``X:``, ``X`` then a
   capitalised word or a CJK character (``"C Cecile"``, ``"B。不是 A"``), a lone ``X`` (a base model's ``" B"``);
   lines of a restated option list (a marker line next to the marker line of the neighbouring letter) are skipped;
5. "Option X" / "choice X", the last one;
6. ``X`` right after "is", "it's", "be", "choose", "pick", "select" or "go with", the last one, unless it is one of
   several ("it can't be A or B").

Only letters in ``letters`` count, in upper case (the article "a" is never an answer, nor "A" in "A patient").
``words`` are the options' answer words in letter order (PubMedQA: ``("yes", "no", "maybe")`` for A, B, C): rules 2-4
also read a word, case-insensitively, as its letter (``" yes"`` -> ``A``). Nothing found is ``None``, graded wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from prift.core.boxed import last_boxed

_WRAPPERS = re.compile(r"\\text(?:bf)?\{|[{}()\[\]*$\s.:]")
_ANCHOR = (r"(?i:(?:final\s+|correct\s+)?answer(?:\s+is)?|correct\s+(?:option|choice)(?:\s+is)?"
           r"|r[ée]ponse(?:\s+correcte)?(?:\s+est)?|respuesta(?:\s+correcta)?(?:\s+es)?"
           r"|resposta(?:\s+correta)?(?:\s+[ée])?|risposta(?:\s+corretta)?(?:\s+[èe])?|antwort(?:\s+ist)?"
           r"|ответ(?:\s+[-—])?|答案(?:是|为)?|答えは|正解は|उत्तर(?:\s+है)?)")
_FILLER = r"(?:(?i:for\s+sure|definitely|clearly|probably|likely|option|choice|letter)\s+)*"
_MARKER_END = r"(?:[)\]]|[.:：。、]|(?=\s*$)|(?=[ \t]+[A-Z0-9*(\[])|(?=[^\x00-\x7f]))"
_COPULA = r"(?i:\b(?:is|it's|it is|be|choose|pick|select|go\s+with))"


def _patterns(letters: str, words: Sequence[str]) -> dict[str, re.Pattern]:
    letter = f"[{re.escape(letters)}]"
    word = rf"|(?i:\b({'|'.join(map(re.escape, words))})\b)" if words else ""
    return {
        "phrase": re.compile(rf"{_ANCHOR}[\s*:：]*{_FILLER}[(*\[]*(?:({letter})(?![\w']){word})"),
        "marker": re.compile(rf"^[ \t*#>]*(?:[(\[]?({letter}){_MARKER_END}{word})", re.MULTILINE),
        "option": re.compile(rf"(?i:\b(?:option|choice))\s*[(\[]?({letter})(?![\w'])"),
        "copula": re.compile(rf"{_COPULA}\s+[(*\[]*({letter})(?![\w'])(?!\s*(?:,|or|and)\s*[(\[]?{letter}\b)"),
    }


def _found(match: re.Match, letters: str, words: Sequence[str]) -> str:
    """The letter a match names: its letter group, else its answer word's letter."""
    if match.group(1):
        return match.group(1)
    return letters[[w.lower() for w in words].index(match.group(2).lower())]


def _alone(text: str | None, letters: str, words: Sequence[str]) -> str | None:
    """``text`` reduced to a single allowed letter (or answer word) once wrappers (``(X)``, ``**X**``) are removed."""
    if text is None:
        return None
    core = _WRAPPERS.sub("", text)
    if len(core) == 1 and core in letters:
        return core
    lowered = [w.lower() for w in words]
    return letters[lowered.index(core.lower())] if core.lower() in lowered else None


def _first_marker(completion: str, pattern: re.Pattern, letters: str, words: Sequence[str]) -> str | None:
    """Rule 4: the first option-marker line that is not part of a restated option list."""
    lines = [line for line in completion.splitlines() if line.strip()]
    marked = [(m := pattern.match(line)) and _found(m, letters, words) for line in lines]

    def listed(i: int) -> bool:
        here = letters.index(marked[i])
        return ((i > 0 and marked[i - 1] is not None and letters.index(marked[i - 1]) == here - 1)
                or (i + 1 < len(marked) and marked[i + 1] is not None and letters.index(marked[i + 1]) == here + 1))

    return next((m for i, m in enumerate(marked) if m is not None and not listed(i)), None)


def extract_choice(completion: str, letters: str = "ABCD", words: Sequence[str] = ()) -> str | None:
    """The chosen option letter of ``completion`` (see the module docstring for the rules), or ``None``."""
    if not isinstance(completion, str):
        return None
    if words and len(words) != len(letters):
        raise ValueError(f"extract_choice: {len(words)} answer words for {len(letters)} letters {letters!r}")
    boxed = _alone(last_boxed(completion), letters, ())
    if boxed is not None:
        return boxed
    patterns = _patterns(letters, words)
    phrases = list(patterns["phrase"].finditer(completion))
    if phrases:
        return _found(phrases[-1], letters, words)
    lines = [line for line in completion.strip().splitlines() if line.strip()]
    last_line = _alone(lines[-1], letters, words) if lines else None
    if last_line is not None:
        return last_line
    marker = _first_marker(completion, patterns["marker"], letters, words)
    if marker is not None:
        return marker
    for rule in ("option", "copula"):
        found = [m.group(1) for m in patterns[rule].finditer(completion)]
        if found:
            return found[-1]
    return None
