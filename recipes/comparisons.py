"""The report's comparisons of SFT inits: per-init intervals over problems and seeds, paired init-vs-init
differences before RL, after RL and in RL gain (called resolved only when the 95% interval excludes 0, and said so
in words), and the RL-readiness predictors ranked against the realised RL gain (`prift.recipes.readiness`).

Every function reads a :class:`prift.recipes.report.RunData` and returns table rows; intervals are the two-level
bootstrap of `prift.eval.paired` (problems and seeds resampled).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from prift.eval.paired import paired_bootstrap
from prift.recipes import readiness
from prift.recipes.pipeline import seeded

if TYPE_CHECKING:
    from prift.recipes.report import RunData

Rows = list[list[str]]


def _interval(rows: list[list[float]]):
    """The mean over problems and seeds of `rows` [problems][seeds] and its two-level bootstrap interval."""
    return paired_bootstrap(rows, [[0.0] * len(r) for r in rows])


def _ci(diff, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{100 * diff.mean:{sign}.1f} [{100 * diff.low:{sign}.1f}, {100 * diff.high:{sign}.1f}]"


def seed_score_rows(data: RunData, bench: str) -> Rows:
    """Per init: mean pre-RL, post-RL and RL gain over problems and seeds with 95% intervals, and the verdict."""
    rows = []
    for init in data.inits:
        found = {phase: _interval(list(m.values())) for phase, m in data.matrices(init, bench).items() if len(m) > 1}
        cells = [_ci(found[p], p == "RL gain") if p in found else "—" for p in ("pre-RL", "post-RL", "RL gain")]
        gain = found.get("RL gain")
        verdict = "—" if gain is None else gain.describe(f"{init} after RL", f"{init} before RL")
        rows.append([init, *cells, verdict, data.no_variance(init), data.spent(init)])
    return rows


def paired_rows(data: RunData, bench: str) -> Rows:
    """Every init against the baseline (`nll` when it ran, else the first init): the paired difference of their
    per-problem avg@n before RL, after RL and in RL gain (each problem's post - pre), with its 95% bootstrap
    interval over problems and seeds, and the verdict in words."""
    baseline = "nll" if "nll" in data.inits else data.inits[0]
    matrices = {init: data.matrices(init, bench) for init in data.inits}
    rows = []
    for init in (i for i in data.inits if i != baseline):
        for phase in ("pre-RL", "post-RL", "RL gain"):
            mine, theirs = matrices[init].get(phase), matrices[baseline].get(phase)
            shared = sorted(set(mine or ()) & set(theirs or ()))
            if len(shared) < 2:
                continue
            diff = paired_bootstrap([mine[p] for p in shared], [theirs[p] for p in shared])
            rows.append([f"{init} − {baseline}", phase, f"{100 * diff.mean:+.1f}",
                         f"{100 * diff.low:+.1f} to {100 * diff.high:+.1f}",
                         diff.describe(f"{init} ({phase})", baseline)])
    return rows


def _over(data: RunData) -> str:
    return "problems, one seed" if len(data.seeds) == 1 else f"problems and {len(data.seeds)} seeds"


def paired_sections(data: RunData) -> list[tuple[str, list[str], Rows]]:
    return [(f"{bench}: paired differences of per-problem {data.metric(bench)} (points; 95% bootstrap interval over "
             f"{_over(data)})", ["comparison", "phase", "difference", "95% interval", "verdict"], rows)
            for bench in data.benchmarks if (rows := paired_rows(data, bench))]


def resolved_section(sections: list[tuple[str, list[str], Rows]]) -> tuple[str, None, Rows]:
    """The differences whose interval excludes 0, in words (from the verdict column of the given tables); no header:
    the report lists the sentences."""
    verdicts = [r[header.index("verdict")] for _, header, rows in sections if "verdict" in (header or ()) for r in rows
                if r[header.index("verdict")] != "—"]
    resolved = [[v] for v in verdicts if v.endswith(": resolved")]
    summary = [f"{len(resolved)} of {len(verdicts)} differences are resolved (their 95% interval excludes 0); "
               "the others are not resolved: their intervals include 0"]
    return "Resolved differences", None, [summary, *resolved]


def readiness_points(data: RunData, bench: str) -> list[tuple[str, int | None, dict[str, float], float]]:
    """(init, seed, predictor -> value, RL gain on `bench`) for every SFT init and seed that has an RL gain."""
    points = []
    for init in data.variants:
        gains = data.matrices(init, bench).get("RL gain")
        for i, seed in enumerate(data.seeds):
            values = {}
            ready = seeded(f"eval/ready-{init}", seed)
            if rbench := next(iter((data.evals.get(ready) or {}).get("results", {})), None):
                n, rows = data.samples(ready, rbench)
                correct = [[r["status"] == "correct" for r in s] for s in rows.values()]
                values.update(readiness.eval_predictors(correct, [[r.get("answer") for r in s] for s in rows.values()],
                                                        n))
            checkpoint = (data.diagnostics_by_seed.get(seed) or {}).get("checkpoints", {}).get(init, {})
            values.update({name: checkpoint[key] for name, key in readiness.DIAGNOSTIC_PREDICTORS.items()
                           if key in checkpoint})
            if gains and values:
                points.append((init, seed, values, sum(g[i] for g in gains.values()) / len(gains)))
    return points


def readiness_sections(data: RunData) -> list[tuple[str, list[str], Rows]]:
    """The predictors per SFT init (means over seeds), then each predictor's ranking of the inits and its Spearman
    correlation with the realised RL gain of the first benchmark over (init, seed) points."""
    bench = data.benchmarks[0] if data.benchmarks else None
    points = readiness_points(data, bench) if bench else []
    if not points:
        return []
    names = list(dict.fromkeys(k for _, _, values, _ in points for k in values))

    def mean(init: str, name: str) -> float:
        values = [v[name] for i, _, v, _ in points if i == init and name in v]
        return sum(values) / len(values) if values else math.nan

    inits = list(dict.fromkeys(p[0] for p in points))
    gain = {init: sum(g for i, _, _, g in points if i == init) / sum(1 for p in points if p[0] == init)
            for init in inits}
    table = [[init, *[f"{mean(init, n):.3f}" for n in names], f"{100 * gain[init]:+.1f}"] for init in inits]
    ranks = []
    for name in names:
        pairs = [(v[name], g) for _, _, v, g in points if name in v]
        rho = readiness.spearman(*zip(*pairs, strict=True))
        low, high = readiness.spearman_interval(*zip(*pairs, strict=True))
        order = " > ".join(sorted(inits, key=lambda i: -mean(i, name)))
        constant = "— (a side is constant)"
        ranks.append([name, order, constant if math.isnan(rho) else f"{rho:+.2f}",
                      constant if math.isnan(low) else f"{low:+.2f} to {high:+.2f}", str(len(pairs))])
    return [(f"RL-readiness predictors per SFT init (mean over {len(data.seeds)} seed(s)); RL gain on {bench} (points)",
             ["init", *names, "RL gain"], table),
            (f"Predictors ranked (highest first) and their Spearman rho with the RL gain on {bench} over (init, seed) "
             "points, 95% bootstrap interval", ["predictor", "inits, highest first", "Spearman rho", "95% interval",
                                                 "points"], ranks)]
