"""Run untrusted (model-written) Python against tests, isolated, many programs in parallel.

Contract (DESIGN.md): ``run_tests(program, tests, *, timeout_s, memory_mb) -> ExecResult`` runs ``program``
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
import queue
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
from prift.rewards.sandbox_cgroups import RunCgroup

Status = Literal["passed", "failed", "timeout", "memory", "error"]
STATUSES = ("passed", "failed", "timeout", "memory", "error")
_HERE = Path(__file__).parent
RUNNER_SOURCE = (_HERE / "sandbox_seccomp.py").read_text() + "\n" + (_HERE / "sandbox_runner.py").read_text()
# Each run receives the runner as a code object compiled once per plan (compiling 45 KB of source on every start
# was 40% of a run's start-up). The first line marks sandbox processes for ``ps`` and the attack tests.
BOOTSTRAP = (
    "# The program that runs *inside* the sandbox: prift.rewards.sandbox_runner, its code on stdin\n"
    "import marshal, os, sys\n"
    "size, code = int(sys.argv[1]), b''\n"
    "while len(code) < size:\n"
    "    chunk = os.read(0, size - len(code))\n"
    "    if not chunk:\n"
    "        raise SystemExit(1)\n"
    "    code += chunk\n"
    "exec(marshal.loads(code), {'__name__': '__main__'})\n"
)
COMPILE = "import marshal, sys; sys.stdout.buffer.write(marshal.dumps(compile(sys.stdin.read(), 'sandbox_runner', 'exec')))"
INTERPRETER_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3")
GRADER_DEADLINE_MARGIN_S = 0.5  # the grader's own deadline before the run's wall clock
GRADER_MB = 96  # the grader's own interpreter, counted in the run's cgroup (see _run_memory_mb)
MAX_SLOTS = 1024
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


def _job(program: str, spec: TestSpec, config: SandboxConfig, plan: Plan, workdir: str, slot: int) -> dict:
    return {
        "program": program,
        "kind": spec.kind,
        "stop_on_failure": True,
        "max_output": config.max_output_bytes,
        "workdir": workdir,
        "tmpfs_mb": config.disk_mb if plan.outer else None,
        "drop_to": plan.drop_to(slot),
        "limits": _limits(config),
        "nproc": config.max_processes + (0 if plan.drop_to(slot) or plan.userns else _processes_of(os.getuid())),
        "landlock_read": [*SYSTEM_READ_PATHS],
        "skip": list(plan.disabled),
        "protect": [] if plan.outer else [os.getpid()],  # same pid namespace: seccomp also guards this host process
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
    """A runner process started in ``slot`` and waiting for its job: interpreter start-up, namespaces and the
    runner's imports (most of a run's start-up) are done before the program is known."""

    proc: subprocess.Popen
    slot: int
    cgroup: RunCgroup | None
    workdir: str
    verdict_r: int
    verdict_fd: int  # the verdict pipe's number in the runner (``pass_fds`` keeps it; the host closed its copy)
    job_queue: queue.SimpleQueue  # the feeder thread's next write: the job and tests, or None to close stdin


def _launch(plan: Plan, config: SandboxConfig, slot: int) -> _Launch:
    """Start a runner in ``slot``: its cgroup reset and limited, a fresh work dir, the runner code on its stdin.

    Raises ``OSError``/``RuntimeError`` (and ``TypeError``/``ValueError`` from ``Popen``) when it cannot start."""
    cgroup = RunCgroup(plan.cgroups, slot) if plan.cgroups is not None else None
    workdir = tempfile.mkdtemp(prefix="prift-sandbox-")
    verdict_r, verdict_w = os.pipe()
    try:
        if plan.drop_to(slot):
            os.chown(workdir, *plan.drop_to(slot))
        if cgroup is not None:
            cgroup.prepare(_run_memory_mb(config) * 2**20, config.max_processes + 4)
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": workdir,
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        site = () if config.site_packages else ("-S",)
        argv = [*plan.outer, plan.interpreter, "-I", *site, "-c", BOOTSTRAP, str(len(plan.runner_code))]
        proc = subprocess.Popen(
            cgroup.enter_argv(argv) if cgroup is not None else argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,
            pass_fds=(verdict_w,),
        )
    except BaseException:
        os.close(verdict_r)
        _remove_workdir(workdir)
        raise
    finally:
        os.close(verdict_w)
    job_queue: queue.SimpleQueue = queue.SimpleQueue()
    # a thread: the runner code is larger than a pipe's buffer, and the launching thread has a run to watch
    threading.Thread(target=_feed, args=(proc, plan.runner_code, job_queue), daemon=True).start()
    return _Launch(proc, slot, cgroup, workdir, verdict_r, verdict_w, job_queue)


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
    # counting every case (code_pass_fraction): the grader stops waiting a little before the host's kill, so a
    # program that hangs on a late case keeps the cases it passed
    deadline = None if stop else max(0.1, config.timeout_s - GRADER_DEADLINE_MARGIN_S)
    job = _job(program, spec, config, plan, launch.workdir, launch.slot) | {
        "stop_on_failure": stop, "verdict_fd": launch.verdict_fd, "deadline_s": deadline}
    out = _Output(config.max_output_bytes)
    try:
        launch.job_queue.put(_frame(job) + _frame({"kind": spec.kind, "tests": spec.tests,
                                                   "case_timeout_s": spec.case_timeout_s}))
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
        status, detail = "error", f"the grader ended without a verdict (exit status {proc.returncode})"
    return ExecResult(status, detail, output=out.text(), wall_s=wall, isolation=isolation), {}


def _end(launch: _Launch) -> bytes:
    """Kill every process of a launched run, remove its work dir; what its grader wrote on the verdict pipe."""
    launch.job_queue.put(None)  # a launch that never got its job: its feeder closes stdin and ends
    _kill_run(launch.proc, launch.cgroup)
    launch.proc.stdout.close()
    raw = _read_available(launch.verdict_r)
    os.close(launch.verdict_r)
    _remove_workdir(launch.workdir)
    return raw


def _kill_run(proc: subprocess.Popen, cgroup: RunCgroup | None) -> None:
    """End every process of the run: the cgroup when there is one, else the group (the pid namespace goes with it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    if cgroup is not None:
        cgroup.kill()
        return
    deadline = time.monotonic() + 5.0
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


def _feed(proc: subprocess.Popen, runner_code: bytes, job_queue: queue.SimpleQueue) -> None:
    """Write the runner code now, then the job and tests once they come (None: the launch is discarded)."""
    try:
        proc.stdin.write(runner_code)
        proc.stdin.flush()
        payload = job_queue.get()
        if payload is not None:
            proc.stdin.write(payload)
    except OSError:  # the process died (or was killed) before reading it all: its status says why
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
        with _slot() as slot:
            result, layers = _execute(PROBE_PROGRAM, spec, config, candidate, _launch(candidate, config, slot), True)
        if result.ok:
            missing = layers.get("missing", {})
            applied = tuple(name for name in PROGRAM_LAYERS if name in layers)
            reasons = [*plan.degraded_reasons, *(f"{name}: {why}" for name, why in missing.items())]
            if not candidate.outer and candidate.cgroups is None and "seccomp" not in applied:
                reasons.append("kill: without a PID namespace, a cgroup or seccomp (which denies setsid), a program "
                               "that calls setsid can outlive its run")
            if not candidate.outer and "landlock" not in applied:
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
    """One grading thread's runs, each in a machine-wide slot of its own. While a run is graded, the next one's
    runner is launched in a second slot (``prestart``), so its start-up overlaps the grading instead of following
    it; each slot is reset (cgroup emptied, fresh work dir) before every launch."""

    def __init__(self, plan: Plan, config: SandboxConfig) -> None:
        self.plan, self.config = plan, config
        self.slots = ExitStack()
        self.free: list[int] = []  # slots this worker holds and no launch uses
        self.spare: _Launch | None = None

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.spare is not None:
            _end(self.spare)
        self.slots.close()  # releases the slot locks

    def _launch(self) -> _Launch:
        if not self.free:
            self.free.append(self.slots.enter_context(_slot()))
        slot = self.free.pop()
        try:
            return _launch(self.plan, self.config, slot)
        except BaseException:
            self.free.append(slot)
            raise

    def grade(self, program: str, spec: TestSpec, config: SandboxConfig, stop: bool, prestart: bool) -> ExecResult:
        launch, self.spare = self.spare, None
        if launch is None:
            try:
                launch = self._launch()
            except RuntimeError as exc:
                return ExecResult("error", f"no sandbox slot: {exc}", isolation=self.plan.describe(0, _limits(config)))
            except (OSError, TypeError, ValueError) as exc:
                return ExecResult("error", f"sandbox did not start: {exc}",
                                  isolation=self.plan.describe(0, _limits(config)))

        def launch_next() -> None:
            if prestart:
                with contextlib.suppress(OSError, RuntimeError, TypeError, ValueError):  # the next run says why
                    self.spare = self._launch()

        try:
            return _execute(program, spec, config, self.plan, launch, stop, launch_next)[0]
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
        return worker.grade(programs[i], parsed, configs[i], stop_on_failure, prestart=i + 1 < len(programs))

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
    """Run ``program`` then the assert code ``tests`` in the sandbox (the DESIGN.md contract)."""
    config = SandboxConfig(timeout_s=timeout_s, memory_mb=memory_mb, workers=1)
    return run_many([program], [TestSpec("assert", tests)], config)[0]
