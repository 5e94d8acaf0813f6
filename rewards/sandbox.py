"""Run untrusted (model-written) Python against tests, isolated, many programs in parallel.

Contract (DESIGN.md): ``run_tests(program, tests, *, timeout_s, memory_mb) -> ExecResult`` runs ``program``
then the assert code ``tests``; ``.status`` is one of

- ``passed``: every test case ran without an exception;
- ``failed``: the program is wrong: a case failed, it raised, did not compile, called ``sys.exit``/``os._exit``
  or died from a signal before the verdict;
- ``timeout``: the wall clock (``timeout_s``, hard kill of the whole process tree) or the CPU limit ran out;
- ``memory``: the address-space limit (``memory_mb``) was hit;
- ``error``: grading itself failed (the tests do not compile, the sandbox could not start).

A timeout or any other outcome is a status, never an exception, and one run never affects another.
``.isolation`` records the layers this run had (:mod:`prift.rewards.isolation`). ``run_many`` grades a batch on
``workers`` threads, each driving one sandbox process at a time.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import marshal
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from prift.rewards.code import TestSpec, parse_tests
from prift.rewards.isolation import SYSTEM_READ_PATHS, Plan, probe

Status = Literal["passed", "failed", "timeout", "memory", "error"]
RUNNER_SOURCE = (Path(__file__).with_name("sandbox_runner.py")).read_text()
INTERPRETER_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3")
PIPE_BUFFER = 65536
PROBE_PROGRAM = "import bisect, collections, decimal, fractions, heapq, itertools, statistics, string"


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one run and how many run at once. ``strict`` refuses to run with any isolation layer missing."""

    timeout_s: float = 10.0
    memory_mb: int = 1024
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_output_bytes: int = 64 * 1024  # program output kept (head, plus the last 4 KiB)
    file_size_mb: int = 16
    disk_mb: int = 64  # tmpfs size of the work dir (where a private mount namespace allows it)
    max_processes: int = 64
    max_open_files: int = 64
    site_packages: bool = False  # False: ``python -S`` (standard library only, ~8 ms faster start-up per run)
    strict: bool = False


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one sandboxed run; ``passed``/``total`` count test cases (for pass-fraction rewards)."""

    status: Status
    detail: str = ""
    passed: int = 0
    total: int = 0
    output: str = ""
    wall_s: float = 0.0
    isolation: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    @property
    def pass_fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0


class _Output:
    """Head (``cap`` bytes) and tail (4 KiB) of a stream; the middle is read and dropped."""

    TAIL = 4096

    def __init__(self, cap: int) -> None:
        self.cap, self.head, self.tail, self.dropped = cap, bytearray(), bytearray(), 0

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.head)
        self.head += chunk[:room]
        self.tail = (self.tail + chunk[room:])[-self.TAIL :] if len(chunk) > room else self.tail
        self.dropped += max(0, len(chunk) - room)

    def text(self) -> str:
        marker = f"\n[... {self.dropped} bytes dropped ...]\n".encode() if self.dropped > self.TAIL else b""
        return (bytes(self.head) + marker + bytes(self.tail)).decode("utf-8", "replace")


def _read_until(proc: subprocess.Popen, out: _Output, deadline: float) -> bool:
    """Collect output until the process exits (plus a short drain) or the deadline; False on deadline."""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        exited_at = None
        while True:
            now = time.monotonic()
            if now >= deadline:
                return False
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 0.2:  # a leftover grandchild holds the pipe
                return True
            if selector.select(timeout=min(deadline - now, 0.05)):
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    return True
                out.add(chunk)


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the run's process group; with a PID namespace ``unshare --kill-child`` takes the whole tree."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _verdict(text: str, nonce: str) -> dict | None:
    for line in reversed(text.splitlines()):
        if line.startswith(nonce + " "):
            try:
                verdict = ast.literal_eval(line[len(nonce) + 1 :])
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
            return verdict if isinstance(verdict, dict) else None
    return None


def _job(program: str, spec: TestSpec, config: SandboxConfig, plan: Plan, workdir: str, slot: int) -> dict:
    cpu_s = int(config.timeout_s) + 1
    return {
        "program": program,
        "kind": spec.kind,
        "tests": spec.tests,
        "stop_on_failure": True,
        "max_output": config.max_output_bytes,
        "workdir": workdir,
        "tmpfs_mb": config.disk_mb if plan.outer else None,
        "drop_to": plan.drop_to(slot),
        "limits": {
            "as": config.memory_mb * 2**20,
            "cpu": cpu_s,
            "fsize": config.file_size_mb * 2**20,
            "nofile": config.max_open_files,
            "core": 0,
            "nproc": config.max_processes if plan.drop_to(slot) or plan.userns else None,
        },
        "landlock": {"read": [*SYSTEM_READ_PATHS]},
    }


def _status_without_verdict(returncode: int) -> tuple[Status, str]:
    if returncode == -signal.SIGXCPU:
        return "timeout", "CPU time limit"
    return "failed", f"exited with status {returncode} before the tests finished"


def _execute(program: str, spec: TestSpec, config: SandboxConfig, plan: Plan, slot: int, stop: bool) -> ExecResult:
    start = time.monotonic()
    nonce = secrets.token_hex(16)
    workdir = tempfile.mkdtemp(prefix="prift-sandbox-")
    try:
        job = _job(program, spec, config, plan, workdir, slot) | {"stop_on_failure": stop, "nonce": nonce}
        if job["drop_to"]:
            os.chown(workdir, *job["drop_to"])
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": workdir,
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        site = () if config.site_packages else ("-S",)
        argv = [*plan.outer, plan.interpreter, "-I", *site, "-c", RUNNER_SOURCE]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
    except (OSError, TypeError, ValueError) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        return ExecResult("error", f"sandbox did not start: {exc}", isolation=plan.describe(None, slot))
    out = _Output(config.max_output_bytes)
    try:
        payload = marshal.dumps(job, 4)
        if len(payload) < PIPE_BUFFER:  # fits in the pipe: cannot block
            _feed(proc, payload)
        else:
            threading.Thread(target=_feed, args=(proc, payload), daemon=True).start()
        finished = _read_until(proc, out, start + config.timeout_s)
    finally:
        _kill_tree(proc)
        proc.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)
    wall = time.monotonic() - start
    text = out.text()
    verdict = _verdict(text, nonce)
    visible = text if verdict is None else text[: text.rfind(nonce)].rstrip("\n")
    isolation = plan.describe(verdict.get("isolation") if verdict else None, slot)
    if verdict is not None:
        return ExecResult(
            verdict["status"],
            verdict.get("detail", ""),
            verdict.get("passed", 0),
            verdict.get("total", 0),
            visible,
            wall,
            isolation,
        )
    status, detail = (
        ("timeout", f"wall clock > {config.timeout_s} s") if not finished else _status_without_verdict(proc.returncode)
    )
    return ExecResult(status, detail, output=visible, wall_s=wall, isolation=isolation)


def _feed(proc: subprocess.Popen, payload: bytes) -> None:
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except OSError:  # the process died before reading its job: its status says why
        pass


@functools.cache
def current_plan() -> Plan:
    """The probed plan with the first interpreter that can run the standard library inside the sandbox."""
    plan = probe()
    spec = TestSpec("assert", "assert True")
    tried = []
    for interpreter in dict.fromkeys([sys.executable, *INTERPRETER_CANDIDATES]):
        if not os.access(interpreter, os.X_OK):
            continue
        candidate = dataclasses.replace(plan, interpreter=interpreter)
        result = _execute(PROBE_PROGRAM, spec, SandboxConfig(timeout_s=30), candidate, 0, True)
        if result.ok:
            reasons = [*plan.degraded_reasons, *result.isolation["degraded_reasons"]]
            return dataclasses.replace(candidate, degraded_reasons=tuple(dict.fromkeys(reasons)))
        tried.append(f"{interpreter}: {result.status} {result.detail} {result.output[-300:]}")
    raise RuntimeError("no Python interpreter works inside the sandbox: " + "; ".join(tried))


def _checked_plan(config: SandboxConfig) -> Plan:
    plan = current_plan()
    if plan.degraded_reasons:
        if config.strict:
            raise RuntimeError(f"sandbox isolation is degraded: {list(plan.degraded_reasons)}")
        warnings.warn(f"sandbox isolation is degraded: {list(plan.degraded_reasons)}", RuntimeWarning, stacklevel=3)
    return plan


def run_many(
    programs: Sequence[str],
    tests: Sequence[object],
    config: SandboxConfig | None = None,
    *,
    stop_on_failure: bool = True,
) -> list[ExecResult]:
    """Grade ``programs[i]`` against ``tests[i]`` (anything :func:`parse_tests` reads), ``config.workers`` at once.

    A malformed test spec or program gives that row an ``error`` result; the batch always completes.
    ``stop_on_failure=False`` runs every case (for pass-fraction rewards).
    """
    config = config or SandboxConfig()
    plan = _checked_plan(config)
    slots: list[int] = list(range(config.workers))
    lock = threading.Lock()

    def one(program: object, spec: object) -> ExecResult:
        try:
            parsed = parse_tests(spec)
        except ValueError as exc:
            return ExecResult("error", str(exc), isolation=plan.describe(None, 0))
        if not isinstance(program, str):
            return ExecResult("failed", f"program is {type(program).__name__}, not str")
        with lock:
            slot = slots.pop()
        try:
            return _execute(program, parsed, config, plan, slot, stop_on_failure)
        finally:
            with lock:
                slots.append(slot)

    with ThreadPoolExecutor(config.workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(one, programs, tests))


def run_tests(program: str, tests: str, *, timeout_s: float, memory_mb: int) -> ExecResult:
    """Run ``program`` then the assert code ``tests`` in the sandbox (the DESIGN.md contract)."""
    config = SandboxConfig(timeout_s=timeout_s, memory_mb=memory_mb, workers=1)
    return run_many([program], [TestSpec("assert", tests)], config)[0]
