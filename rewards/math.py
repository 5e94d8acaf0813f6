"""Math answer verification shared by RL rewards and evaluation.

Contracts (docs/design.md):

- ``math_equal(gold, pred) -> bool``: two answer strings (LaTeX with or without ``$``, ``\\boxed{}``, plain
  numbers); never hangs, never raises on bad input.
- ``grade(completion, gold) -> bool``: extract the final answer of a free-form completion (``\\boxed{}``,
  ``#### N``, "the answer is", last number; see :mod:`prift.rewards.answers`) and compare it with ``gold``.

How a pair is decided: when both sides are plain numbers the exact numeric fast path answers in microseconds
(``42.0 == 42``, ``1,000 == 1000``, ``$18 == 18``); otherwise math-verify decides, gold first, in a worker
process with a hard timeout (:mod:`prift.rewards.math_workers`). A timeout grades as wrong and is counted
separately (``Verdict.timed_out``, ``VerifierPool.timeouts``). The batch APIs send all undecided pairs to the
worker pool at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from prift.rewards.answers import extract_answer, numbers_equal
from prift.rewards.math_workers import Verdict, VerifierPool, default_pool

__all__ = ["Verdict", "check_many", "extract_answer", "grade", "grade_many", "grade_numeric", "math_equal",
           "vote_keys"]


def _as_text(value: object) -> str | None:
    """Answers may arrive as numbers from a dataset column; ``None`` and containers are not answers."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return None


def _fast(gold: object, pred: object) -> Verdict | None:
    """A verdict that needs no math-verify (missing answer or plain numbers), else ``None``."""
    gold_text, pred_text = _as_text(gold), _as_text(pred)
    if not gold_text or not gold_text.strip():
        return Verdict(False, error=f"gold is not an answer: {gold!r:.80}")
    if not pred_text or not pred_text.strip():
        return Verdict(False)
    decided = numbers_equal(gold_text, pred_text)
    return None if decided is None else Verdict(decided)


def check_many(
    golds: Sequence[object],
    preds: Sequence[object],
    *,
    pool: VerifierPool | None = None,
    timeout_s: float | None = None,
) -> list[Verdict]:
    """Verdicts for ``math_equal`` over parallel lists: fast path first, the rest in parallel in the pool."""
    verdicts = [_fast(g, p) for g, p in zip(golds, preds, strict=True)]
    pending = [i for i, v in enumerate(verdicts) if v is None]
    if pending:
        pool = pool or default_pool()
        slow = pool.verify_many([(str(golds[i]), str(preds[i])) for i in pending], timeout_s)
        for i, verdict in zip(pending, slow, strict=True):
            verdicts[i] = verdict
    return verdicts


def math_equal(gold: str, pred: str) -> bool:
    """True iff ``pred`` is mathematically equal to ``gold``; wrong, on timeout or on bad input."""
    return check_many([gold], [pred])[0].equal


def grade_many(
    completions: Sequence[object],
    golds: Sequence[object],
    *,
    pool: VerifierPool | None = None,
    timeout_s: float | None = None,
) -> list[Verdict]:
    """Verdicts for ``grade`` over parallel lists (one bad completion only fails its own row)."""
    preds = [extract_answer(c) if isinstance(c, str) else None for c in completions]
    return check_many(golds, preds, pool=pool, timeout_s=timeout_s)


def grade(completion: str, gold: str) -> bool:
    """True iff the final answer extracted from ``completion`` equals ``gold`` (see the module docstring)."""
    return grade_many([completion], [gold])[0].equal


def grade_numeric(completion: str, gold: str) -> bool:
    """GSM8K-style grading through the numeric fast path only: both sides must be plain numbers and equal."""
    pred = extract_answer(completion) if isinstance(completion, str) else None
    gold_text = _as_text(gold)
    return bool(pred and gold_text and numbers_equal(gold_text, pred))


def vote_keys(
    groups: Sequence[Sequence[str | None]],
    *,
    pool: VerifierPool | None = None,
    timeout_s: float | None = None,
) -> list[list[str | None]]:
    """Each group's answers (one problem's samples) mapped to the representative of their ``math_equal`` class,
    so that a majority vote counts ``\\frac12``, ``\\dfrac12`` and ``0.5`` as one answer.

    Rule: answers are stripped; identical strings are one class without asking the verifier. Going through a
    group's distinct answers in order of first appearance, an answer joins the class of the earliest representative
    it equals (``math_equal(representative, answer)``, the representative as gold), else it becomes a new
    representative. Missing or blank answers stay ``None`` (they do not vote). All pairs of all groups go to the
    verifier in one batch.
    """
    distinct = [list(dict.fromkeys(a.strip() for a in group if isinstance(a, str) and a.strip())) for group in groups]
    pairs = [(g, i, j) for g, answers in enumerate(distinct) for j in range(len(answers)) for i in range(j)]
    verdicts = check_many([distinct[g][i] for g, i, _ in pairs], [distinct[g][j] for g, _, j in pairs],
                          pool=pool, timeout_s=timeout_s)
    equal = {pair for pair, verdict in zip(pairs, verdicts, strict=True) if verdict.equal}
    keys = []
    for g, (group, answers) in enumerate(zip(groups, distinct, strict=True)):
        representative: dict[str, str] = {}
        for j, answer in enumerate(answers):
            earlier = (answers[i] for i in range(j) if representative[answers[i]] == answers[i] and (g, i, j) in equal)
            representative[answer] = next(earlier, answer)
        keys.append([representative[a.strip()] if isinstance(a, str) and a.strip() else None for a in group])
    return keys
