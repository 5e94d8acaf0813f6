"""A pool of math-verify worker processes with an outer hard timeout.

math-verify bounds its own work with ``signal.alarm``, which only works on a process's main thread and cannot
interrupt a long C-level computation (``9^{9^{9^{9}}}``). So every comparison runs in a separate worker process
(``python -c ... serve()``, talking JSON lines over pipes), on that process's main thread, with math-verify's own
signal timeouts off and one soft deadline (SIGALRM, ``SOFT_DEADLINE`` of the outer timeout) over the whole
comparison. The caller waits at most ``timeout_s``; a worker that has not
answered by then is killed and replaced, and the pair scores as *not equal* with ``timed_out=True``.

Worker processes are plain subprocesses (not ``multiprocessing``), so no ``__main__`` guard is needed in user
scripts and the pool is safe to use from any thread. After ``os.fork`` a child gets a fresh pool.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import resource
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

STARTUP_TIMEOUT_S = 120.0
WARM_UP_PAIRS = (("1", "1"), ("\\frac{1}{2}", "0.5"), ("\\{1,2\\}", "(1,2]"), ("x^2+\\sqrt{2}", "2\\pi"))
SOFT_DEADLINE = 0.8  # fraction of the outer timeout after which a worker gives up by itself


@dataclass(frozen=True)
class Verdict:
    """Outcome of one comparison: ``equal`` is the grade; a timeout or an error always grades as not equal."""

    equal: bool
    timed_out: bool = False
    error: str | None = None


class _Worker:
    """One worker process; ``ask`` sends a pair and waits at most ``timeout_s`` for the answer."""

    def __init__(self, memory_mb: int) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        code = f"from prift.rewards.math_workers import serve; serve({memory_mb})"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            bufsize=1,
        )
        if self._readline(STARTUP_TIMEOUT_S) != "ready":
            self.kill()
            raise RuntimeError("math-verify worker failed to start")

    def _readline(self, timeout_s: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        return self.proc.stdout.readline().strip() if ready else None

    def ask(self, gold: str, pred: str, timeout_s: float) -> Verdict:
        request = {"gold": gold, "pred": pred, "deadline_s": SOFT_DEADLINE * timeout_s}
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            return Verdict(False, error=f"worker pipe: {exc}")
        line = self._readline(timeout_s)
        if line is None:
            self.kill()
            return Verdict(False, timed_out=True)
        if not line:
            return Verdict(False, error="worker exited")
        reply = json.loads(line)
        return Verdict(reply["equal"], reply["timed_out"], reply["error"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class VerifierPool:
    """``workers`` math-verify processes (started lazily); ``verify``/``verify_many`` never hang or raise.

    ``timeouts`` counts the comparisons that hit the outer timeout since the pool was created.
    """

    def __init__(self, workers: int | None = None, timeout_s: float = 10.0, memory_mb: int = 4096) -> None:
        self.size = workers or os.cpu_count() or 1
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.timeouts = 0
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(self.size):
            self._idle.put(None)
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="math-verify")

    def verify(self, gold: str, pred: str, timeout_s: float | None = None) -> Verdict:
        worker = self._idle.get()
        try:
            if worker is None or not worker.alive():
                worker = _Worker(self.memory_mb)
            verdict = worker.ask(gold, pred, timeout_s or self.timeout_s)
        except Exception as exc:  # a worker that cannot start must not crash a batch
            verdict = Verdict(False, error=f"{type(exc).__name__}: {exc}")
        finally:
            self._idle.put(worker if worker is not None and worker.alive() else None)
        if verdict.timed_out:
            with self._lock:
                self.timeouts += 1
        return verdict

    def verify_many(self, pairs: Sequence[tuple[str, str]], timeout_s: float | None = None) -> list[Verdict]:
        """Verdicts for ``(gold, pred)`` pairs, in order, using all workers at once."""
        return list(self._executor.map(lambda pair: self.verify(*pair, timeout_s), pairs))

    def warm_up(self) -> None:
        """Start every worker now (so that timing a batch does not include interpreter start-up)."""
        self.verify_many([("1", "1")] * self.size)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        while not self._idle.empty():
            worker = self._idle.get_nowait()
            if worker is not None and worker.alive():
                worker.kill()


_default: tuple[int, VerifierPool] | None = None
_default_lock = threading.Lock()


def default_pool() -> VerifierPool:
    """The process-wide pool (one per process id, so a forked child never shares its parent's pipes)."""
    global _default
    with _default_lock:
        if _default is None or _default[0] != os.getpid():
            _default = (os.getpid(), VerifierPool())
        return _default[1]


@atexit.register
def _close_default() -> None:
    if _default is not None and _default[0] == os.getpid():
        _default[1].close()


class _Deadline(BaseException):
    """Raised by SIGALRM in a worker; a BaseException so math-verify's ``except Exception`` cannot swallow it."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _Deadline


def compare(gold: str, pred: str) -> bool:
    """math-verify's verdict, gold first. The gold is an answer, read wrapped in ``\\boxed{}`` (so LaTeX without
    ``$`` is found whole); the prediction is read that way and, when math-verify parses its raw text differently,
    as raw text too (display math, an answer inside a sentence, an expression): equal if either reading matches.
    The gold is never read raw: math-verify would take the last number of ``5x - 7y + 11z + 4 = 0`` as the answer.

    math-verify's own signal timeouts are off (``None``): the worker's deadline bounds the whole comparison.
    """
    from math_verify import parse, verify

    def same(gold_parsed: list, pred_parsed: list) -> bool:
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=None))

    gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=None) or parse(gold, parsing_timeout=None)
    boxed, raw = (parse(f"\\boxed{{{pred}}}", parsing_timeout=None), parse(pred, parsing_timeout=None))
    return same(gold_parsed, boxed) or (raw != boxed and same(gold_parsed, raw))


def _answer(request: dict) -> dict:
    signal.setitimer(signal.ITIMER_REAL, request["deadline_s"])
    try:
        return {"equal": compare(request["gold"], request["pred"]), "timed_out": False, "error": None}
    except _Deadline:
        return {"equal": False, "timed_out": True, "error": None}
    except Exception as exc:  # MemoryError, RecursionError, anything math-verify lets through
        return {"equal": False, "timed_out": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def serve(memory_mb: int) -> None:
    """Worker loop: one JSON request per stdin line, one JSON reply per stdout line.

    A soft deadline (SIGALRM on this main thread) answers ``timed_out`` and keeps the worker; a computation
    stuck in C ignores it until the parent's hard timeout kills the worker.
    """
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _on_alarm)
    for gold, pred in WARM_UP_PAIRS:  # import and warm up the LaTeX parser and sympy before announcing readiness
        compare(gold, pred)
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            reply = _answer(json.loads(line))
        except _Deadline:  # the alarm fired between the comparison and disarming it
            reply = {"equal": False, "timed_out": True, "error": None}
        print(json.dumps(reply), flush=True)
