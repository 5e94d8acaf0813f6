"""One source of truth per dataset (docs/design.md, Data): the SFT, RL and evaluation views of a dataset spec ask
the same prompt of the same row, and every hub fallback names a config and split the hub dataset has
(``tests/fixtures/hub_configs.json``, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prift.core.datasets import DATASETS, DatasetSpec
from prift.eval.benchmarks import BENCHMARKS
from prift.rl.data import load_rl_dataset
from prift.sft.data import load_sft_dataset

HUB = {hub_id: configs for hub_id, configs in
       json.loads((Path(__file__).parent / "fixtures" / "hub_configs.json").read_text()).items()
       if not hub_id.startswith("_")}

# two raw rows per dataset, in the layout of its files (adding a spec means adding its rows here)
ROWS = {
    "gsm8k": [{"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
              {"question": "A box holds 1,200 pens; 200 are sold.", "answer": "1200 - 200 = 1000\n#### 1,000"}],
    "math": [{"problem": "What is $1+1$?", "solution": "$1+1=\\boxed{2}$.", "type": "Algebra"},
             {"problem": "Simplify $\\frac{2}{4}$.", "solution": "It is $\\boxed{\\frac12}$.", "type": "Prealgebra"}],
    "medmcqa": [{"id": "q1", "question": "Which nerve?", "opa": "Vagus", "opb": "Facial", "opc": "Optic",
                 "opd": "Radial", "cop": 1, "exp": "The facial nerve."},
                {"id": "q2", "question": "Which bone?", "opa": "Femur", "opb": "Tibia", "opc": "Ulna", "opd": "Rib",
                 "cop": "0", "exp": "nan"}],
    "mbpp": [{"task_id": 11, "text": "Write a function to add two numbers.", "code": "def add(a, b):\n    return a + b",
              "test_list": ["assert add(1, 2) == 3"], "test_setup_code": ""},
             {"task_id": 12, "text": "Write a function to negate.", "code": "def neg(a):\n    return -a",
              "test_list": ["assert neg(1) == -1", "assert neg(0) == 0"], "test_setup_code": "import math"}],
}


def _spec_names() -> list[str]:
    return DATASETS.names()


def _views() -> list[tuple[str, type]]:
    """(spec name, benchmark class) for every benchmark that is a view of a dataset spec."""
    return [(cls.dataset.name, cls) for cls in map(BENCHMARKS.get, BENCHMARKS.names()) if cls.dataset is not None]


def test_every_spec_has_fixture_rows_and_an_evaluation_view():
    assert set(ROWS) == set(_spec_names())
    assert {name for name, _ in _views()} == set(_spec_names())


def _write(spec: DatasetSpec, split: str, root: Path) -> None:
    path = root / spec.files[split]
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ROWS[spec.name]
    if path.suffix == ".json":
        path.write_text(json.dumps([{spec.unwrap: row} if spec.unwrap else row for row in rows]))
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.mark.parametrize(("name", "benchmark"), _views(), ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_sft_rl_and_eval_ask_the_same_prompt_and_grade_the_same_gold(name, benchmark, tmp_path):
    spec = DATASETS.get(name)
    split = benchmark.split
    _write(spec, split, tmp_path)
    sft, _ = load_sft_dataset(name, split=split, data_dir=str(tmp_path))
    rl, _ = load_rl_dataset(name, split=split, data_dir=str(tmp_path))
    bench = benchmark(tmp_path)
    problems = bench.load().problems
    assert [p.error for p in problems] == [None] * len(ROWS[name])
    sft_prompts = [row["prompt"][0]["content"] for row in sft]
    rl_prompts = [row["prompt"][0]["content"] for row in rl]
    eval_prompts = [bench.instruction(p) for p in problems]
    assert sft_prompts == rl_prompts == eval_prompts
    assert all(prompt.endswith(spec.instruction) for prompt in eval_prompts)
    golds = [spec.gold(row) for row in ROWS[name]]
    assert [row[spec.gold_column] for row in rl] == golds
    assert [p.gold if isinstance(p.gold, str) else p.gold.tests for p in problems] == golds


def test_the_sft_target_carries_the_gold_answer():
    targets = {name: [DATASETS.get(name).target(row) for row in rows] for name, rows in ROWS.items()}
    assert targets["gsm8k"][1].endswith("\\boxed{1000}.") and "<<" not in targets["gsm8k"][0]
    assert targets["medmcqa"] == ["The facial nerve.\nAnswer: B", "Answer: A"]
    assert targets["mbpp"][0].startswith("```python\ndef add") and targets["math"][1].endswith("$.")


def _fallbacks() -> list[tuple[str, str, str | None, str]]:
    """(who, hub id, config, split) for every hub fallback of every spec and benchmark."""
    found = [(f"dataset {name}/{split}", hub.id, hub.config, hub.split)
             for name in _spec_names() for split, hub in DATASETS.get(name).hub.items()]
    for name in BENCHMARKS.names():
        bench = BENCHMARKS.get(name)()
        found += [(f"benchmark {name}", *source) for source in bench.hub_sources()]
    return found


@pytest.mark.parametrize(("who", "hub_id", "config", "split"), _fallbacks(), ids=lambda v: str(v))
def test_every_hub_fallback_names_a_config_and_split_that_exist(who, hub_id, config, split):
    assert hub_id in HUB, f"{who}: {hub_id} is not in tests/fixtures/hub_configs.json (record its configs there)"
    configs = HUB[hub_id]
    if config is None:
        assert len(configs) == 1, f"{who}: {hub_id} has configs {sorted(configs)}: name one"
        config = next(iter(configs))
    assert config in configs, f"{who}: {hub_id} has no config {config!r}; it has {sorted(configs)}"
    assert split in configs[config], f"{who}: {hub_id}/{config} has no split {split!r}"


def test_a_fallback_without_a_config_for_a_many_config_dataset_fails_the_check():
    configs = HUB["EleutherAI/hendrycks_math"]  # the fallback SFT and RL used to name with no config
    assert len(configs) > 1 and None not in configs
