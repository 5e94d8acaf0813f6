"""`prift run` with `seeds: [1, 2]` on a tiny model: every SFT, readiness, diagnostics, RL and eval stage runs once
per seed under `<stage>/seed<s>`, the reference cache is built once for both seeds, and the report gives intervals
over problems and seeds, the verdicts in words and the RL-readiness predictor tables; its numbers are checked
against plain recomputations from the stage files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from prift import main

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # a 29-stage recipe (~1 min)
SEEDS = (1, 2)
VARIANTS = ("nll", "prift_mass")


def parity(prompts, completions, completion_ids=(), **kwargs):
    """Token-id-sum parity: a tiny model's groups get reward variance, so RL moves the weights."""
    return [float(sum(ids) % 2) for ids in completion_ids]


RECIPE = """
name: tiny-seeds
base_model: {model}
seeds: [1, 2]
sft: {{dataset: {data}/sft.jsonl, max_samples: 4, max_length: 96, per_device_train_batch_size: 2, max_steps: 2,
      learning_rate: 1.0e-3, save_strategy: "no", report_to: none, disable_tqdm: true, dtype: float32}}
variants: [nll, prift_mass]
rl: {{dataset: {data}/rl.jsonl, rewards: ["{module}:parity"], num_generations: 2, per_device_train_batch_size: 4,
     max_completion_length: 6, temperature: 1.0, learning_rate: 1.0e-3, budget: 2, budget_unit: prompts,
     save_strategy: "no", disable_tqdm: true, dtype: float32}}
eval: {{benchmarks: "arith={data}/test.jsonl", max_samples: 4, max_tokens: 6, batch_size: 4, progress: false}}
diagnostics: {{dataset: {data}/test.jsonl, samples: 2, max_length: 96}}
readiness: {{k: 3, benchmarks: "held={data}/test.jsonl", max_samples: 3, temperature: 1.0, max_tokens: 6, batch_size: 9}}
"""


def expected_stages() -> list[str]:
    per_seed = [[f"sft/{v}" for v in VARIANTS], [f"eval/sft-{v}" for v in VARIANTS], ["diagnostics"],
                [f"eval/ready-{v}" for v in VARIANTS], [f"rl/{v}" for v in VARIANTS], [f"eval/rl-{v}" for v in VARIANTS]]
    return ["eval/base"] + [f"{name}/seed{s}" for group in per_seed for s in SEEDS for name in group]


@pytest.fixture(scope="module")
def run(tiny_checkpoint, tmp_path_factory) -> Path:
    from prift.recipes.arithmetic import TASKS
    data_dir = TASKS["arith"].data_dir

    folder = tmp_path_factory.mktemp("seeds")
    recipe = folder / "tiny.yaml"
    recipe.write_text(RECIPE.format(model=tiny_checkpoint, data=data_dir(), module=__name__))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRIFT_CACHE_DIR", str(folder / "cache"))
        assert main(["run", str(recipe), "--output_dir", str(folder / "run")]) == 0
    return folder / "run"


def samples(run: Path, stage: str, bench: str) -> dict[str, list[dict]]:
    result = json.loads((run / stage / "results.json").read_text())["results"][bench]
    rows: dict[str, list[dict]] = {}
    for line in (run / stage / result["samples_file"]).read_text().splitlines():
        row = json.loads(line)
        rows.setdefault(row["problem_id"], []).append(row)
    return rows


def test_every_stage_runs_once_per_seed_with_its_seed_and_one_reference_cache(run):
    stages = {s["name"]: s for s in json.loads((run / "pipeline.json").read_text())["stages"]}
    assert list(stages) == expected_stages()
    assert {s["status"] for s in stages.values()} == {"done"}
    for seed in SEEDS:
        for kind in ("sft", "rl"):
            assert json.loads((run / f"{kind}/nll/seed{seed}/run.json").read_text())["config"]["seed"] == seed
    assert stages["sft/nll/seed1"]["fingerprint"] != stages["sft/nll/seed2"]["fingerprint"]
    caches = [p for p in (run.parent / "cache").rglob("meta.json")]
    assert len(caches) == 1, caches  # prift_mass's reference signals: built by seed 1, reused by seed 2


def test_report_gives_seed_intervals_verdicts_and_the_readiness_tables(run):
    md = (run / "report" / "report.md").read_text()
    assert "mean over problems and seeds [1, 2] [95% interval]" in md
    assert "95% bootstrap interval over problems and 2 seeds" in md
    assert "RL prompt order: identical for all 2 inits under each of the 2 seeds" in md
    assert "differences are resolved (their 95% interval excludes 0)" in md
    assert md.count("not resolved, the interval includes 0") + md.count(": resolved |") >= 3
    # nll's pre-RL mean = the plain mean of each problem's correctness over both seeds' samples
    scores = [sum(r["status"] == "correct" for r in rows) / len(rows) for s in SEEDS
              for rows in samples(run, f"eval/sft-nll/seed{s}", "arith").values()]
    row = next(line for line in md.splitlines() if line.startswith("| nll | "))
    assert row.split(" | ")[1].startswith(f"{100 * sum(scores) / len(scores):.1f} [")
    # the predictors: coverage per seed from the readiness samples, NLL from diagnostics.json, means over seeds
    coverage = [sum(any(r["status"] == "correct" for r in rows) for rows in samples(run, f"eval/ready-nll/seed{s}",
                                                                                       "held").values()) / 3
                for s in SEEDS]
    nll = [json.loads((run / f"diagnostics/seed{s}/diagnostics.json").read_text())["checkpoints"]["nll"]["nll"]
           for s in SEEDS]
    header = next(line for line in md.splitlines() if line.startswith("| init | pass@1 |"))
    table = dict(zip(header.split(" | "), row_of(md, "nll", after=header).split(" | "), strict=True))
    assert table["coverage"] == f"{sum(coverage) / 2:.3f}"
    assert table["held-out NLL"] == f"{sum(nll) / 2:.3f}"
    assert math.isfinite(float(table["KL to base"])) and float(table["KL to base"]) > 0
    for predictor in ("pass@1", "pass@3", "coverage", "sample entropy", "held-out NLL", "KL to base",
                      "online-vs-reference r"):
        ranked = next(line for line in md.splitlines() if line.startswith(f"| {predictor} | "))
        assert ranked.split(" | ")[-1] == "4 |"  # 2 inits x 2 seeds
        assert set(ranked.split(" | ")[1].split(" > ")) == set(VARIANTS)


def row_of(md: str, init: str, after: str) -> str:
    lines = md.splitlines()
    return next(line for line in lines[lines.index(after):] if line.startswith(f"| {init} | "))
