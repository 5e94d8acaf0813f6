"""Run untrusted (model-written) Python against tests, isolated, many programs in parallel.

Contract (docs/design.md): ``run_tests(program, tests, *, timeout_s, memory_mb) -> ExecResult`` runs ``program``
then the assert code ``tests``; ``.status`` is one of

- ``passed``: every test case passed, as judged by the grader process (the program never runs in it);
- ``failed``: the program is wrong: a case failed, it raised (``SyntaxError`` included), returned something that
  is not plain data where data was compared, called ``sys.exit``/``os._exit`` or died before its cases ran;
- ``timeout``: the wall clock (``timeout_s``, hard kill of the whole run) or the CPU limit ran out;
- ``memory``: the address-space limit (``memory_mb`` per process) or the run's cgroup memory limit was hit;
- ``error``: grading itself failed (the tests do not compile, the sandbox could not start, a required isolation
  layer could not be applied, the grader returned no or a malformed verdict).

A timeout or any other outcome is a status, never an exception, and one run never affects another: each run
takes a machine-wide slot (a file lock), so concurrent ``run_many`` calls, threads and ranks never share a uid,
a cgroup or a process budget. ``.isolation`` records the layers this run had, written by the host from its plan
(:mod:`prift.rewards.isolation`). ``run_many`` grades a batch on ``workers`` threads.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import fcntl
import functools
import marshal
import os
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from prift.rewards.code import TestSpec, parse_tests
from prift.rewards.isolation import PROGRAM_LAYERS, SYSTEM_READ_PATHS, Plan, probe
from prift.rewards.sandbox_cgroups import ENTER_FAILED_EXIT, RunCgroup
from prift.rewards.sandbox_zygote import ENV as ZYGOTE_ENV
from prift.rewards.sandbox_zygote import NAMESPACES_FAILED_EXIT, Runner, Zygote, ZygoteGone

Status = Literal["passed", "failed", "timeout", "memory", "error"]
STATUSES = ("passed", "failed", "timeout", "memory", "error")
_HERE = Path(__file__).parent
RUNNER_SOURCE = "\n".join((_HERE / f"sandbox_{part}.py").read_text() for part in ("seccomp", "runner", "launch"))
COMPILE = "import marshal, sys; sys.stdout.buffer.write(marshal.dumps(compile(sys.stdin.read(), 'sandbox_runner', 'exec')))"
INTERPRETER_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3")
PIPE_BUFFER = 65536
GRADER_DEADLINE_MARGIN_S = 0.5  # the grader's own deadline before the run's wall clock
GRADER_MB = 96  # the grader's own interpreter, counted in the run's cgroup (see _run_memory_mb)
MAX_SLOTS = 1024
RUNNER_EXIT_WAIT_S = 5.0  # how long a killed run may take to report its end before the host stops waiting
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
    disable_layers: tuple[str, ...] = ()  # for measuring what each layer contains (tests); recorded in isolation


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


def _parse_verdict(raw: bytes) -> dict | None:
    """The grader's verdict, strictly: the literal of a dict with a known status, str detail and 0 <= passed <= total.

    Only the grader holds the verdict pipe; the checks are there so that no grader bug passes a malformed verdict.
    ``ast.literal_eval`` of at most 64 KiB (marshal could be made to allocate gigabytes by a few bytes)."""
    if len(raw) > 65536:
        return None
    try:
        verdict = ast.literal_eval(raw.decode("utf-8", "replace"))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if type(verdict) is not dict or verdict.get("status") not in STATUSES:
        return None
    detail, passed, total = verdict.get("detail", ""), verdict.get("passed", 0), verdict.get("total", 0)
    if type(detail) is not str or type(passed) is not int or type(total) is not int or not 0 <= passed <= total:
        return None
    if verdict["status"] == "passed" and not 0 < passed == total:
        return None
    layers = verdict.get("layers", {})
    return {"status": verdict["status"], "detail": detail[:4000], "passed": passed, "total": total,
            "layers": layers if type(layers) is dict else {}}


def _job(program: str, spec: TestSpec, config: SandboxConfig, plan: Plan, launch: _Launch, stop: bool) -> dict:
    workdir, slot, zygote_pid = launch.workdir, launch.slot, launch.zygote_pid
    return {
        "program": program,
        "kind": spec.kind,
        "stop_on_failure": stop,
        # counting every case (code_pass_fraction): the grader stops waiting a little before the host's kill, so a
        # program that hangs on a late case keeps the cases it passed
        "deadline_s": None if stop else max(0.1, config.timeout_s - GRADER_DEADLINE_MARGIN_S),
        "max_output": config.max_output_bytes,
        "workdir": workdir,
        "tmpfs_mb": config.disk_mb if plan.namespaces else None,
        "drop_to": plan.drop_to(slot),
        "limits": _limits(config),
        "nproc": config.max_processes + (0 if plan.drop_to(slot) or plan.userns else _processes_of(os.getuid())),
        "landlock_read": [*SYSTEM_READ_PATHS],
        "skip": list(plan.disabled),
        "protect": [] if plan.namespaces else [os.getpid(), zygote_pid],  # same pid namespace: seccomp guards these
        "required": list(plan.program_layers),  # empty only in the probe run, which finds them
    }


def _processes_of(uid: int) -> int:
    """Processes of ``uid`` now: without a uid or user namespace of its own, a run's RLIMIT_NPROC counts them too."""
    count = 0
    for entry in os.scandir("/proc"):
        try:
            count += entry.name.isdigit() and entry.stat().st_uid == uid
        except OSError:
            continue
    return count


def _run_memory_mb(config: SandboxConfig) -> int:
    """The cgroup limit of a whole run: the program's processes, the grader's decoded copy of what they return (each
    up to ``memory_mb``), the tmpfs work dir and the grader's interpreter."""
    return 2 * config.memory_mb + config.disk_mb + GRADER_MB


def _limits(config: SandboxConfig) -> dict:
    return {
        "as": config.memory_mb * 2**20,
        "cpu": int(config.timeout_s) + 1,
        "fsize": config.file_size_mb * 2**20,
        "nofile": config.max_open_files,
        "core": 0,
    }


def _frame(message: object) -> bytes:
    body = marshal.dumps(message, 4)
    return struct.pack(">I", len(body)) + body


def _read_available(fd: int) -> bytes:
    """What is in the verdict pipe now (the run is dead, but never block on a writer that is not)."""
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)


@dataclass
class _Launch:
    """A runner process forked in ``slot`` and waiting for its job (see :func:`_launch`)."""

    proc: Runner
    slot: int
    cgroup: RunCgroup | None
    workdir: str
    verdict_r: int
    zygote_pid: int


def _launch(plan: Plan, config: SandboxConfig, slot: int, zygote: Zygote) -> _Launch:
    """Fork a runner in ``slot``: its cgroup reset and limited, a fresh work dir, its pipes.

    Raises ``OSError``/``RuntimeError`` when it cannot start."""
    cgroup = RunCgroup(plan.cgroups, slot) if plan.cgroups is not None else None
    workdir = tempfile.mkdtemp(prefix="prift-sandbox-")
    pipes = [os.pipe() for _ in range(4)]  # stdin, log, verdict, status: the runner gets the ends in RUN_FDS order
    theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
    try:
        if plan.drop_to(slot):
            os.chown(workdir, *plan.drop_to(slot))
        if cgroup is not None:
            cgroup.prepare(_run_memory_mb(config) * 2**20, config.max_processes + 4)
        request = {
            "workdir": workdir,
            "env": {**ZYGOTE_ENV, "HOME": workdir},
            "cgroup_procs": cgroup.procs_files if cgroup is not None else [],
            "namespaces": plan.namespaces,
            "userns": plan.userns,
            "enter_failed_exit": ENTER_FAILED_EXIT,
            "namespaces_failed_exit": NAMESPACES_FAILED_EXIT,
        }
        pid = zygote.fork(request, theirs)
    except BaseException:
        for fd in (pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]):
            os.close(fd)
        _remove_workdir(workdir)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    proc = Runner(pid, os.fdopen(pipes[0][1], "wb"), os.fdopen(pipes[1][0], "rb", buffering=0), pipes[3][0])
    return _Launch(proc, slot, cgroup, workdir, pipes[2][0], zygote.pid)


def _execute(
    program: str, spec: TestSpec, config: SandboxConfig, plan: Plan, launch: _Launch, stop: bool,
    while_running: Callable[[], None] = lambda: None,
) -> tuple[ExecResult, dict]:
    """One run on a launched runner: job and tests sent, ``while_running()`` called, verdict read and checked,
    everything killed and the work dir removed. The wall clock starts when the job is sent.

    Also returns the layers the runner reported applying; only :func:`current_plan`'s probe run may trust them."""
    start = time.monotonic()
    isolation = plan.describe(launch.slot, _limits(config))
    proc, cgroup = launch.proc, launch.cgroup
    job = _job(program, spec, config, plan, launch, stop)
    out = _Output(config.max_output_bytes)
    try:
        payload = _frame(job) + _frame({"kind": spec.kind, "tests": spec.tests, "case_timeout_s": spec.case_timeout_s})
        if len(payload) < PIPE_BUFFER:  # fits in the pipe: cannot block
            _feed(proc, payload)
        else:
            threading.Thread(target=_feed, args=(proc, payload), daemon=True).start()
        while_running()
        finished = _read_until(proc, out, start + config.timeout_s)
    finally:
        raw = _end(launch)
    wall = time.monotonic() - start
    verdict = _parse_verdict(raw)
    oom = cgroup is not None and cgroup.oom_killed()
    if verdict is not None:
        status = "memory" if oom and verdict["status"] != "passed" else verdict["status"]
        result = ExecResult(status, verdict["detail"], verdict["passed"], verdict["total"], out.text(), wall, isolation)
        return result, verdict["layers"]
    if not finished:
        status, detail = "timeout", f"wall clock > {config.timeout_s} s"
    elif oom:
        status, detail = "memory", "the run's cgroup memory limit was hit"
    elif raw:
        status, detail = "error", f"malformed verdict from the grader: {raw[:200]!r}"
    else:
        ended = "unknown: it did not report" if proc.returncode is None else proc.returncode
        status, detail = "error", f"the grader ended without a verdict (exit status {ended})"
    return ExecResult(status, detail, output=out.text(), wall_s=wall, isolation=isolation), {}


def _end(launch: _Launch) -> bytes:
    """Kill every process of a launched run, remove its work dir; what its grader wrote on the verdict pipe. Without
    a verdict, also waits for the runner's exit status (for the error message)."""
    _kill_run(launch.proc, launch.cgroup)
    launch.proc.stdout.close()
    raw = _read_available(launch.verdict_r)
    os.close(launch.verdict_r)
    if not raw:
        launch.proc.wait(timeout=RUNNER_EXIT_WAIT_S)
    launch.proc.close()
    _remove_workdir(launch.workdir)
    return raw


def _kill_run(proc: Runner, cgroup: RunCgroup | None) -> None:
    """Kill every process of the run. With a cgroup, every one of them has a SIGKILL pending on return and the
    slot's next ``prepare`` waits until they are gone, so their exit (the namespaces' teardown, ~10 ms) overlaps
    the next run. Without one, kill the process group and wait until it is gone (a pid namespace goes with its
    init)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if cgroup is not None:
        cgroup.kill(wait=False)
        return
    proc.wait(timeout=RUNNER_EXIT_WAIT_S)
    deadline = time.monotonic() + RUNNER_EXIT_WAIT_S
    while _group_alive(proc.pid) and time.monotonic() < deadline:  # members die after their leader is reaped
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.005)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (zombies waiting for init to reap them do not count)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _remove_workdir(path: str) -> None:
    """Remove a run's work dir: empty on the host when the run wrote to its own tmpfs (one rmdir), else a tree."""
    try:
        os.rmdir(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def _feed(proc: Runner, payload: bytes) -> None:
    try:
        proc.stdin.write(payload)
    except OSError:  # the process died before reading its job: its status says why
        pass
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()


@functools.cache
def current_plan(disable: tuple[str, ...] = ()) -> Plan:
    """The probed plan with the first interpreter that runs the standard library inside the sandbox.

    The probe run (a program of ours) reports which program-side layers took; every later run requires them."""
    plan = probe(disable=disable)
    spec = TestSpec("assert", "assert True")
    tried = []
    for interpreter in dict.fromkeys([sys.executable, *INTERPRETER_CANDIDATES]):
        if not os.access(interpreter, os.X_OK):
            continue
        try:
            code = subprocess.run([interpreter, "-I", "-S", "-c", COMPILE], input=RUNNER_SOURCE.encode(),
                                  capture_output=True, check=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{interpreter}: cannot compile the runner: {exc}")
            continue
        candidate = dataclasses.replace(plan, interpreter=interpreter, runner_code=code)
        config = SandboxConfig(timeout_s=30)
        with _Worker(candidate, config) as worker:
            result, layers = worker.grade(PROBE_PROGRAM, spec, config, True, prestart=False)
        if result.ok:
            missing = layers.get("missing", {})
            applied = tuple(name for name in PROGRAM_LAYERS if name in layers)
            reasons = [*plan.degraded_reasons, *(f"{name}: {why}" for name, why in missing.items())]
            if not candidate.namespaces and candidate.cgroups is None and "seccomp" not in applied:
                reasons.append("kill: without a PID namespace, a cgroup or seccomp (which denies setsid), a program "
                               "that calls setsid can outlive its run")
            if not candidate.namespaces and "landlock" not in applied:
                reasons.append("signals: without a PID namespace or Landlock scoping, a program can signal every "
                               "process of this user but the grader and this one")
            return dataclasses.replace(candidate, program_layers=applied, degraded_reasons=tuple(reasons))
        tried.append(f"{interpreter}: {result.status} {result.detail} {result.output[-300:]}")
    raise RuntimeError("no Python interpreter works inside the sandbox: " + "; ".join(tried))


def _checked_plan(config: SandboxConfig) -> Plan:
    plan = current_plan(tuple(sorted(config.disable_layers)))
    if plan.degraded_reasons:
        if config.strict:
            raise RuntimeError(f"sandbox isolation is degraded: {list(plan.degraded_reasons)}")
        warnings.warn(f"sandbox isolation is degraded: {list(plan.degraded_reasons)}", RuntimeWarning, stacklevel=3)
    return plan


def _slot_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/run/prift-sandbox") if os.access("/run", os.W_OK) else Path("/tmp/prift-sandbox-0")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "prift-sandbox" if runtime else Path(tempfile.gettempdir()) / f"prift-sandbox-{os.getuid()}"


@contextmanager
def _slot() -> Iterator[int]:
    """A slot number no other run on this machine holds (an exclusive ``flock`` on ``<slot dir>/<n>.lock``)."""
    directory = _slot_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    start = threading.get_ident() % 64  # spread concurrent callers over the slots
    for offset in range(MAX_SLOTS):
        number = (start + offset) % MAX_SLOTS
        fd = os.open(directory / f"{number}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield number
        finally:
            os.close(fd)  # releases the lock
        return
    raise RuntimeError(f"all {MAX_SLOTS} sandbox slots in {directory} are taken")


class _Worker:
    """One grading thread's runs: a zygote of its own (taken on the first launch), each run in a machine-wide slot.
    While a run is graded, the next one's runner is forked in a second slot (``prestart``); each slot is reset
    (cgroup emptied, fresh work dir) before every launch."""

    def __init__(self, plan: Plan, config: SandboxConfig) -> None:
        self.plan, self.config = plan, config
        self.slots = ExitStack()
        self.free: list[int] = []  # slots this worker holds and no launch uses
        self.spare: _Launch | None = None
        self.zygote: Zygote | None = None

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.spare is not None:
            _end(self.spare)
        if self.zygote is not None:
            self.zygote.give_back()
        self.slots.close()  # releases the slot locks

    def _launch(self) -> _Launch:
        if not self.free:
            self.free.append(self.slots.enter_context(_slot()))
        slot = self.free.pop()
        try:
            return self._fork(slot)
        except BaseException:
            self.free.append(slot)
            raise

    def _fork(self, slot: int, retry: bool = True) -> _Launch:
        if self.zygote is None:  # a kept one first; after one that had ended, a new one (kept ones may have too)
            start = Zygote.take if retry else Zygote
            self.zygote = start(self.plan.interpreter, self.plan.runner_code, self.config.site_packages)
        try:
            return _launch(self.plan, self.config, slot, self.zygote)
        except ZygoteGone:  # a zygote can end at any time (killed, out of memory): a new one forks the run
            self.zygote.close()
            self.zygote = None
            if not retry:
                raise
            return self._fork(slot, retry=False)

    def grade(
        self, program: str, spec: TestSpec, config: SandboxConfig, stop: bool, prestart: bool
    ) -> tuple[ExecResult, dict]:
        """:func:`_execute` on this worker's next launch."""
        launch, self.spare = self.spare, None
        if launch is None:
            try:
                launch = self._launch()
            except RuntimeError as exc:
                return ExecResult("error", f"no sandbox slot: {exc}",
                                  isolation=self.plan.describe(0, _limits(config))), {}
            except (OSError, TypeError, ValueError) as exc:
                return ExecResult("error", f"sandbox did not start: {exc}",
                                  isolation=self.plan.describe(0, _limits(config))), {}

        def launch_next() -> None:
            if prestart:
                with contextlib.suppress(OSError, RuntimeError, TypeError, ValueError):  # the next run says why
                    self.spare = self._launch()

        try:
            return _execute(program, spec, config, self.plan, launch, stop, launch_next)
        finally:
            self.free.append(launch.slot)  # ended: killed, cgroup empty, work dir gone


def run_many(
    programs: Sequence[str],
    tests: Sequence[object],
    config: SandboxConfig | None = None,
    *,
    stop_on_failure: bool = True,
    timeouts_s: Sequence[float] | None = None,
) -> list[ExecResult]:
    """Grade ``programs[i]`` against ``tests[i]`` (anything :func:`parse_tests` reads), ``config.workers`` at once.

    A malformed test spec or program gives that row an ``error`` result; the batch always completes.
    ``stop_on_failure=False`` runs every case (for pass-fraction rewards). ``timeouts_s[i]`` replaces
    ``config.timeout_s`` for program ``i`` (a harness's per-problem limit, e.g. LiveCodeBench's).
    """
    config = config or SandboxConfig()
    plan = _checked_plan(config)
    configs = [config] * len(programs) if timeouts_s is None else [
        dataclasses.replace(config, timeout_s=float(t)) for t in timeouts_s]
    results: list[ExecResult | None] = [None] * len(programs)
    indices = iter(range(len(programs)))
    lock = threading.Lock()

    def one(worker: _Worker, i: int) -> ExecResult:
        try:
            parsed = parse_tests(tests[i])
        except ValueError as exc:
            return ExecResult("error", str(exc), isolation=plan.describe(0, _limits(configs[i])))
        if not isinstance(programs[i], str):
            return ExecResult("failed", f"program is {type(programs[i]).__name__}, not str")
        return worker.grade(programs[i], parsed, configs[i], stop_on_failure, prestart=i + 1 < len(programs))[0]

    def work() -> None:
        with _Worker(plan, config) as worker:
            while True:
                with lock:
                    i = next(indices, None)
                if i is None:
                    return
                results[i] = one(worker, i)

    with ThreadPoolExecutor(config.workers, thread_name_prefix="sandbox") as pool:
        for future in [pool.submit(work) for _ in range(min(config.workers, len(programs)))]:
            future.result()
    return results  # type: ignore[return-value]  # every index was taken by a worker


def run_tests(program: str, tests: str, *, timeout_s: float, memory_mb: int) -> ExecResult:
    """Run ``program`` then the assert code ``tests`` in the sandbox (the docs/design.md contract)."""
    config = SandboxConfig(timeout_s=timeout_s, memory_mb=memory_mb, workers=1)
    return run_many([program], [TestSpec("assert", tests)], config)[0]
