"""The RL-readiness predictors against naive implementations on fixed data: pass@k by enumerating k-subsets,
coverage, answer entropy by counting, Spearman by explicit tie-averaged ranks, its bootstrap interval by a loop,
held-out NLL and KL to the base model by summing over the vocabulary one token at a time; and the recipe keys
`seeds` / `readiness` failing with errors that name them."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
import torch

from prift.recipes import readiness
from prift.recipes.diagnostics import kl_to_base, token_stats

RNG = random.Random(7)
CORRECT = [[RNG.random() < q for _ in range(6)] for q in (0.0, 0.1, 0.5, 0.9, 1.0, 0.3, 0.2)]
ANSWERS = [["1", "1", "2", None, "3", "1"], ["7"] * 6, [None] * 6, ["a", "b", "c", "d", "e", "f"]]


def naive_pass_at_k(c: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(c, k))
    return sum(any(s) for s in subsets) / len(subsets)


def naive_ranks(values: list[float]) -> list[float]:
    ordered = sorted(values)
    return [sum(i for i, v in enumerate(ordered) if v == x) / ordered.count(x) for x in values]


def naive_spearman(x: list[float], y: list[float]) -> float:
    rx, ry = naive_ranks(x), naive_ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / var if var else math.nan


def test_pass_at_k_curve_and_coverage_match_subset_enumeration():
    curve = readiness.pass_at_k_curve(CORRECT, 6)
    for k in range(1, 7):
        assert curve[k - 1] == pytest.approx(sum(naive_pass_at_k(c, k) for c in CORRECT) / len(CORRECT))
    assert readiness.coverage(CORRECT) == sum(1 for c in CORRECT if True in c) / len(CORRECT)
    assert readiness.coverage(CORRECT) == pytest.approx(curve[-1])  # with n = k, pass@k is coverage
    with pytest.raises(ValueError, match="at least 7 samples"):
        readiness.pass_at_k_curve(CORRECT, 7)


def test_answer_entropy_matches_counting():
    naive = []
    for samples in ANSWERS:
        probs = [samples.count(a) / len(samples) for a in set(samples)]
        naive.append(-sum(p * math.log(p) for p in probs))
    assert readiness.answer_entropy(ANSWERS) == pytest.approx(sum(naive) / len(naive))
    assert readiness.answer_entropy([["7"] * 6]) == 0.0
    assert readiness.answer_entropy([list("abcdef")]) == pytest.approx(math.log(6))


@pytest.mark.parametrize("x, y", [([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]), ([1, 1, 2, 3, 3, 3], [5, 6, 6, 1, 2, 2]),
                                  ([0.3, 0.1, 0.2], [3, 2, 1]), ([1, 1, 1], [1, 2, 3])])
def test_spearman_matches_tie_averaged_ranks(x, y):
    got, want = readiness.spearman(x, y), naive_spearman(x, y)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


def test_spearman_interval_matches_a_loop_over_the_same_draws():
    x, y = [0.1, 0.4, 0.35, 0.8, 0.6, 0.2], [1.0, 2.5, 2.0, 3.0, 2.2, 1.9]
    low, high = readiness.spearman_interval(x, y, resamples=300, seed=3)
    draws = np.random.default_rng(3).integers(0, len(x), size=(300, len(x)))
    rhos = [naive_spearman([x[i] for i in d], [y[i] for i in d]) for d in draws]
    rhos = [r for r in rhos if not math.isnan(r)]
    assert (low, high) == pytest.approx(tuple(np.quantile(rhos, [0.025, 0.975])))
    assert low <= readiness.spearman(x, y) <= high
    assert readiness.spearman_interval([1, 2, 3, 4], [1, 2, 3, 4]) == (1.0, 1.0)  # monotone: every draw is 1


def test_nll_and_kl_to_base_match_per_token_sums():
    torch.manual_seed(0)
    logits, base = torch.randn(1, 5, 7), torch.randn(1, 5, 7)
    labels = torch.tensor([[-100, 3, 0, -100, 6]])
    kl, nll = kl_to_base(logits, base, labels), token_stats(logits, labels)["nll"]
    want_kl, want_nll = [], []
    for t in (1, 2, 4):
        zq = sum(math.exp(v) for v in logits[0, t].tolist())
        zb = sum(math.exp(v) for v in base[0, t].tolist())
        q = [math.exp(v) / zq for v in logits[0, t].tolist()]
        b = [math.exp(v) / zb for v in base[0, t].tolist()]
        want_kl.append(sum(qi * math.log(qi / bi) for qi, bi in zip(q, b, strict=True)))
        want_nll.append(-math.log(q[labels[0, t]]))
    assert kl == pytest.approx(want_kl, rel=1e-5)
    assert nll == pytest.approx(want_nll, rel=1e-5)
    assert kl_to_base(logits, logits, labels) == pytest.approx([0.0] * 3, abs=1e-6)


@pytest.mark.parametrize("extra, message", [
    ("seeds: []", "seeds: expected a non-empty list of distinct integers"),
    ("seeds: [1, 1]", "seeds: expected a non-empty list of distinct integers"),
    ("seeds: [1, 2]\nseed: 3", "set `seed` or `seeds`, not both"),
    ("readiness: {k: 0}", "readiness: k: expected an integer >= 1"),
    ("readiness: {k: 4}", "readiness: temperature: k = 4 samples per problem need sampling"),
    ("readiness: {k: 4, temperature: 1.0, nn: 3}", "readiness: unknown key 'nn'"),
])
def test_bad_seeds_and_readiness_name_their_key(extra, message, tiny_checkpoint, tmp_path):
    from prift.core.config import ConfigError
    from prift.recipes.arithmetic import TASKS
    data_dir = TASKS["arith"].data_dir
    from prift.recipes.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(f"name: t\nbase_model: {tiny_checkpoint}\nvariants: [nll]\n"
                    f"sft: {{dataset: {data_dir()}/sft.jsonl}}\neval: {{benchmarks: arith={data_dir()}/test.jsonl}}\n"
                    f"{extra}\n")
    with pytest.raises(ConfigError, match=message.replace("`", ".").replace("(", ".")):
        load_recipe(path)


def test_single_seed_recipes_keep_their_stage_names(tiny_checkpoint, tmp_path):
    from prift.recipes.arithmetic import TASKS
    data_dir = TASKS["arith"].data_dir
    from prift.recipes.pipeline import build_stages, split_seed
    from prift.recipes.recipe import load_recipe

    path = tmp_path / "r.yaml"
    body = (f"name: t\nbase_model: {tiny_checkpoint}\nvariants: [nll]\nsft: {{dataset: {data_dir()}/sft.jsonl}}\n"
            f"rl: {{dataset: {data_dir()}/rl.jsonl, budget: 2}}\neval: {{benchmarks: arith={data_dir()}/test.jsonl}}\n")
    path.write_text(body + "seed: 5\n")
    names = [s.name for s in build_stages(load_recipe(path), tmp_path / "run")]
    assert names == ["eval/base", "sft/nll", "eval/sft-nll", "rl/nll", "eval/rl-nll"]
    path.write_text(body + "seeds: [5, 6]\n")
    stages = build_stages(load_recipe(path), tmp_path / "run")
    assert [split_seed(s.name) for s in stages][:3] == [("eval/base", None), ("sft/nll", 5), ("sft/nll", 6)]
    assert [s.config.seed for s in stages if s.kind == "rl"] == [5, 6]
