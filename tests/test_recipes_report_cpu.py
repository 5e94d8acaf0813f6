"""The run report's mean over benchmarks (the PriFT paper's "Avg" column) and the published numbers beside it,
checked against a plain recomputation from the stage files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from prift.recipes.report import RunData, mean_section

SCORES = {  # eval stage -> benchmark -> metric -> (value, stderr)
    "eval/base": {"math500": {"avg@4": (0.20, 0.02), "pass@4": (0.50, 0.05)},
                  "aime24": {"avg@4": (0.05, 0.03), "pass@4": (0.10, 0.06)}},
    "eval/sft-prift_mass": {"math500": {"avg@4": (0.40, 0.02), "pass@4": (0.70, 0.04)},
                            "aime24": {"avg@4": (0.10, 0.04), "pass@4": (0.20, 0.07)}},
    "eval/sft-nll": {"math500": {"avg@4": (0.30, 0.02), "pass@4": (0.60, 0.05)}},  # aime24 missing
}
PUBLISHED = {"source": "paper Table 3", "scores": {"prift_mass": {"avg@4": 40.67, "pass@4": 69.6}}}


def write_run(run: Path, published: dict) -> Path:
    stages = [{"name": "sft/nll", "kind": "sft", "status": "done", "output": str(run / "sft/nll")},
              {"name": "sft/prift_mass", "kind": "sft", "status": "done", "output": str(run / "sft/prift_mass")}]
    for stage, benches in SCORES.items():
        out = run / stage
        out.mkdir(parents=True)
        results = {b: {"sampling": {"n": 4}, "metrics": {m: {"value": v, "stderr": e} for m, (v, e) in ms.items()}}
                   for b, ms in benches.items()}
        (out / "results.json").write_text(json.dumps({"results": results}))
        stages.append({"name": stage, "kind": "eval", "status": "done", "output": str(out)})
    (run / "pipeline.json").write_text(json.dumps({"recipe": "t", "stages": stages, "published": published}))
    return run


def naive_mean(stage: str, metric: str) -> str:
    cells = [SCORES[stage][b][metric] for b in ("math500", "aime24")]
    value = sum(v for v, _ in cells) / 2
    stderr = math.sqrt(sum(e * e for _, e in cells)) / 2
    return f"{100 * value:.1f} ± {100 * stderr:.1f}"


@pytest.mark.parametrize("published", [PUBLISHED, {}])
def test_mean_over_benchmarks_and_published_numbers(published, tmp_path):
    title, header, rows = mean_section(RunData(write_run(tmp_path, published)))
    table = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(table) == {"nll", "prift_mass", "base"}
    for metric in ("avg@4", "pass@4"):
        assert table["prift_mass"][f"pre-RL {metric}"] == naive_mean("eval/sft-prift_mass", metric)
        assert table["base"][f"pre-RL {metric}"] == naive_mean("eval/base", metric)
        assert table["nll"][f"pre-RL {metric}"] == "—"  # one benchmark missing: no partial mean
        assert table["prift_mass"][f"post-RL {metric}"] == "—"  # no RL stage ran
    if published:
        assert "paper Table 3" in title
        assert (table["prift_mass"]["published avg@4"], table["prift_mass"]["published pass@4"]) == ("40.67", "69.60")
        assert table["nll"]["published avg@4"] == "—"
    else:
        assert not any(h.startswith("published") for h in header)
