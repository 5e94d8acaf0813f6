"""The diagnostics' correlations against a naive float implementation: Spearman counts ties as ties (average ranks),
so its value does not depend on the order of the tokens."""

from __future__ import annotations

import math
import random

import pytest
import torch

from prift.recipes.diagnostics import correlation


def _pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def _average_ranks(values: list[float]) -> list[float]:
    """Rank of v = (number of values below v) + (number equal to v - 1) / 2, straight from the definition."""
    return [sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]


def _spearman(x: list[float], y: list[float]) -> float:
    return _pearson(_average_ranks(x), _average_ranks(y))


@pytest.mark.parametrize("seed", range(5))
def test_spearman_with_ties_is_the_naive_one_and_ignores_token_order(seed):
    rng = random.Random(seed)
    # near-deterministic tokens tie at p = 1.0, as they do in float32 for a confident model
    x = [rng.choice([1.0, 1.0, 0.5, rng.random()]) for _ in range(40)]
    y = [rng.choice([0.0, 0.0, rng.random()]) for _ in range(40)]
    got = correlation(x, y)
    assert got["spearman"] == pytest.approx(_spearman(x, y), abs=1e-5)
    assert got["pearson"] == pytest.approx(_pearson(x, y), abs=1e-5)
    order = list(range(40))
    for _ in range(3):
        rng.shuffle(order)
        assert correlation([x[i] for i in order], [y[i] for i in order]) == got


def test_spearman_of_a_monotone_map_is_one_even_with_ties():
    x = [0.1, 0.5, 0.5, 0.9, 0.9, 0.9, 0.2]
    assert correlation(x, [v ** 3 for v in x])["spearman"] == pytest.approx(1.0)


def test_fig5_across_saved_checkpoints_is_each_checkpoint_s_own_probabilities(tiny_checkpoint, tmp_path):
    """An SFT folder with two saved steps (perturbed copies of the model) and a stray folder: the trajectory has a
    row per step plus the final one, each the naive softmax probability of the example's target tokens under that
    step's weights; PriFT-prob's m_t is p_ref, the same at every step; the report's panel draws it."""
    import json
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prift.recipes import plots
    from prift.recipes.arithmetic import TASKS
    data_dir = TASKS["arith"].data_dir
    from prift.recipes.diagnostics import DiagnosticsRun, encode, run_diagnostics
    from prift.recipes.recipe import Diagnostics
    from prift.sft.data import load_sft_dataset

    sft = tmp_path / "sft"
    shutil.copytree(tiny_checkpoint, sft)
    for step in (1, 2):
        model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
        generator = torch.Generator().manual_seed(step)
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn(param.shape, generator=generator) * 0.2)
        model.save_pretrained(sft / f"checkpoint-{step}")
    (sft / "checkpoint-tmp").mkdir()  # not a step: ignored
    spec = Diagnostics(dataset=str(data_dir() / "test.jsonl"), samples=2)
    run_diagnostics(DiagnosticsRun(spec, str(tiny_checkpoint), {"a": str(sft)}, {"a": "prift_prob"}, str(tmp_path / "d")))
    diag = json.loads((tmp_path / "d" / "diagnostics.json").read_text())
    path = diag["example"]["trajectory"]["a"]
    assert path["steps"] == [1, 2, "final"]

    # the example as the stage renders it (the rendering is not under test here; the probabilities are)
    rows, _ = load_sft_dataset(spec.dataset, split="test", max_samples=2)
    ids, labels = (t[0].tolist() for t in encode(AutoTokenizer.from_pretrained(tiny_checkpoint), rows[0], 512))
    for folder, got in zip((sft / "checkpoint-1", sft / "checkpoint-2", sft), path["p"], strict=True):
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        with torch.no_grad():
            probs = model(input_ids=torch.tensor([ids])).logits[0].double().softmax(-1)
        naive = [probs[t - 1, ids[t]].item() for t in range(1, len(ids)) if labels[t] != -100]
        assert got == pytest.approx(naive, abs=2e-5)
    assert path["p"][0] != pytest.approx(path["p"][2], abs=1e-3)  # the steps differ
    assert path["m_t"][0] == path["m_t"][1] == path["m_t"][2] == pytest.approx(diag["example"]["rows"]["p_ref"])
    assert path["p"][2] == diag["example"]["rows"]["p a"]
    assert plots.save(tmp_path / "fig.png", plots.trajectory_panel, diag, "a").stat().st_size > 0
