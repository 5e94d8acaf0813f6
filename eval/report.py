"""Reports across eval runs: rows = checkpoints (run folders), columns = benchmark x metric, value ± stderr.

``build_table(run_dirs)`` reads each ``results.json``; ``markdown`` / ``html`` render it; ``plot`` draws grouped
bars with stderr error bars (matplotlib, Agg backend). Columns per benchmark: ``pass@1`` when n = 1, else
``avg@n``, ``pass@n`` and ``maj@n``; ``ppl`` for perplexity; MMLU-medical adds its macro average over subjects; a
benchmark's views follow it as their own group (``humaneval_plus base``: evalplus's base-tests score).
Accuracies are shown in percent.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    rows: list[str]
    columns: list[tuple[str, str]]  # (benchmark, metric)
    cells: dict[tuple[str, str, str], tuple[float, float | None]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


def load_results(run_dir: str | Path) -> dict:
    path = Path(run_dir)
    path = path if path.suffix == ".json" else path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results.json in {run_dir}")
    return json.loads(path.read_text())


def _columns(result: dict) -> list[tuple[str, str, float, float | None]]:
    metrics = result.get("metrics", {})
    if result.get("task") == "perplexity":
        names = ["ppl"]
    else:
        n = result.get("sampling", {}).get("n", 1)
        names = ["pass@1"] if n == 1 else [f"avg@{n}", f"pass@{n}", f"maj@{n}"]
    out = [(name, metrics[name]["value"], metrics[name]["stderr"]) for name in names if name in metrics]
    macro = result.get("macro_average")
    if macro:
        out += [(f"{name} macro", macro[name], None) for name, _, _ in out[:1] if name in macro]
    return out


def _with_views(results: dict) -> list[tuple[str, dict]]:
    """(column group, result) per benchmark, each followed by its views (HumanEval+'s ``humaneval_plus base``)."""
    out = []
    for bench, result in results.items():
        out.append((bench, result))
        out += [(f"{bench} {view}", {"task": result.get("task"), "sampling": result.get("sampling", {}), **summary})
                for view, summary in result.get("views", {}).items()]
    return out


def build_table(run_dirs: list[str | Path], labels: list[str] | None = None) -> Table:
    rows, columns, cells = [], [], {}
    for i, run_dir in enumerate(run_dirs):
        data = load_results(run_dir)
        label = labels[i] if labels else f"{data.get('model', {}).get('name', '?')} ({Path(run_dir).name})"
        rows.append(label)
        for bench, result in _with_views(data.get("results", {})):
            for metric, value, stderr in _columns(result):
                if (bench, metric) not in columns:
                    columns.append((bench, metric))
                cells[(label, bench, metric)] = (value, stderr)
    return Table(rows, columns, cells, [str(d) for d in run_dirs])


def _fmt(metric: str, cell: tuple[float, float | None] | None) -> str:
    if cell is None:
        return "—"
    value, stderr = cell
    if metric == "ppl":
        return f"{value:.2f}"
    text = f"{100 * value:.1f}"
    return f"{text} ± {100 * stderr:.1f}" if stderr is not None else text


def markdown(table: Table) -> str:
    header = ["checkpoint"] + [f"{b} {m}" for b, m in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        cells = [_fmt(m, table.cells.get((row, b, m))) for b, m in table.columns]
        lines.append("| " + " | ".join([row, *cells]) + " |")
    return "\n".join(lines) + "\n"


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(b)}<br>{html.escape(m)}</th>" for b, m in table.columns)
    body = "".join(
        "<tr><td>" + html.escape(row) + "</td>"
        + "".join(f"<td>{html.escape(_fmt(m, table.cells.get((row, b, m))))}</td>" for b, m in table.columns)
        + "</tr>\n" for row in table.rows)
    style = ("table{border-collapse:collapse;font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:right}td:first-child{text-align:left}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>prift eval report</title><style>{style}</style>"
            f"</head><body><table><tr><th>checkpoint</th>{head}</tr>\n{body}</table>"
            "<p>Accuracy in %, ± standard error over problems.</p><img src='report.png'></body></html>\n")


def plot(table: Table, path: str | Path) -> Path:
    """Grouped bars (one group per benchmark x metric, one bar per checkpoint) with stderr error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in table.columns if c[1] != "ppl"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(columns) * max(1, len(table.rows)) ** 0.5), 4.5))
    width = 0.8 / max(1, len(table.rows))
    for i, row in enumerate(table.rows):
        cells = [table.cells.get((row, b, m), (0.0, None)) for b, m in columns]
        xs = [j + (i - (len(table.rows) - 1) / 2) * width for j in range(len(columns))]
        ax.bar(xs, [100 * v for v, _ in cells], width, label=row,
               yerr=[100 * (s or 0.0) for _, s in cells], capsize=2)
    ax.set_xticks(range(len(columns)), [f"{b}\n{m}" for b, m in columns], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(run_dirs: list[str | Path], output_dir: str | Path, labels: list[str] | None = None) -> dict[str, Path]:
    """report.md, report.html and report.png in ``output_dir``; returns their paths."""
    table = build_table(run_dirs, labels)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "html": out / "report.html", "png": out / "report.png"}
    paths["markdown"].write_text(markdown(table))
    paths["html"].write_text(html_table(table))
    plot(table, paths["png"])
    return paths
