"""Running prift in child processes for the multi-process CPU tests: `accelerate launch` commands and a runner that
fails (instead of blocking) on a hang.

Children see no GPU (these are CPU tests wherever they run) and get one torch/OpenMP thread each (two ranks on two
cores would otherwise spin-wait on each other), a private prift cache and the tests folder on PYTHONPATH, so rewards
and probes in test modules import by dotted path.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
HAS_ACCELERATE = importlib.util.find_spec("accelerate.commands.launch") is not None
needs_accelerate = pytest.mark.skipif(not HAS_ACCELERATE, reason="accelerate's launcher is not installed")


def free_port() -> int:
    """A TCP port nothing listens on now (for a launch's rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accelerate_launch(num_processes: int = 2, *options: str, module: str = "prift") -> list[str]:
    """`accelerate launch` of `python -m <module>` on `num_processes` CPU processes (gloo DDP without other
    options; pass e.g. `--config_file recipes/accelerate/zero3.yaml` for DeepSpeed). The ranks meet on a free port,
    not accelerate's fixed 29500, so launches running at the same time do not collide."""
    distributed = () if any(o.startswith("--config_file") for o in options) else ("--multi_gpu",)
    return [sys.executable, "-m", "accelerate.commands.launch", *distributed, "--num_processes", str(num_processes),
            "--num_machines", "1", "--main_process_port", str(free_port()), "--mixed_precision", "no",
            "--dynamo_backend", "no", *options, "-m", module]


def prift_command() -> list[str]:
    """`python -m prift` in this interpreter (one process, no launcher)."""
    return [sys.executable, "-m", "prift"]


def run_command(cmd: list[str], cache: Path, timeout_s: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Run `cmd` to completion; a non-zero exit or a run longer than `timeout_s` (a hang) fails the test with the
    end of its output."""
    python_path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PRIFT_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": python_path, **env}
    # a session of its own, so that a hang kills the launcher *and* its ranks
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as child:
        try:
            stdout, stderr = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            stdout, stderr = child.communicate()
            pytest.fail(f"{' '.join(cmd[:8])} ... did not finish in {timeout_s} s (a hang?)\n{stderr[-4000:]}")
    assert child.returncode == 0, stderr[-4000:]
    return subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
