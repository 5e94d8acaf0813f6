"""The rest of the PriFT paper's math suite (Minerva, OlympiadBench, AIME24, AMC23) and `NAME=PATH` local-file
benchmarks, on small fixture files in each dataset's real layouts (the data are not in ../shared/data): gold answers
per layout, bad rows recorded without stopping the load, reference completions graded correct, and `prift eval`
end to end on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prift import main
from prift.core.provenance import sha256_file
from prift.eval.bench_math import BOXED_INSTRUCTION, math_gold, math_question
from prift.eval.benchmarks import get_benchmark
from prift.eval.config import EvalConfig
from prift.eval.grading import GradingSettings, grade

SUITE = {"minerva": 272, "olympiadbench": 675, "aime24": 30, "amc23": 40}
HUB = {"minerva": ("math-ai/minervamath", None, "test"),
       "olympiadbench": ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train"),
       "aime24": ("math-ai/aime24", None, "test"), "amc23": ("math-ai/amc23", None, "test")}
BAD = '{"id": 99, "question": "cut short by'  # a malformed JSON line

# Rows in the layouts of the Qwen2.5-Math evaluation repo's data files (<root>/<folder>/test.jsonl). Each file has
# good rows, one row without any gold answer and one malformed line; GOLD lists the good rows' gold answers.
FIXTURES = {
    "minerva": ("minerva_math", [
        {"problem": "A telescope of focal length $72 \\mathrm{~m}$ images a planet of angular diameter "
                    "$45^{\\prime \\prime}$. Find the image diameter in $\\mathrm{cm}$.",
         "solution": "With $s=\\alpha f$, $s=\\frac{45}{3600} \\frac{\\pi}{180} 7200=\\boxed{1.6} \\mathrm{cm}$.",
         "type": "Introduction to Astronomy (8.282J Spring 2006)", "idx": 0},
        {"problem": "What fraction of a half-life leaves $\\frac{1}{\\sqrt{2}}$ of a sample?",
         "solution": "Since $2^{-t}=2^{-1/2}$, the answer is $t=\\boxed{\\frac{1}{2}}$ half-lives.",
         "type": "Physical Chemistry (5.61 Fall 2017)", "idx": 1},
        {"problem": "Describe the band structure of silicon.", "solution": "It has an indirect gap.", "idx": 2},
    ]),
    "olympiadbench": ("olympiadbench", [
        {"id": 2231, "subfield": "Algebra", "context": None,
         "question": "Determine the positive real number $x$ with $x^{2}=\\frac{9}{16}$.",
         "solution": ["Taking square roots, $x=\\frac{3}{4}$."], "final_answer": ["$\\frac{3}{4}$"],
         "is_multiple_answer": False, "unit": None, "answer_type": "Numerical", "error": None},
        {"id": 2232, "subfield": "Combinatorics", "context": None,
         "question": "Find the ordered pair $(a, b)$ of positive integers with $a<b$ and $a+b=ab-1$ and $a=2$.",
         "solution": ["From $2+b=2b-1$ we get $b=3$."], "final_answer": ["$(2,3)$"],
         "is_multiple_answer": False, "unit": None, "answer_type": "Tuple", "error": None},
        {"id": 2233, "subfield": "Geometry", "context": None, "question": "Prove the statement.",
         "solution": ["Obvious."], "final_answer": [], "is_multiple_answer": False, "unit": None,
         "answer_type": None, "error": None},
    ]),
    "aime24": ("aime24", [
        {"id": 60, "problem": "Every morning Aya walks $9$ kilometers. Find the number of minutes the walk takes "
                              "her, including the $t$ minutes spent in the coffee shop.",
         "solution": "Solving the two equations gives $s=2.5$ and the walk takes $\\boxed{204}$ minutes.",
         "answer": "204", "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1"},
        {"id": 61, "problem": "Find the remainder when $2024$ is divided by $1000$.", "solution": "It is 24.",
         "answer": "024", "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_2"},
        {"id": 62, "problem": "A problem whose answer was lost.", "solution": "", "url": ""},
    ]),
    "amc23": ("amc23", [
        {"id": 0, "question": "Cities $A$ and $B$ are $45$ miles apart. Alicia bikes toward $B$ at 18 miles per "
                              "hour and Beth toward $A$ at 12. How many miles from $A$ will they meet?",
         "answer": 27.0, "url": "https://artofproblemsolving.com/wiki/index.php/2023_AMC_12A_Problems/Problem_1"},
        {"id": 1, "question": "What is $\\frac{7}{2}$ as a decimal?", "answer": 3.5, "url": ""},
        {"id": 2, "question": "A question without its answer.", "url": ""},
    ]),
}
GOLD = {"minerva": ["1.6", "\\frac{1}{2}"], "olympiadbench": ["\\frac{3}{4}", "(2,3)"], "aime24": ["204", "024"],
        "amc23": ["27", "3.5"]}
SETTINGS = GradingSettings(math_timeout_s=20.0)


def write_suite(root: Path) -> Path:
    """Write the four fixture files under `root` (the data-root layout); return `root`."""
    for folder, rows in FIXTURES.values():
        path = root / folder / "test.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows) + BAD + "\n")
    return root


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    return write_suite(tmp_path_factory.mktemp("suite"))


@pytest.mark.parametrize(("row", "gold"), [
    ({"problem": "p", "solution": "so $x=\\boxed{\\frac{1}{2}}$ and \\boxed{3}."}, "3"),  # Qwen minerva_math
    ({"question": "q", "answer": "1.6"}, "1.6"),  # math-ai/minervamath
    ({"question": "q", "final_answer": ["$\\frac{3}{4}$", "$0.75$"]}, "\\frac{3}{4}"),  # OlympiadBench
    ({"question": "q", "final_answer": " $(1,2)$ "}, "(1,2)"),
    ({"problem": "p", "answer": "204", "solution": "wrong \\boxed{999}"}, "204"),  # Qwen aime24: answer first
    ({"problem": "p", "solution": "\\boxed{204}"}, "204"),  # math-ai/aime24
    ({"question": "q", "answer": 27.0}, "27"),  # AMC23 floats
    ({"question": "q", "answer": 2.5}, "2.5"),
    ({"question": "q", "answer": 0}, "0"),
    ({"question": "q", "answer": " ", "final_answer": [], "solution": ["a", "so \\boxed{7}."]}, "7"),
])
def test_gold_answer_of_every_layout(row, gold):
    assert math_gold(row) == gold


@pytest.mark.parametrize("row", [{"question": "q"}, {"question": "q", "solution": "no box"},
                                 {"question": "q", "final_answer": ["$$"]}, {"question": "q", "answer": None}])
def test_a_row_without_gold_raises_value_error(row):
    with pytest.raises(ValueError, match="no gold answer"):
        math_gold(row)


def test_question_text_prefers_question_then_problem():
    assert math_question({"question": "Q", "problem": "P"}) == "Q"
    assert math_question({"problem": " P "}) == "P"
    with pytest.raises(ValueError, match="no `question` or `problem`"):
        math_question({"answer": "1"})


@pytest.mark.parametrize("name", sorted(SUITE))
def test_suite_benchmark_attributes(name):
    bench = get_benchmark(name)
    assert (bench.rows, bench.task, bench.default_template, bench.hub) == (SUITE[name], "math", "qwen-boxed", HUB[name])


@pytest.mark.parametrize("name", sorted(SUITE))
def test_fixture_files_load_with_bad_rows_recorded_and_golds_grade_correct(name, suite):
    bench = get_benchmark(name, data_dir=suite)
    loaded = bench.load()
    problems = loaded.problems
    assert loaded.total_rows == len(problems) == 4
    assert [p.error is None for p in problems] == [True, True, False, False]
    assert "no gold answer" in problems[2].error and "malformed JSON" in problems[3].error
    assert [p.gold for p in problems[:2]] == GOLD[name]
    assert [p.id for p in problems] == [f"{name}/0", f"{name}/1", f"{name}/row2", f"{name}/row3"]
    path = suite / FIXTURES[name][0] / "test.jsonl"
    assert loaded.sources == [{"path": str(path), "sha256": sha256_file(path)}]
    good = problems[:2]
    grades = grade(bench, good, [bench.reference(p) for p in good], SETTINGS)
    assert [g.status for g in grades] == ["correct", "correct"]
    wrong = grade(bench, good, ["The final answer is \\boxed{41}."] * 2, SETTINGS)
    assert [g.status for g in wrong] == ["wrong", "wrong"]


def test_hub_layouts_load_through_the_same_getter(tmp_path):
    hub_rows = {"minerva": {"question": "q", "answer": "7.2"}, "aime24": {"problem": "p", "solution": "\\boxed{104}"},
                "olympiadbench": {"question": "q", "final_answer": ["$x^{2}$"]}, "amc23": {"question": "q", "answer": 9.0}}
    for name, row in hub_rows.items():
        bench = get_benchmark(name)
        problem = bench.to_problem(row, 0)
        assert (problem.question, problem.gold) == (row.get("question") or row["problem"],
                                                    {"minerva": "7.2", "aime24": "104", "olympiadbench": "x^{2}",
                                                     "amc23": "9"}[name])


def _local(tmp_path: Path, rows: list, name: str = "mine.jsonl", array: bool = False) -> Path:
    path = tmp_path / name
    text = json.dumps(rows) if array else "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    path.write_text(text)
    return path


def test_local_file_benchmark_prompts_golds_and_bad_rows(tmp_path):
    path = _local(tmp_path, [{"question": "What is 2 + 3?", "answer": 5, "prompt": "Add: 2 + 3. Box it."},
                             {"problem": "What is 7 * 6?", "answer": "42"}, {"question": "no answer"}, "{oops"])
    bench = get_benchmark(f"mine={path}")
    assert (bench.name, bench.task, bench.default_template) == ("mine", "math", "qwen-boxed")
    loaded = bench.load()
    first, second, missing, broken = loaded.problems
    assert [first.id, first.gold, second.gold] == ["mine/0", "5", "42"]
    assert bench.instruction(first) == "Add: 2 + 3. Box it."  # the row's prompt, verbatim
    assert bench.instruction(second) == f"What is 7 * 6?\n{BOXED_INSTRUCTION}"
    assert "no gold answer" in missing.error and "malformed JSON" in broken.error
    assert loaded.sources == [{"path": str(path), "sha256": sha256_file(path)}]
    grades = grade(bench, [first, second], [bench.reference(first), "so \\boxed{41}"], SETTINGS)
    assert [g.status for g in grades] == ["correct", "wrong"]


def test_local_file_benchmark_reads_a_json_array(tmp_path):
    path = _local(tmp_path, [{"question": "1 + 1?", "answer": "2"}, "not an object"], "rows.json", array=True)
    problems = get_benchmark(f"arr={path}").load().problems
    assert problems[0].gold == "2" and "not an object" in problems[1].error


@pytest.mark.parametrize(("item", "expected"), [
    ("mine=MISSING", ["benchmarks: benchmark 'mine=", "no such file", "missing.jsonl"]),
    ("gsm8k=HERE", ["'gsm8k' is a built-in benchmark"]),
    ("my bench=HERE", ["NAME must be letters"]),
    ("=HERE", ["NAME must be letters"]),
    ("mine=HERE,mine=HERE", ["'mine' is given twice"]),
    ("gsm8k,gsm8k", ["'gsm8k' is given twice"]),
    ("gsm9k", ["unknown benchmark 'gsm9k'", "NAME=PATH"]),
])
def test_bad_benchmark_items_fail_in_the_config_with_a_clear_error(tmp_path, item, expected):
    here = _local(tmp_path, [{"question": "q", "answer": "1"}])
    item = item.replace("MISSING", str(tmp_path / "missing.jsonl")).replace("HERE", str(here))
    with pytest.raises(ValueError) as err:
        EvalConfig(benchmarks=item)
    for text in expected:
        assert text in str(err.value), (text, str(err.value))


def test_prift_eval_runs_the_suite_and_a_local_file_end_to_end(tmp_path, suite, tiny_checkpoint):
    local = _local(tmp_path, [{"question": "What is 2 + 3?", "answer": "5", "prompt": "Add 2 and 3. Box it."},
                              {"question": "What is 4 + 4?", "answer": "8"}])
    out = tmp_path / "run"
    rc = main(["eval", "--model", str(tiny_checkpoint), "--benchmarks", f"minerva,olympiadbench,aime24,amc23,mine={local}",
               "--data_dir", str(suite), "--template", "mine=chat", "--max_tokens", "4", "--batch_size", "8",
               "--output_dir", str(out), "--progress", "false"])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert list(results) == ["minerva", "olympiadbench", "aime24", "amc23", "mine"]
    for name in SUITE:
        result = results[name]
        assert (result["rows_documented"], result["rows_loaded"], result["template"]) == (SUITE[name], 4, "qwen-boxed")
        assert [b["id"] for b in result["bad_rows"]] == [f"{name}/row2", f"{name}/row3"]
        assert sum(result["counts"].values()) == 4 and result["counts"].get("error") == 2
        assert result["data"][0]["path"] == str(suite / FIXTURES[name][0] / "test.jsonl")
    mine = results["mine"]
    assert (mine["rows_loaded"], mine["template"], mine["samples_file"]) == (2, "chat", "samples/mine.jsonl")
    assert mine["data"] == [{"path": str(local), "sha256": sha256_file(local)}]
    samples = [json.loads(line) for line in (out / "samples" / "mine.jsonl").read_text().splitlines()]
    assert [s["problem_id"] for s in samples] == ["mine/0", "mine/1"] and [s["gold"] for s in samples] == ["5", "8"]
    assert "Add 2 and 3. Box it." in samples[0]["prompt"] and "What is 2 + 3?" not in samples[0]["prompt"]
    assert f"What is 4 + 4?\n{BOXED_INSTRUCTION}" in samples[1]["prompt"]
