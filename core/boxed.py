"""The last ``\\boxed{...}`` of a text: MATH's gold rule and the first answer extractor (one function for both)."""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``) in ``text``; ``None`` if absent or unbalanced."""
    matches = list(_BOXED.finditer(text))
    for match in reversed(matches):
        start = match.end()
        if start < len(text) and text[start] != "{":
            token = re.match(r"[^\s$.,;]+", text[start:])
            if token:
                return token.group(0)
            continue
        depth = 0
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[start + 1 : i].strip()
    return None
