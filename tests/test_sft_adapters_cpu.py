"""SFT dataset adapters: MedMCQA rows become the prompt `prift eval medmcqa` asks and a completion it grades right;
wrong-typed fields are a DatasetError naming the row."""

from __future__ import annotations

import json

import pytest

from prift.eval.benchmarks import get_benchmark
from prift.rewards.choice import extract_choice
from prift.sft.data import DatasetError, load_sft_dataset

MEDMCQA_ROWS = [
    {"question": "Which nerve supplies the deltoid?", "opa": "Radial", "opb": "Axillary", "opc": "Ulnar",
     "opd": "Median", "cop": 1, "exp": "The axillary nerve (C5, C6) supplies deltoid and teres minor."},
    {"question": "Vitamin deficient in scurvy?", "opa": "A", "opb": "B12", "opc": "C", "opd": "D", "cop": "2",
     "exp": "nan"},
]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_medmcqa_rows_match_the_eval_prompt_and_grade_correct(tmp_path):
    data = write_rows(tmp_path / "medmcqa_train.jsonl", MEDMCQA_ROWS)
    dataset, provenance = load_sft_dataset(str(data), adapter="medmcqa")
    assert provenance["adapter"] == "medmcqa" and provenance["rows"] == 2

    bench = get_benchmark("medmcqa")
    for raw, row in zip(MEDMCQA_ROWS, dataset, strict=True):
        problem = bench.to_problem(raw, 0)
        assert row["prompt"] == [{"role": "user", "content": bench.instruction(problem)}]
        completion = row["completion"][0]["content"]
        assert extract_choice(completion, bench.letters) == problem.gold, completion
    assert dataset[0]["completion"][0]["content"].startswith("The axillary nerve")
    assert dataset[1]["completion"][0]["content"] == "Answer: C"  # "nan" explanation dropped


@pytest.mark.parametrize(("change", "what"), [
    ({"cop": 7}, "not an option index"),
    ({"cop": "b"}, "cannot be read by adapter 'medmcqa'"),
])
def test_medmcqa_bad_answer_index_names_the_row(change, what, tmp_path):
    rows = [MEDMCQA_ROWS[0], {**MEDMCQA_ROWS[1], **change}]
    data = write_rows(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DatasetError, match=what) as err:
        load_sft_dataset(str(data), adapter="medmcqa")
    assert "row 1" in str(err.value) and str(data) in str(err.value)


@pytest.mark.parametrize("completion", [42, [1, 2, 3]])
def test_wrong_typed_completion_is_a_dataset_error(completion, tmp_path):
    data = write_rows(tmp_path / "typed.jsonl", [{"prompt": "q", "completion": "a"},
                                                 {"prompt": "q", "completion": completion}])
    with pytest.raises(DatasetError) as err:
        load_sft_dataset(str(data))
    assert "row 1" in str(err.value) and str(data) in str(err.value)
