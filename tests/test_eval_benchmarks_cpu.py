"""Loaders return the documented row counts; gold answers / canonical solutions graded through the eval grading
path score 100%; a model that always answers "0" scores what the gold answers allow; bad rows fail alone."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from prift.core.paths import data_root
from prift.eval.benchmarks import Benchmark, Problem, benchmark_names, get_benchmark, read_json_rows, read_jsonl
from prift.eval.grading import GradingSettings, grade
from prift.rewards.sandbox import SandboxConfig

DATA = data_root()
needs_data = pytest.mark.skipif(DATA is None, reason="benchmark data dir ($PRIFT_DATA_DIR or ../shared/data) absent")
SETTINGS = GradingSettings(math_timeout_s=20.0, sandbox=SandboxConfig(timeout_s=20.0, workers=2))
# documented in ../shared/data/*/SOURCE.md (split sizes of the evaluated split)
DOCUMENTED = {"gsm8k": 1319, "math": 5000, "math500": 500, "humaneval": 164, "mbpp": 500, "mbpp_sanitized": 257,
              "mbpp_plus": 378, "humaneval_plus": 164, "livecodebench": 8, "medqa": 1273, "medmcqa": 4183, "mmlu_medical": 1089,
              "pubmedqa": 500}
# how many rows the gold check grades (all where grading is fast; a spread subset where it is slow)
GOLD_ROWS = {"math": 150, "math500": 200}
# graded against their canonical solutions (base and plus, with evalplus's documented exceptions) in
# test_eval_evalplus_cpu.py, where the expected outputs are built once per session
OWN_GOLD_TESTS = {"mbpp_plus", "humaneval_plus"}


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """evalplus expected outputs are cached under $PRIFT_CACHE_DIR: tests write only under their tmp dirs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRIFT_CACHE_DIR", str(tmp_path_factory.mktemp("prift-cache")))
        yield


def test_every_issue_benchmark_is_registered():
    assert set(DOCUMENTED) <= set(benchmark_names())


@needs_data
@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_loader_row_counts_and_no_bad_rows(name):
    bench = get_benchmark(name)
    if name in OWN_GOLD_TESTS:  # loading computes every expected output (minutes): test_eval_evalplus_cpu.py loads
        rows = read_json_rows(DATA / bench.files[0])  # and grades all but its HEAVY tasks (all: PRIFT_EVALPLUS_FULL=1)
        assert bench.rows == len(rows) == DOCUMENTED[name] and len({r["task_id"] for r in rows}) == len(rows)
        return
    loaded = bench.load()
    assert bench.rows == DOCUMENTED[name]
    assert loaded.total_rows == len(loaded.problems) == DOCUMENTED[name]
    assert [p.error for p in loaded.problems if p.error] == []
    assert len({p.id for p in loaded.problems}) == len(loaded.problems)
    assert all(len(s["sha256"]) == 64 for s in loaded.sources)


@needs_data
def test_mmlu_medical_subject_counts_and_livecodebench_date_window():
    problems = get_benchmark("mmlu_medical").load().problems
    counts = {s: sum(p.meta["subject"] == s for p in problems) for s in {p.meta["subject"] for p in problems}}
    assert counts == {"anatomy": 135, "clinical_knowledge": 265, "college_biology": 144, "college_medicine": 173,
                      "medical_genetics": 100, "professional_medicine": 272}
    dates = [p.meta["contest_date"][:10] for p in get_benchmark("livecodebench").load().problems]
    window = get_benchmark("livecodebench", start_date="2025-03-01", end_date="2025-03-31").load().problems
    assert len(window) == sum("2025-03-01" <= d <= "2025-03-31" for d in dates) and 0 < len(window) < 8


def _spread(problems: list[Problem], count: int | None) -> list[Problem]:
    if not count or count >= len(problems):
        return problems
    step = len(problems) / count
    return [problems[int(i * step)] for i in range(count)]


def _with_lcb_references(problems: list[Problem]) -> list[Problem]:
    from test_sandbox_benchmarks_cpu import LCB_SOLUTIONS  # independent solutions written for the sandbox tests

    for p in problems:
        p.meta["reference"] = LCB_SOLUTIONS[p.id]
    return problems


@needs_data
@pytest.mark.parametrize("name", sorted(set(DOCUMENTED) - OWN_GOLD_TESTS))
def test_gold_answers_score_100_percent_through_the_eval_grader(name):
    bench = get_benchmark(name)
    problems = _spread(bench.load().problems, GOLD_ROWS.get(name))
    if name == "livecodebench":
        problems = _with_lcb_references(problems)
    grades = grade(bench, problems, [bench.reference(p) for p in problems], SETTINGS)
    failures = [(p.id, g.status, g.detail[:200]) for p, g in zip(problems, grades, strict=True)
                if g.status != "correct"]
    assert failures == []


def _is_zero(gold: str) -> bool:
    try:
        return Fraction(gold.replace(",", "")) == 0
    except ValueError:
        return False


@needs_data
@pytest.mark.parametrize("name", ["gsm8k", "math500", "humaneval", "mbpp", "medqa", "pubmedqa"])
def test_always_zero_model_scores_only_where_the_gold_is_zero(name):
    bench = get_benchmark(name)
    problems = bench.load().problems
    if bench.task == "code":
        problems = problems[:40]
    grades = grade(bench, problems, ["0"] * len(problems), SETTINGS)
    correct = sum(g.status == "correct" for g in grades)
    expected = sum(_is_zero(str(p.gold)) for p in problems) if bench.task == "math" else 0
    assert correct == expected
    assert correct / len(problems) < 0.02


def test_bad_rows_and_crashing_grading_fail_only_their_row(tmp_path):
    rows = [{"question": "What is 2+2?", "answer": "4\n#### 4"}, {"question": "no gold"}, "not json",
            {"question": "What is 3+3?", "answer": "#### 6"}]
    path = tmp_path / "gsm8k" / "test.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    bench = get_benchmark("gsm8k", data_dir=tmp_path)
    problems = bench.load().problems
    assert [p.error is None for p in problems] == [True, False, False, True]
    assert "KeyError" in problems[1].error and "malformed JSON" in problems[2].error

    class Exploding(Benchmark):
        name, task = "exploding", "code"

        def program(self, problem, completion):
            if completion == "boom":
                raise RuntimeError("cannot build program")
            return completion

    code = [Problem("a", "", "assert f() == 1"), Problem("b", "", "assert f() == 1")]
    grades = grade(Exploding(), code, ["def f():\n    return 1", "boom"], SETTINGS)
    assert [g.status for g in grades] == ["correct", "error"] and "cannot build program" in grades[1].detail


@needs_data
def test_read_jsonl_reads_the_gzipped_humaneval():
    assert len(read_jsonl(DATA / "humaneval" / "HumanEval.jsonl.gz")) == 164


def test_every_benchmark_has_its_harness_generation_defaults_and_names_the_source():
    for name in benchmark_names():
        cls = type(get_benchmark(name))
        assert cls.generation.get("max_tokens", 0) >= 1, name
        source = next(c for c in cls.__mro__ if "generation" in vars(c))  # the class that sets them states where from
        assert "Generation defaults:" in (source.__doc__ or ""), (name, source.__name__)


def test_generation_defaults_apply_unless_the_user_sets_them():
    from prift.eval.config import EvalConfig

    lcb = get_benchmark("livecodebench").generation
    chosen = EvalConfig().sampling(defaults=lcb)
    assert (chosen.max_tokens, chosen.temperature, chosen.top_p) == (1200, 0.2, 0.95)
    assert EvalConfig(max_tokens=7).sampling(defaults=lcb).max_tokens == 7
    assert EvalConfig(temperature=0.0).sampling(defaults=lcb).temperature == 0.0
    assert EvalConfig().sampling(defaults={"max_tokens": 256}).temperature == 0.0  # greedy where nothing says
    with pytest.raises(ValueError, match="sets no default"):
        EvalConfig().sampling(defaults={})
