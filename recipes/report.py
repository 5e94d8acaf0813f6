"""The run report of a pipeline run folder: `report/report.{md,html}` plus PNGs, all read back from stage files.

Sections: per init and benchmark the pre-RL and post-RL score (± stderr over problems) and the RL gain, with the
RL budget actually spent beside them; with several benchmarks, the unweighted mean over them (the PriFT paper's
"Avg" column: avg@n and pass@n, stderr = sqrt(sum se_b^2) / B) beside the recipe's `published` numbers; every eval run (the `prift report` table, reused from `prift.eval.report`);
RL reward curves of every init on one plot; pass@k curves; the PriFT paper's diagnostics (Fig 1a, 3a, 5); the
stages with their status and wall time. The HTML embeds every PNG; `summary.png` is the one-figure overview.

Init `base` is the base model: its pre-RL score is `eval/base`, its post-RL score `eval/rl-base` (the
rl_from_base control arm).

With several seeds (stages `<name>/seed<s>`) every score is the mean over problems and seeds with its 95% two-level
bootstrap interval (problems and seeds resampled, `prift.eval.paired`), every difference (init vs init before and
after RL, each init's RL gain, init vs init in RL gain) is paired over problems and seeds, and a difference is called
resolved only when its interval excludes 0 (those tables: `prift.recipes.comparisons`). The RL-readiness section
(`prift.recipes.readiness`) ranks the SFT inits by each predictor and gives its Spearman correlation with the
realised RL gain over (init, seed) points.
Figures show the first seed.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from prift.eval.metrics import pass_at_k
from prift.eval.report import build_table
from prift.eval.report import plot as plot_eval_table
from prift.recipes import plots
from prift.recipes.comparisons import paired_sections, readiness_sections, resolved_section, seed_score_rows
from prift.recipes.pipeline import SUMMARY_FILE, seeded, split_seed

Rows = list[list[str]]
NO_VARIANCE = "RL steps without reward variance"
CAPTIONS = {  # figure name prefix -> heading in the report
    "summary": "Overview",
    "scores_": "Pre- vs post-RL score per init:",
    "reward_curves": "RL reward curves of every init (one budget)",
    "rl_validation": "Held-out validation during RL, every init (prift's evaluators, outside the budget)",
    "pass_at_k_": "pass@k curves:",
    "fig1a_training_correlation": "Fig 1a over training: online vs reference log-probabilities, per SFT step",
    "fig1b_near_deterministic": "Fig 1b over training: near-deterministic response tokens, per SFT step",
    "training_": "Over SFT steps, per variant:",
    "fig1a_correlation": "Fig 1a: online vs reference target probabilities of the SFT checkpoints",
    "fig3a_entropy": "Fig 3a: token-entropy distributions of the SFT checkpoints",
    "fig5_heatmap": "Fig 5: one held-out example's token weights and probabilities",
    "fig5_trajectory_": "Fig 5 across the saved SFT checkpoints:",
    "all_evals": "Every eval run",
}


def caption(name: str) -> str:
    prefix = next(p for p in CAPTIONS if name.startswith(p))
    return CAPTIONS[prefix] + (f" {name[len(prefix):]}" if prefix.endswith("_") else "")


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def primary_metric(result: dict) -> str:
    n = result.get("sampling", {}).get("n", 1)
    return "pass@1" if n == 1 else f"avg@{n}"


def _cell(results: dict | None, bench: str, name: str | None = None) -> tuple[float, float | None] | None:
    """(value, stderr) of metric `name` (default: the primary one) of `bench` in an eval's results.json."""
    result = (results or {}).get("results", {}).get(bench)
    if not result:
        return None
    metric = result["metrics"].get(name or primary_metric(result))
    return (metric["value"], metric["stderr"]) if metric else None


def _mean(cells: list[tuple[float, float | None] | None]) -> tuple[float, float | None] | None:
    """Unweighted mean of per-benchmark scores; None unless every benchmark has one (a partial mean misleads)."""
    if not cells or any(c is None for c in cells):
        return None
    errors = [c[1] for c in cells]
    stderr = None if None in errors else math.sqrt(sum(e * e for e in errors)) / len(cells)
    return sum(c[0] for c in cells) / len(cells), stderr


def _fmt(cell: tuple[float, float | None] | None) -> str:
    if cell is None:
        return "—"
    value, stderr = cell
    return f"{100 * value:.1f}" + (f" ± {100 * stderr:.1f}" if stderr is not None else "")


class RunData:
    """Everything the report shows, read from `<run>/pipeline.json` and the stage output folders."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.summary = _json(self.run_dir / SUMMARY_FILE)
        if self.summary is None:
            raise FileNotFoundError(f"{self.run_dir} has no {SUMMARY_FILE}: not a `prift run` folder")
        self.stages = {s["name"]: s for s in self.summary["stages"]}
        self.evals = {name: _json(Path(s["output"]) / "results.json") for name, s in self.stages.items()
                      if s["kind"] == "eval" and s["status"] in ("done", "skipped")}
        self.rl = {name.split("/", 1)[1]: _json(Path(s["output"]) / "run.json") for name, s in self.stages.items()
                   if s["kind"] == "rl" and s["status"] in ("done", "skipped")}
        self.sft = {name.split("/", 1)[1]: _json(Path(s["output"]) / "run.json") for name, s in self.stages.items()
                    if s["kind"] == "sft" and s["status"] in ("done", "skipped")}
        self.seeds = sorted({s for s in (split_seed(n)[1] for n in self.stages) if s is not None}) or [None]
        self.diagnostics_by_seed = {seed: _json(Path(d["output"]) / "diagnostics.json")
                                    for seed in self.seeds if (d := self.stages.get(seeded("diagnostics", seed)))
                                    and d["status"] in ("done", "skipped")}
        self.diagnostics = self.diagnostics_by_seed.get(self.seeds[0])
        variants = list(dict.fromkeys(split_seed(n)[0].split("/", 1)[1] for n in self.stages if n.startswith("sft/")))
        self.inits = variants + ["base"]
        self.variants = variants
        self.benchmarks = list(dict.fromkeys(b for name, r in self.evals.items() if r and not
                                             name.startswith("eval/ready-") for b in r.get("results", {})))

    def metric(self, bench: str) -> str:
        return next(primary_metric(r["results"][bench]) for r in self.evals.values() if r and bench in r["results"])

    def phases(self, init: str, seed: int | None = None) -> dict[str, str]:
        """The eval stages of `init` under `seed` (default: the first); the base model's pre-RL eval is shared."""
        seed = self.seeds[0] if seed is None else seed
        pre = "eval/base" if init == "base" else seeded(f"eval/sft-{init}", seed)
        return {"pre-RL": pre, "post-RL": seeded(f"eval/rl-{init}", seed)}

    def scores(self, bench: str) -> dict[str, dict[str, tuple[float, float | None] | None]]:
        return {init: {phase: _cell(self.evals.get(stage), bench) for phase, stage in self.phases(init).items()
                       if stage in self.stages} for init in self.inits}

    def spent(self, init: str) -> str:
        texts = []
        for seed in self.seeds:
            record = self.rl.get(seeded(init, seed))
            if record:
                budget, spent = record["budget"], record["budget"]["spent"]
                texts.append(f"{spent.get(budget['unit'])}/{budget['amount']} {budget['unit']} ({spent['completions']} "
                             f"completions, {spent['tokens']} tokens, {spent['wall_time_s']:.0f} s)")
        return "; ".join(texts) or "—"

    def no_variance(self, init: str) -> str:
        """The share of `init`'s RL steps whose prompt groups had no reward variance (TRL's frac_reward_zero_std,
        mean over logged steps; per seed): those groups have zero advantage and teach nothing."""
        texts = []
        for seed in self.seeds:
            curve = ((self.rl.get(seeded(init, seed)) or {}).get("reward_curve") or {}).get("frac_reward_zero_std")
            if curve and curve.get("points"):
                texts.append(f"{100 * sum(v for _, v in curve['points']) / len(curve['points']):.0f}%")
        return ", ".join(texts) or "—"

    def prompt_order_note(self) -> str | None:
        """Whether every RL init trained on the same prompts in the same order under each seed (from the budget's
        order digests; seeds draw their own order)."""
        orders = {init: r["budget"]["spent"]["main_prompt_order"]["sha256"] for init, r in self.rl.items() if r}
        if len(orders) < 2:
            return None
        if all(len({d for i, d in orders.items() if split_seed(i)[1] == seed}) == 1 for seed in self.seeds):
            inits = len(orders) // len(self.seeds)
            if len(self.seeds) == 1:
                return f"RL prompt order: identical for all {inits} inits (sha256 {next(iter(orders.values()))[:12]})"
            return f"RL prompt order: identical for all {inits} inits under each of the {len(self.seeds)} seeds"
        return "RL prompt order DIFFERS between inits: " + ", ".join(f"{i}={d[:12]}" for i, d in orders.items())

    def reward_curves(self) -> dict[str, list]:
        return {init: r["reward_curve"]["reward"]["points"] for init, r in self.rl.items()
                if r and "reward" in r.get("reward_curve", {})}

    def validation_curves(self) -> tuple[str | None, dict[str, list[tuple[int, float]]]]:
        """The held-out metric validated during RL (its name, and (step, value) per init that validated)."""
        records = {init: (r or {}).get("validation") for init, r in self.rl.items()}
        records = {init: v for init, v in records.items() if v and v.get("metric")}
        metric = next((v["metric"] for v in records.values()), None)
        return metric, {init: [(h["step"], h[v["metric"]]) for h in v["history"] if v["metric"] in h]
                        for init, v in records.items() if v["metric"] == metric}

    def training_curves(self, metric: str) -> dict[str, list[tuple[int, float]]]:
        """(step, value) of an SFT training metric per variant, from each run.json's log history (variants that
        logged it)."""
        curves = {variant: [(h["step"], h[metric]) for h in (r or {}).get("log_history", []) if metric in h]
                  for variant, r in self.sft.items()}
        return {variant: points for variant, points in curves.items() if points}

    def samples(self, stage: str, bench: str) -> tuple[int, dict[str, list[dict]]] | None:
        """(samples per problem n, each problem's sample rows) of `bench` in an eval stage, from its samples file."""
        result = (self.evals.get(stage) or {}).get("results", {}).get(bench)
        if not result:
            return None
        rows: dict[str, list[dict]] = {}
        for line in (Path(self.stages[stage]["output"]) / result["samples_file"]).read_text().splitlines():
            row = json.loads(line)
            rows.setdefault(row["problem_id"], []).append(row)
        return result["sampling"]["n"], rows

    def correct(self, stage: str, bench: str) -> tuple[int, dict[str, list[bool]]] | None:
        """(samples per problem n, each problem's sample correctness) of `bench` in an eval stage."""
        found = self.samples(stage, bench)
        return None if found is None else (found[0], {p: [r["status"] == "correct" for r in rows]
                                                     for p, rows in found[1].items()})

    def pass_at_k(self, bench: str) -> dict[str, list[float]]:
        """Mean pass@k over problems for k = 1..n, per eval stage that ran `bench`."""
        curves = {}
        for stage in self.evals:
            if (found := self.correct(stage, bench)) is None:
                continue
            n, correct = found
            counts = [sum(c) for c in correct.values() if len(c) == n]
            if counts:
                curves[stage] = [sum(pass_at_k(n, c, k) for c in counts) / len(counts) for k in range(1, n + 1)]
        return curves

    def problem_scores(self, stage: str, bench: str) -> dict[str, float] | None:
        """Each problem's avg@n (mean correctness of its samples) of `bench` in an eval stage."""
        found = self.correct(stage, bench) if stage in self.stages else None
        return None if found is None else {p: sum(c) / len(c) for p, c in found[1].items() if c}

    def matrices(self, init: str, bench: str) -> dict[str, dict[str, list[float]]]:
        """phase -> problem -> [avg@n under each seed] (problems every seed scored): pre-RL, post-RL and the RL
        gain (post - pre per problem and seed), for the phases every seed ran."""
        out = {}
        for phase in ("pre-RL", "post-RL"):
            per_seed = [self.problem_scores(self.phases(init, seed)[phase], bench) for seed in self.seeds]
            if all(per_seed):
                shared = set.intersection(*(set(scores) for scores in per_seed))
                out[phase] = {p: [scores[p] for scores in per_seed] for p in sorted(shared)}
        if len(out) == 2:
            pre, post = out["pre-RL"], out["post-RL"]
            out["RL gain"] = {p: [b - a for a, b in zip(pre[p], post[p], strict=True)] for p in post if p in pre}
        return out


def score_rows(data: RunData, bench: str) -> Rows:
    if len(data.seeds) > 1:
        return seed_score_rows(data, bench)
    rows = []
    for init, cells in data.scores(bench).items():
        pre, post = cells.get("pre-RL"), cells.get("post-RL")
        gain = "—"
        if pre and post:
            err = math.hypot(pre[1] or 0.0, post[1] or 0.0)
            gain = f"{100 * (post[0] - pre[0]):+.1f} ± {100 * err:.1f}"
        rows.append([init, _fmt(pre), _fmt(post), gain, data.no_variance(init), data.spent(init)])
    return rows


def mean_metrics(data: RunData) -> list[str]:
    """The metrics averaged over benchmarks: the primary one, and pass@n when n > 1 (the paper's Avg@16 / Pass@16)."""
    first = data.metric(data.benchmarks[0])
    return [first] if first == "pass@1" else [first, first.replace("avg@", "pass@")]


def mean_section(data: RunData) -> tuple[str, list[str], Rows]:
    """Per init: the mean over every benchmark of each metric before and after RL, then the published numbers."""
    metrics = mean_metrics(data)
    published = data.summary.get("published") or {}
    header = ["init"] + [f"{phase} {m}" for m in metrics for phase in ("pre-RL", "post-RL")]
    header += [f"published {m}" for m in metrics] if published else []
    rows = []
    for init in data.inits:
        row = [init]
        for metric in metrics:
            for phase in ("pre-RL", "post-RL"):
                stage = data.phases(init)[phase]
                results = data.evals.get(stage) if stage in data.stages else None
                row.append(_fmt(_mean([_cell(results, b, metric) for b in data.benchmarks]) if results else None))
        if published:
            scores = published.get("scores", {}).get(init, {})
            row += [f"{scores[m]:.2f}" if m in scores else "—" for m in metrics]
        rows.append(row)
    title = f"Mean over {', '.join(data.benchmarks)} (%)"
    if published:
        title += f"; published (SFT checkpoints): {published.get('source', 'the recipe')}"
    return title, header, rows


def stage_rows(data: RunData) -> Rows:
    return [[s["name"], s["action"], s["status"], f"{s['wall_s']:.0f}", s.get("error") or ""]
            for s in data.summary["stages"]]


def diagnostics_rows(data: RunData) -> Rows:
    checkpoints = (data.diagnostics or {}).get("checkpoints", {})
    return [[name, f["method"], f"{f['pearson']:.3f}", f"{f['spearman']:.3f}", f"{f['mean_entropy']:.3f}"]
            for name, f in checkpoints.items()]


def eval_rows(data: RunData) -> tuple[list[str], Rows]:
    names = [n for n, r in data.evals.items() if r]
    if not names:
        return ["checkpoint"], []
    table = build_table([Path(data.stages[n]["output"]) for n in names], names)
    header = ["eval run"] + [f"{b} {m}" for b, m in table.columns]
    return header, [[row] + [_fmt(table.cells.get((row, b, m))) for b, m in table.columns] for row in table.rows]


def md_table(header: list[str] | None, rows: Rows) -> str:
    """A markdown table; without a header, a bulleted list of each row's first cell (a section of sentences)."""
    if header is None:
        return "".join(f"- {r[0]}\n" for r in rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def html_table(header: list[str] | None, rows: Rows) -> str:
    if header is None:
        return "<ul>" + "".join(f"<li>{html.escape(r[0])}</li>" for r in rows) + "</ul>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


# figure name -> (SFT metric logged during training, y label): the paper's Fig 1a/1b as curves over SFT steps, and
# the other training-time diagnostics (in their own figures, not the summary)
TRAINING_CURVES = {
    "fig1a_training_correlation": ("online_reference_pearson", "Pearson r, online vs reference log p(y_t)"),
    "fig1b_near_deterministic": ("near_deterministic", "fraction of response tokens with p > 0.9"),
    "training_ema_distance": ("ema_distance_from_start", "EMA source: ||theta_ema - theta_0|| / ||theta_0||"),
    "training_mean_weight": ("mean_weight", "mean token weight m_t over response tokens"),
    "training_kept_fraction": ("kept_fraction", "fraction of response tokens with m_t != 0"),
    "training_talr_tau": ("talr_tau", "TALR's adaptive tau"),
}


def figures(data: RunData, out: Path) -> dict[str, Path]:
    """Every PNG of the report (only those whose data exist), summary.png first."""
    single: dict[str, tuple] = {}
    for bench in data.benchmarks:
        single[f"scores_{bench}"] = (plots.scores_panel, data.scores(bench), f"{bench}: pre- vs post-RL")
    if data.rl:
        single["reward_curves"] = (plots.reward_panel, data.reward_curves())
        metric, curves = data.validation_curves()
        if curves:
            single["rl_validation"] = (plots.training_panel, curves, f"held-out {metric}", "RL")
    for bench in data.benchmarks:
        single[f"pass_at_k_{bench}"] = (plots.pass_at_k_panel, data.pass_at_k(bench), bench)
    for name, (metric, label) in TRAINING_CURVES.items():
        if curves := data.training_curves(metric):
            single[name] = (plots.training_panel, curves, label)
    if data.diagnostics:
        single["fig1a_correlation"] = (plots.correlation_panel, data.diagnostics)
        single["fig3a_entropy"] = (plots.entropy_panel, data.diagnostics)
    overview = [v for k, v in single.items() if not k.startswith(("pass_at_k", "training_"))]
    paths = {"summary": plots.save_grid(out / "summary.png", [(p[0], p[1:]) for p in overview],
                                        f"prift run {data.summary['recipe']}")}
    for name, (draw, *args) in single.items():
        paths[name] = plots.save(out / f"{name}.png", draw, *args)
    if data.diagnostics:
        width = max(7.0, 0.28 * len(data.diagnostics["example"]["tokens"]))
        paths["fig5_heatmap"] = plots.save(out / "fig5_heatmap.png", plots.heatmap_panel, data.diagnostics,
                                           size=(width, 1.2 + 0.35 * len(data.diagnostics["example"]["rows"])))
        for variant, path in data.diagnostics["example"].get("trajectory", {}).items():
            rows = len(path["steps"]) * (1 if path["m_t"] is None else 2)
            paths[f"fig5_trajectory_{variant}"] = plots.save(out / f"fig5_trajectory_{variant}.png",
                                                             plots.trajectory_panel, data.diagnostics, variant,
                                                             size=(width, 1.2 + 0.35 * rows))
    if data.evals:
        paths["all_evals"] = plot_eval_table(build_table([Path(data.stages[n]["output"]) for n, r in data.evals.items()
                                                          if r], [n for n, r in data.evals.items() if r]),
                                             out / "all_evals.png")
    return paths


def score_sections(data: RunData) -> list[tuple[str, list[str], Rows]]:
    if len(data.seeds) > 1:
        return [(f"{bench} ({data.metric(bench)}, %): mean over problems and seeds {data.seeds} [95% interval]",
                 ["init", "pre-RL", "post-RL", "RL gain (pts)", "verdict", NO_VARIANCE, "RL budget spent"],
                 score_rows(data, bench))
                for bench in data.benchmarks]
    return [(f"{bench} ({data.metric(bench)}, %): pre-RL, post-RL, RL gain, budget spent",
            ["init", "pre-RL", "post-RL", "RL gain (pts)", NO_VARIANCE, "RL budget spent"], score_rows(data, bench))
           for bench in data.benchmarks]


def scores_markdown(run_dir: str | Path) -> str:
    """The per-init score tables (pre-RL, post-RL, gain, budget spent) as markdown, for the terminal."""
    return "\n".join(f"{title}\n\n{md_table(h, r)}" for title, h, r in score_sections(RunData(run_dir)))


def sections(data: RunData) -> list[tuple[str, list[str], Rows]]:
    out = score_sections(data) + paired_sections(data)
    out.append(resolved_section(out))
    out += readiness_sections(data)
    if len(data.benchmarks) > 1:
        out.insert(0, mean_section(data))
    out.append(("Every eval run (%, ± stderr)", *eval_rows(data)))
    if data.diagnostics:
        out.append((f"PriFT diagnostics on {data.diagnostics['tokens']} held-out tokens (vs the reference)",
                    ["checkpoint", "method", "Pearson r", "Spearman r", "mean entropy"], diagnostics_rows(data)))
    out.append(("Stages", ["stage", "action", "status", "wall (s)", "error"], stage_rows(data)))
    return out


def write_run_report(run_dir: str | Path) -> dict[str, Path]:
    """report.md, report.html (PNGs embedded) and the PNGs in `<run>/report`; returns their paths."""
    data = RunData(run_dir)
    out = data.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    pngs = figures(data, out)
    notes = [*data.summary.get("notes", []), *filter(None, [data.prompt_order_note()])]
    parts = sections(data)
    md = [f"# prift run: {data.summary['recipe']}\n", *[f"> {n}\n" for n in notes]]
    md += [f"## {title}\n\n{md_table(h, r)}" for title, h, r in parts]
    md += [f"### {caption(name)}\n\n![{name}]({p.name})\n" for name, p in pngs.items()]
    style = ("body{font-family:sans-serif;max-width:1300px;margin:auto}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
             "img{max-width:100%}.note{background:#fff4d6;padding:6px}")
    body = [f"<h1>prift run: {html.escape(data.summary['recipe'])}</h1>"]
    body += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    body += [f"<h2>{html.escape(title)}</h2>{html_table(h, r)}" for title, h, r in parts]
    body += [f"<h3>{html.escape(caption(name))}</h3><img alt='{name}' src='data:image/png;base64,"
             f"{base64.b64encode(p.read_bytes()).decode()}'>" for name, p in pngs.items()]
    paths = {"markdown": out / "report.md", "html": out / "report.html", **pngs}
    paths["markdown"].write_text("\n".join(md))
    paths["html"].write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>prift run report</title>"
                             f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
    return paths
