"""Plot panels of the run report; each draws into a given matplotlib `Axes` so the same panel serves its own PNG
and the summary figure. Inputs are plain dicts read from the stages' JSON files (see `prift.recipes.report`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Panel = Callable[..., None]


def scores_panel(ax, scores: dict[str, dict[str, tuple[float, float | None] | None]], title: str) -> None:
    """Grouped bars: one group per init, one bar per phase (pre-RL, post-RL), stderr error bars, accuracy in %."""
    inits = list(scores)
    phases = sorted({p for cells in scores.values() for p in cells}, key=["pre-RL", "post-RL"].index)
    width = 0.8 / max(1, len(phases))
    for i, phase in enumerate(phases):
        cells = [scores[init].get(phase) or (0.0, None) for init in inits]
        xs = [j + (i - (len(phases) - 1) / 2) * width for j in range(len(inits))]
        ax.bar(xs, [100 * v for v, _ in cells], width, yerr=[100 * (s or 0) for _, s in cells], capsize=2, label=phase)
    ax.set_xticks(range(len(inits)), inits, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def reward_panel(ax, curves: dict[str, list[tuple[int, float]]]) -> None:
    """Mean RL reward per optimizer step, one line per init."""
    for init, points in curves.items():
        ax.plot([s for s, _ in points], [v for _, v in points], marker="o", label=init)
    ax.set_xlabel("RL step")
    ax.set_ylabel("mean reward")
    ax.set_title("RL reward curves (one budget)", fontsize=9)
    if curves:
        ax.legend(fontsize=7)


def training_panel(ax, curves: dict[str, list[tuple[int, float]]], label: str, stage: str = "SFT") -> None:
    """A metric logged during training per optimizer step, one line per variant (or init)."""
    for variant, points in curves.items():
        ax.plot([s for s, _ in points], [v for _, v in points], marker=".", label=variant)
    ax.set_xlabel(f"{stage} step")
    ax.set_ylabel(label, fontsize=8)
    ax.set_title(f"during {stage}: {label}", fontsize=9)
    ax.legend(fontsize=7)


def pass_at_k_panel(ax, curves: dict[str, list[float]], benchmark: str) -> None:
    """pass@k against k for each evaluated checkpoint."""
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), [100 * v for v in values], marker="o", label=label)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.set_title(f"pass@k: {benchmark}", fontsize=9)
    ax.legend(fontsize=6)


def correlation_panel(ax, diagnostics: dict) -> None:
    """Fig 1a: each checkpoint's target probability against the reference's, with Pearson r."""
    ref = diagnostics["values"]["reference"]["p"]
    for name, facts in diagnostics["checkpoints"].items():
        ax.scatter(ref, diagnostics["values"][name]["p"], s=4, alpha=0.5, label=f"{name} (r={facts['pearson']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    ax.set_xlabel("reference p(y_t)")
    ax.set_ylabel("SFT checkpoint p(y_t)")
    ax.set_title("Fig 1a: online vs reference target probability", fontsize=9)
    ax.legend(fontsize=6, markerscale=3)


def entropy_panel(ax, diagnostics: dict) -> None:
    """Fig 3a: distribution of per-token entropy of the reference and each SFT checkpoint."""
    names = list(diagnostics["values"])
    ax.boxplot([diagnostics["values"][n]["entropy"] for n in names], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("token entropy (nats)")
    ax.set_title("Fig 3a: token entropy of SFT checkpoints", fontsize=9)


def heatmap_panel(ax, diagnostics: dict) -> None:
    """Fig 5: one held-out example, tokens as columns; rows p_ref, each checkpoint's p and each variant's m_t."""
    example = diagnostics["example"]
    labels = list(example["rows"])
    image = ax.imshow([example["rows"][k] for k in labels], aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xticks(range(len(example["tokens"])), [repr(t)[1:-1] for t in example["tokens"]], rotation=90, fontsize=6)
    ax.set_title(f"Fig 5: weights and probabilities, held-out row {example['row']}", fontsize=9)
    plt.colorbar(image, ax=ax, fraction=0.02)


def trajectory_panel(ax, diagnostics: dict, variant: str) -> None:
    """Fig 5 across checkpoints: one held-out example's p_theta(y_t) (and m_t) at each saved step of one variant."""
    example = diagnostics["example"]
    path = example["trajectory"][variant]
    rows = {f"p step {s}": row for s, row in zip(path["steps"], path["p"], strict=True)}
    if path["m_t"] is not None:
        rows |= {f"m_t step {s}": row for s, row in zip(path["steps"], path["m_t"], strict=True)}
    image = ax.imshow(list(rows.values()), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(range(len(rows)), list(rows), fontsize=7)
    ax.set_xticks(range(len(example["tokens"])), [repr(t)[1:-1] for t in example["tokens"]], rotation=90, fontsize=6)
    ax.set_title(f"Fig 5 across checkpoints: {variant}, held-out row {example['row']}", fontsize=9)
    plt.colorbar(image, ax=ax, fraction=0.02)


def save(path: Path, draw: Panel, *args, size: tuple[float, float] = (7, 4.5)) -> Path:
    """One panel as its own PNG."""
    fig, ax = plt.subplots(figsize=size)
    draw(ax, *args)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_grid(path: Path, panels: list[tuple[Panel, tuple]], title: str) -> Path:
    """Several panels in a two-column grid (the report's summary figure)."""
    rows = (len(panels) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(13, 4.3 * rows), squeeze=False)
    for ax, (draw, args) in zip(axes.flat, panels, strict=False):
        draw(ax, *args)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
