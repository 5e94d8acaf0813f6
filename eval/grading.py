"""Grade completions of one benchmark through :mod:`prift.rewards` (the only place answers are judged).

Statuses: ``correct``, ``wrong``, ``timeout`` (math-verify or sandbox wall clock), ``memory`` (sandbox memory
limit) and ``error`` (grading itself failed: bad gold, bad tests, a crash on this completion). A batch that raises
is regraded one sample at a time, so a crash costs only the sample that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prift.eval.benchmarks import Benchmark, Problem
from prift.rewards.choice import extract_choice
from prift.rewards.math import extract_answer, grade_many, vote_keys
from prift.rewards.sandbox import SandboxConfig, run_many

SANDBOX_STATUS = {"passed": "correct", "failed": "wrong", "timeout": "timeout", "memory": "memory", "error": "error"}


@dataclass
class Grade:
    status: str
    answer: str | None = None
    detail: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class GradingSettings:
    math_timeout_s: float = 10.0
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)


def _math(problems: Sequence[Problem], completions: Sequence[str], settings: GradingSettings) -> list[Grade]:
    verdicts = grade_many(completions, [p.gold for p in problems], timeout_s=settings.math_timeout_s)
    grades = []
    for completion, verdict in zip(completions, verdicts, strict=True):
        status = "correct" if verdict.equal else "timeout" if verdict.timed_out else "error" if verdict.error else "wrong"
        grades.append(Grade(status, extract_answer(completion), verdict.error or ""))
    return grades


def _choice(benchmark: Benchmark, problems: Sequence[Problem], completions: Sequence[str]) -> list[Grade]:
    grades = []
    for problem, completion in zip(problems, completions, strict=True):
        answer = extract_choice(completion, benchmark.letters, benchmark.answer_words)
        grades.append(Grade("correct" if answer == problem.gold else "wrong", answer))
    return grades


def _code(benchmark, problems: Sequence[Problem], completions: Sequence[str], settings: GradingSettings) -> list[Grade]:
    programs = [benchmark.program(p, c) for p, c in zip(problems, completions, strict=True)]
    floor = settings.sandbox.timeout_s  # --sandbox_timeout_s; a harness's own per-problem limit may raise it
    timeouts = [max(floor, benchmark.sandbox_limits(p).get("timeout_s", floor)) for p in problems]
    results = run_many(programs, [p.gold for p in problems], settings.sandbox, timeouts_s=timeouts)
    return [Grade(SANDBOX_STATUS[r.status], None, r.detail[:500],
                  {"passed": r.passed, "total": r.total, "isolation": isolation_summary(r.isolation)}) for r in results]


def isolation_summary(isolation: dict) -> dict:
    """The sandbox layers a run had (filesystem, network, pid namespace, uid, cgroup, program-side layers, how it is
    killed); see ``prift.rewards.isolation``."""
    keys = ("fs", "net", "pid", "uid", "cgroup", "program_layers", "kill", "degraded_reasons")
    return {k: isolation.get(k) for k in keys if k in isolation}


def _grade(benchmark: Benchmark, problems: Sequence[Problem], completions: Sequence[str],
           settings: GradingSettings) -> list[Grade]:
    if benchmark.task == "math":
        return _math(problems, completions, settings)
    if benchmark.task == "choice":
        return _choice(benchmark, problems, completions)
    if benchmark.task == "code":
        return _code(benchmark, problems, completions, settings)
    raise ValueError(f"{benchmark.name}: unknown task {benchmark.task!r}")


def grade(benchmark: Benchmark, problems: Sequence[Problem], completions: Sequence[str],
          settings: GradingSettings | None = None) -> list[Grade]:
    """One :class:`Grade` per (problem, completion) pair; never raises for a bad completion or row."""
    settings = settings or GradingSettings()
    try:
        return _grade(benchmark, problems, completions, settings)
    except Exception:  # noqa: BLE001 - find the sample that breaks grading, keep the rest
        grades = []
        for problem, completion in zip(problems, completions, strict=True):
            try:
                grades.append(_grade(benchmark, [problem], [completion], settings)[0])
            except Exception as exc:  # noqa: BLE001
                grades.append(Grade("error", None, f"grading failed: {type(exc).__name__}: {exc}"[:500]))
        return grades


def majority_votes(benchmark: Benchmark, answers: Sequence[Sequence[str | None]],
                   settings: GradingSettings | None = None) -> list[list[str | None]]:
    """What each sample votes for in maj@k, per problem: for math, the representative of its answer's math-verify
    equivalence class (:func:`prift.rewards.math.vote_keys`: ``\\frac12``, ``\\dfrac12`` and ``0.5`` are one vote);
    for other tasks the extracted answer itself (an option letter is already canonical)."""
    if benchmark.task != "math":
        return [list(group) for group in answers]
    settings = settings or GradingSettings()
    return vote_keys(answers, timeout_s=settings.math_timeout_s)
