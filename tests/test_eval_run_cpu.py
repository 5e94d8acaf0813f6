"""End to end on a tiny random model: resume after a simulated kill, `prift eval` on every benchmark through
`main([...])`, `prift report`, and the sliding-window perplexity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from prift import main
from prift.core.paths import data_root
from prift.eval.backend_hf import HFBackend
from prift.eval.benchmarks import benchmark_names, get_benchmark
from prift.eval.config import EvalConfig
from prift.eval.perplexity import perplexity
from prift.eval.runner import evaluate
from prift.models.tiny import save_tiny_checkpoint

needs_data = pytest.mark.skipif(data_root() is None, reason="benchmark data dir ($PRIFT_DATA_DIR or ../shared/data) absent")


class SimulatedKill(Exception):
    pass


class CountingBackend:
    """Wraps a real backend: counts generate calls and generated samples; raises after `kill_after` calls."""

    def __init__(self, inner, kill_after: int | None = None) -> None:
        self.inner, self.kill_after = inner, kill_after
        self.calls, self.samples, self.prompts = 0, 0, []
        self.tokenizer = inner.tokenizer

    def generate(self, prompts, counts, sampling, seed):
        if self.kill_after is not None and self.calls >= self.kill_after:
            raise SimulatedKill
        self.calls += 1
        self.samples += sum(counts)
        self.prompts.append(list(prompts))
        return self.inner.generate(prompts, counts, sampling, seed)

    def describe(self):
        return self.inner.describe()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("eval-tiny") / "qwen2", arch="qwen2", seed=0)


@pytest.fixture(scope="module")
def hf_backend(tiny):
    return HFBackend(str(tiny), batch_size=8)


def _samples(run_dir: Path, name: str) -> dict:
    rows = [json.loads(line) for line in (run_dir / "samples" / f"{name}.jsonl").read_text().splitlines()]
    return {(r["problem_id"], r["sample"]): (r["completion"], r["status"], r["prompt"]) for r in rows}


def test_chunks_hold_the_prompts_longest_first_as_lm_eval_batches_them(tmp_path, hf_backend):
    questions = ["What is 1 + 1?", "A much longer question about the sum of 2 and 3, asked at length?", "Hi?",
                 "What is 10 - 4, and why?", "Compute 7 * 6.", "Say 5."]
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": "2", "prompt": q}) + "\n" for q in questions))
    backend = CountingBackend(hf_backend)
    evaluate(EvalConfig(output_dir=str(tmp_path / "out"), model_name_or_path="tiny", benchmarks=f"q={data}",
                        template="chat", use_chat_template="false", batch_size=2, max_tokens=2, progress=False),
             backend=backend)
    tok = hf_backend.tokenizer
    expected = sorted(questions, key=lambda q: (-len(tok(q, add_special_tokens=False)["input_ids"]), q))
    assert backend.prompts == [expected[i:i + 2] for i in range(0, len(expected), 2)]
    assert set(_samples(tmp_path / "out", "q")) == {(f"q/{i}", 0) for i in range(len(questions))}


@needs_data
def test_resume_after_kill_gives_identical_results_without_regenerating(tmp_path, tiny, hf_backend):
    settings = dict(model_name_or_path=str(tiny), benchmarks="gsm8k,mmlu_medical", max_samples=6, n=2, temperature=1.0,
                    max_tokens=6, chunk_size=2, seed=3, progress=False)
    full = CountingBackend(hf_backend)
    evaluate(EvalConfig(output_dir=str(tmp_path / "a"), **settings), backend=full)
    assert full.calls == 6 and full.samples == 24  # 2 benchmarks x 3 chunks; 6 problems x 2 samples each

    killed = CountingBackend(hf_backend, kill_after=4)  # dies at the first mmlu_medical chunk after one more
    with pytest.raises(SimulatedKill):
        evaluate(EvalConfig(output_dir=str(tmp_path / "b"), **settings), backend=killed)
    with open(tmp_path / "b" / "samples" / "mmlu_medical.jsonl", "a") as handle:
        handle.write('{"problem_id": "mmlu_medical/anatomy/5", "sam')  # a line cut short by the kill

    resumed = CountingBackend(hf_backend)
    evaluate(EvalConfig(output_dir=str(tmp_path / "b"), **settings), backend=resumed)
    assert resumed.calls == 2 and resumed.samples == 8  # only the two unfinished mmlu_medical chunks

    for name in ("gsm8k", "mmlu_medical"):
        assert _samples(tmp_path / "a", name) == _samples(tmp_path / "b", name)
    first = json.loads((tmp_path / "a" / "results.json").read_text())["results"]
    second = json.loads((tmp_path / "b" / "results.json").read_text())["results"]
    for name in ("gsm8k", "mmlu_medical"):
        assert first[name]["metrics"] == second[name]["metrics"]
        assert first[name]["counts"] == second[name]["counts"]

    again = CountingBackend(hf_backend)  # a finished run generates nothing
    evaluate(EvalConfig(output_dir=str(tmp_path / "b"), **settings), backend=again)
    assert again.calls == 0
    with pytest.raises(ValueError, match="other settings"):
        evaluate(EvalConfig(output_dir=str(tmp_path / "b"), **{**settings, "temperature": 0.5}), backend=again)


@needs_data
def test_prift_eval_cli_runs_every_benchmark_end_to_end(tmp_path, tiny, capsys):
    from test_eval_math_suites_cpu import FIXTURES, write_suite  # small fixture files of the math suite

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    suite = {folder for folder, _ in FIXTURES.values()}
    for folder in data_root().iterdir():
        if folder.name not in suite:  # a link to a suite folder would let write_suite write into the shared data
            (data_dir / folder.name).symlink_to(folder)
    write_suite(data_dir)
    out = tmp_path / "run"
    rc = main(["eval", "--model", str(tiny), "--benchmarks", "all", "--limit", "5", "--max_tokens", "4",
               "--output_dir", str(out), "--progress", "false", "--batch_size", "5", "--data_dir", str(data_dir)])
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    assert set(data["results"]) == set(benchmark_names())
    for name, result in data["results"].items():
        problems = min(5, result["rows_loaded"])  # the math-suite fixtures have 4 rows
        assert result["problems"] == problems and result["samples"] == problems, name
        assert sum(result["counts"].values()) == problems
        assert 0.0 <= result["metrics"]["pass@1"]["value"] <= 1.0
        assert len(_samples(out, name)) == problems
        assert all(len(s["sha256"]) == 64 for s in result["data"])
        rows = [json.loads(line) for line in (out / "samples" / f"{name}.jsonl").read_text().splitlines()]
        cut = sum(r.get("finish_reason") == "length" for r in rows)  # rows that never generated have none
        assert result["truncation"] == {"samples": cut, "fraction": round(cut / len(rows), 4), "max_tokens": 4}
        defaults = get_benchmark(name).generation  # the harness's defaults are recorded beside the override
        assert result["generation_defaults"] == defaults and defaults["max_tokens"] > 4
        assert result["sampling"]["temperature"] == defaults.get("temperature", 0.0), name
    # a random tiny model rarely stops within 4 tokens: the cut benchmarks are named
    err = capsys.readouterr().err
    assert "stopped at max_tokens=4 and were graded cut" in err and "gsm8k:" in err
    assert data["versions"]["math-verify"] and "vllm" in data["versions"]
    assert data["model"]["backend"] == "hf" and data["wall_time_s"] > 0
    assert data["results"]["humaneval"]["sandbox_isolation"] is not None
    assert set(data["results"]["mmlu_medical"]["subsets"]) == {"anatomy"}  # the first 5 rows are anatomy

    report = tmp_path / "report"
    assert main(["report", str(out), str(out), "--labels", "tiny-a,tiny-b", "--output_dir", str(report)]) == 0
    md = (report / "report.md").read_text()
    assert md.count("| tiny-") == 2 and "gsm8k pass@1" in md and "humaneval pass@1" in md
    assert "<table>" in (report / "report.html").read_text()
    assert (report / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_bad_settings(tmp_path, tiny, capsys):
    assert main(["eval", "--model", str(tiny), "--benchmarks", "gsm9k", "--output_dir", str(tmp_path)]) == 2
    assert "unknown benchmark 'gsm9k'" in capsys.readouterr().err
    assert main(["eval", "--model", str(tiny), "--template", "qwen-boxd", "--output_dir", str(tmp_path)]) == 2
    assert main(["report", str(tmp_path / "missing")]) == 1


def test_perplexity_matches_a_full_context_forward_and_counts_each_token_once(hf_backend):
    model = hf_backend.model
    ids = hf_backend.tokenizer("The quick brown fox jumps over the lazy dog. " * 6)["input_ids"]
    with torch.no_grad():
        full = model(torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()  # mean NLL of tokens 1..L-1
    one_window = perplexity(model, ids, window=len(ids), stride=len(ids))
    assert one_window["tokens"] == len(ids) - 1
    assert one_window["nll"] == pytest.approx(full, rel=1e-5)
    assert one_window["ppl"] == pytest.approx(math.exp(full), rel=1e-5)
    strided = perplexity(model, ids, window=16, stride=8)
    assert strided["tokens"] == len(ids) - 1 and strided["windows"] == math.ceil((len(ids) - 16) / 8) + 1


def test_perplexity_from_a_local_text_file(tmp_path, tiny):
    text = tmp_path / "wiki.txt"
    text.write_text("Natalia sold clips to 48 of her friends in April.\n\n" * 20)
    out = tmp_path / "ppl"
    rc = main(["eval", "--model", str(tiny), "--benchmarks", "", "--perplexity", str(text), "--output_dir", str(out),
               "--perplexity_window", "64", "--perplexity_stride", "32", "--progress", "false"])
    assert rc == 0
    result = json.loads((out / "results.json").read_text())["results"][f"ppl:{text}"]
    assert result["tokens"] > 100 and 1.0 < result["ppl"] < 1000  # a 384-token vocabulary bounds a random model
    assert result["data"][0]["sha256"]
