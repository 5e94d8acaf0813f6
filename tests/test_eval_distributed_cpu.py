"""`prift eval` under `accelerate launch` with 2 CPU processes (gloo) equals a 1-process run: the same samples in
the same order, the same metrics, results.json written by rank 0 alone; and a 2-process run whose ranks died
part-way, resumed with 1 process, reuses every sample the ranks wrote and ends as an uninterrupted run.

Run as a module (`python -m test_eval_distributed_cpu eval ...`, tests on PYTHONPATH), this file is `prift` with
two hooks read from the environment: EVAL_LOG=<file> logs each generate call (`<rank> generate <chunk seed>`) and
each json file the runner writes (`<rank> write <name>`); EVAL_DIE_AT="a,b" makes rank 0 (1) exit abruptly at its
a-th (b-th) generate call (`os._exit`: no cleanup, like a SIGKILL, but status 0 so the launcher reports success).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from launch import accelerate_launch, needs_accelerate, run_command

pytestmark = [needs_accelerate, pytest.mark.slow]

ARITH = Path(__file__).resolve().parents[1] / "recipes" / "data" / "arith" / "test.jsonl"
BENCHMARKS = ("arith", "arith_b")  # two names over one file: two benchmarks, each with its own chunk seeds
TIMING = ("gen_s", "grade_s")  # per-row wall times: the only fields that differ between equal runs
MODULE = Path(__file__).stem
ONE_PROCESS = [sys.executable, "-m", MODULE]


def eval_args(model: Path, out: Path) -> list[str]:
    return ["eval", "--model", str(model), "--output_dir", str(out),
            "--benchmarks", ",".join(f"{name}={ARITH}" for name in BENCHMARKS), "--limit", "7", "--n", "2",
            "--temperature", "1.0", "--max_tokens", "8", "--chunk_size", "1", "--seed", "11", "--progress", "false"]


def chunk_order(model: Path, rows: list[dict]) -> list[str]:
    """Problem ids longest prompt first (tokens, then text), the order eval cuts its chunks in."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model))
    prompts = {r["problem_id"]: r["prompt"] for r in rows}
    return sorted(prompts, key=lambda i: (-len(tok(prompts[i], add_special_tokens=False)["input_ids"]), prompts[i]))


def sample_lines(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / "samples" / f"{name}.jsonl").read_text().splitlines()]


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def events(log: Path) -> list[tuple[int, str, str]]:
    """(rank, event, what) of each line the hooks logged; the file is removed for the next run."""
    lines = log.read_text().splitlines()
    log.unlink()
    return [(int(rank), event, what) for rank, event, what in (line.split() for line in lines)]


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def assert_same_run(out: Path, reference: Path) -> None:
    """Same rows in the same order (timings aside), same scores, and nothing left of the ranks' shards."""
    assert sorted(p.name for p in (out / "samples").iterdir()) == sorted(
        p.name for p in (reference / "samples").iterdir())
    for name in BENCHMARKS:
        assert without_timing(sample_lines(out, name)) == without_timing(sample_lines(reference, name)), name
        got, want = results(out)["results"][name], results(reference)["results"][name]
        for key in ("metrics", "counts", "problems", "samples", "subsets"):
            assert got.get(key) == want.get(key), (name, key)


def test_two_processes_equal_one_and_a_killed_launch_resumes_with_one(tmp_path, tiny_checkpoint):
    one, two, killed, log = tmp_path / "one", tmp_path / "two", tmp_path / "killed", tmp_path / "events.log"
    run_command(ONE_PROCESS + eval_args(tiny_checkpoint, one), tmp_path / "cache", EVAL_LOG=str(log))
    assert len(sample_lines(one, "arith")) == 14 and results(one)["model"]["device"] == "cpu"
    seeds = [what for _, event, what in events(log) if event == "generate"]
    assert len(seeds) == 14  # 2 benchmarks x 7 chunks

    run_command(accelerate_launch(2, module=MODULE) + eval_args(tiny_checkpoint, two), tmp_path / "cache",
                EVAL_LOG=str(log))
    assert_same_run(two, one)
    assert results(two)["processes"] == 2 and results(two)["model"]["device"] == "cpu"
    logged = events(log)
    for rank in (0, 1):  # rank r generates chunks r, r + 2, ... of each benchmark, and nothing else
        assert [w for r, e, w in logged if r == rank and e == "generate"] == seeds[rank:7:2] + seeds[7 + rank::2]
    assert {r for r, e, w in logged if e == "write" and w == "results.json"} == {0}

    # rank 0 dies at its 3rd generate call (arith chunks 0, 2 written), rank 1 at its 2nd (chunk 1 written)
    run_command(accelerate_launch(2, module=MODULE) + eval_args(tiny_checkpoint, killed), tmp_path / "cache",
                EVAL_DIE_AT="3,2")
    shards = [killed / "samples" / f"arith.rank{rank}.jsonl" for rank in (0, 1)]
    written = [shard.read_text().splitlines() for shard in shards]
    order = chunk_order(tiny_checkpoint, sample_lines(one, "arith"))  # chunk i holds problem order[i]
    assert [sorted({json.loads(line)["problem_id"] for line in lines}) for lines in written] == [
        sorted([order[0], order[2]]), [order[1]]]
    assert not (killed / "results.json").exists()
    with open(shards[1], "a") as handle:
        handle.write(f'{{"problem_id": "{order[3]}", "sam')  # a line cut short by the kill

    run_command(ONE_PROCESS + eval_args(tiny_checkpoint, killed), tmp_path / "cache", EVAL_LOG=str(log))
    assert [w for _, e, w in events(log) if e == "generate"] == seeds[3:]  # only the chunks no rank wrote
    assert_same_run(killed, one)
    final = (killed / "samples" / "arith.jsonl").read_text().splitlines()
    assert set(written[0] + written[1]) <= set(final)  # the ranks' rows, kept as written (timings too)


def _install_fault_hooks() -> None:
    import prift.eval.runner as runner
    from prift.eval.backend_hf import HFBackend

    rank = int(os.environ.get("RANK", "0"))
    die_at = int(os.environ.get("EVAL_DIE_AT", "0,0").split(",")[rank])
    generate, write, calls = HFBackend.generate, runner.write_json_atomic, []

    def note(event: str, what) -> None:
        if "EVAL_LOG" in os.environ:
            with open(os.environ["EVAL_LOG"], "a") as handle:
                handle.write(f"{rank} {event} {what}\n")

    def hooked_generate(self, prompts, counts, sampling, seed):
        calls.append(seed)
        if len(calls) == die_at:
            os._exit(0)
        note("generate", seed)
        return generate(self, prompts, counts, sampling, seed)

    def hooked_write(path, payload):
        note("write", Path(path).name)
        return write(path, payload)

    HFBackend.generate, runner.write_json_atomic = hooked_generate, hooked_write


if __name__ == "__main__":
    from prift import main

    _install_fault_hooks()
    sys.exit(main(sys.argv[1:]))
