"""Metrics over problems with n graded samples each, and their standard errors over problems.

- ``pass@k`` (Chen et al. 2021, unbiased): per problem with n samples of which c are correct,
  ``1 - C(n-c, k) / C(n, k)``, computed as the stable product ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``
  (1.0 when ``n - c < k``); averaged over problems.
- ``avg@k``: the mean correctness of the k samples of a problem (``c/k``), averaged over problems; with
  temperature sampling it estimates pass@1 with lower variance (the PriFT paper's Avg@16).
- ``maj@k``: majority vote over the k samples' votes (samples without an answer do not vote; ties go to the vote
  seen first); the problem counts as solved when a sample of the winning vote was graded correct. A vote is the
  extracted answer, or for math the representative of its math-verify equivalence class
  (:func:`prift.eval.grading.majority_votes`), so ``\\frac12``, ``\\dfrac12`` and ``0.5`` are one vote.
- standard error over problems: ``std(scores, ddof=1) / sqrt(N)`` of the per-problem scores (None for N < 2).

Timeouts, sandbox memory kills and grading errors are counted separately from wrong answers (all score 0).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

STATUSES = ("correct", "wrong", "timeout", "memory", "error")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem: n samples, c correct (contract: ``prift.eval.metrics.pass_at_k``)."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def avg_at_k(correct: Sequence[bool]) -> float:
    """Mean correctness of one problem's samples."""
    if not correct:
        raise ValueError("avg_at_k needs at least one sample")
    return sum(map(bool, correct)) / len(correct)


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool]) -> float:
    """1.0 if the most common non-empty vote in ``answers`` (first seen wins ties) was graded correct, else 0.0."""
    votes = Counter(a.strip() for a in answers if a is not None and a.strip())
    if not votes:
        return 0.0
    top = max(votes.values())
    winner = next(a.strip() for a in answers if a is not None and a.strip() and votes[a.strip()] == top)
    return float(any(ok for a, ok in zip(answers, correct, strict=True) if a is not None and a.strip() == winner))


def mean_stderr(scores: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (sample std with ddof=1, over sqrt(N)); stderr None when N < 2."""
    n = len(scores)
    if n == 0:
        return float("nan"), None
    mean = sum(scores) / n
    if n < 2:
        return mean, None
    var = sum((s - mean) ** 2 for s in scores) / (n - 1)
    return mean, math.sqrt(var / n)


def default_ks(n: int) -> list[int]:
    """1, the powers of two below n, and n."""
    return sorted({1, n, *(2**i for i in range(1, n.bit_length()) if 2**i <= n)})


@dataclass
class ProblemSamples:
    """The graded samples of one problem, in sample order; ``answers`` are the samples' maj@k votes."""

    problem_id: str
    statuses: list[str]
    answers: list[str | None]
    subset: str | None = None

    @property
    def correct(self) -> list[bool]:
        return [s == "correct" for s in self.statuses]


def summarize(problems: Sequence[ProblemSamples], n: int, *, majority: bool = True) -> dict:
    """Metrics (value and stderr) and status counts over problems that each have exactly ``n`` samples."""
    out: dict = {"problems": len(problems), "samples": n * len(problems), "metrics": {}}
    if not problems:
        return out
    for p in problems:
        if len(p.statuses) != n:
            raise ValueError(f"problem {p.problem_id} has {len(p.statuses)} samples, expected {n}")
    scores = {f"avg@{n}": [avg_at_k(p.correct) for p in problems]}
    for k in default_ks(n):
        scores[f"pass@{k}"] = [pass_at_k(n, sum(p.correct), k) for p in problems]
    if majority and n > 1:
        scores[f"maj@{n}"] = [maj_at_k(p.answers, p.correct) for p in problems]
    for name, values in scores.items():
        mean, stderr = mean_stderr(values)
        out["metrics"][name] = {"value": mean, "stderr": stderr}
    counts = Counter(s for p in problems for s in p.statuses)
    out["counts"] = {status: counts.get(status, 0) for status in STATUSES}
    return out


def summarize_subsets(problems: Sequence[ProblemSamples], n: int, *, majority: bool = True) -> dict:
    """Per-subset summaries plus their unweighted (macro) average of each metric's value."""
    names = sorted({p.subset for p in problems if p.subset is not None})
    if not names:
        return {}
    subsets = {name: summarize([p for p in problems if p.subset == name], n, majority=majority) for name in names}
    metric_names = next(iter(subsets.values()))["metrics"].keys()
    macro = {m: sum(s["metrics"][m]["value"] for s in subsets.values()) / len(subsets) for m in metric_names}
    return {"subsets": subsets, "macro_average": macro}
