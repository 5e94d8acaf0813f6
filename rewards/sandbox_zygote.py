"""The host's side of the sandbox zygote (``sandbox_launch.zygote``): one interpreter per grading worker that forks
every run's runner process, so that a run costs forks instead of an interpreter start-up and the runner's imports.

Contract: ``Zygote.take(interpreter, runner_code, site_packages)`` returns an idle zygote of this process (a live
one that an earlier worker gave back) or starts one; ``fork(request, fds) -> pid`` hands it a run's settings and its
four pipes (``sandbox_launch.RUN_FDS`` order) and returns the runner's pid, the leader of the run's process group;
``give_back()`` keeps it for the next worker. A zygote ends when this process closes its socket (``close()``, or
exit). :class:`Runner` is the part of ``subprocess.Popen`` a run uses.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import socket
import struct
import subprocess
import threading
from typing import IO

# The first line marks sandbox processes for ``ps`` and the attack tests.
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
NAMESPACES_FAILED_EXIT = 126  # a runner's status when it could not create its namespaces; the grader never ran
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1"}  # a run's environment, plus HOME (its work dir)


class ZygoteGone(OSError):
    """The zygote ended (killed, or out of memory); a new one can take its place."""


_IDLE: dict[tuple[str, bytes, bool], list[Zygote]] = {}
_IDLE_LOCK = threading.Lock()


def idle_pids() -> list[int]:
    """Pids of the zygotes kept for the next worker (alive between ``run_many`` calls, running no run)."""
    with _IDLE_LOCK:
        return [zygote.pid for idle in _IDLE.values() for zygote in idle]


class Zygote:
    @classmethod
    def take(cls, interpreter: str, runner_code: bytes, site_packages: bool) -> Zygote:
        key = (interpreter, runner_code, site_packages)
        with _IDLE_LOCK:
            idle = _IDLE.get(key, [])
            while idle:
                zygote = idle.pop()
                if zygote.proc.poll() is None:
                    return zygote
                zygote.close()
        return cls(interpreter, runner_code, site_packages)

    def give_back(self) -> None:
        if self.proc.poll() is not None:
            self.close()
            return
        with _IDLE_LOCK:
            _IDLE.setdefault(self.key, []).append(self)

    def __init__(self, interpreter: str, runner_code: bytes, site_packages: bool) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        site = () if site_packages else ("-S",)
        try:
            self.proc = subprocess.Popen(
                [interpreter, "-I", *site, "-c", BOOTSTRAP, str(len(runner_code)), str(theirs.fileno())],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=ENV, cwd="/", start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.control = ours
        self.key = (interpreter, runner_code, site_packages)
        try:
            self.proc.stdin.write(runner_code)
            self.proc.stdin.close()
        except OSError:  # it died reading its code: the first fork says so
            pass

    @property
    def pid(self) -> int:
        return self.proc.pid

    def fork(self, request: dict, fds: list[int]) -> int:
        """Start a run's runner process; raises :class:`ZygoteGone` when the zygote has ended."""
        try:
            socket.send_fds(self.control, [marshal.dumps(request)], fds)
            reply = self.control.recv(4)
        except OSError as exc:
            raise ZygoteGone(f"the sandbox zygote ended: {exc}") from exc
        if len(reply) != 4:
            raise ZygoteGone(f"the sandbox zygote ended (exit status {self.proc.wait()})")
        return struct.unpack(">i", reply)[0]

    def close(self) -> None:
        self.control.close()  # it exits on the closed socket
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Runner:
    """A runner process forked by the zygote: ``pid`` (its process group), ``stdin``, ``stdout``, ``poll``/``wait``.

    It has ended once its status pipe carries the grader's exit status, or closes without one (killed)."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes], status_fd: int) -> None:
        self.pid, self.stdin, self.stdout, self.returncode = pid, stdin, stdout, None
        self._status_fd: int | None = status_fd

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._status_fd], [], [], 0)[0]:
            self._read_status()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status, or None when none came within ``timeout`` s: a process that left the run's group
        (or a stuck kill) may still hold the status pipe open, and no wait of the grader may be unbounded."""
        if self.returncode is None and self._status_fd is not None:
            if select.select([self._status_fd], [], [], timeout)[0]:
                self._read_status()
        return self.returncode

    def close(self) -> None:
        """Let go of the status pipe (``returncode`` stays None if it had not ended)."""
        if self._status_fd is not None:
            os.close(self._status_fd)
            self._status_fd = None

    def _read_status(self) -> None:
        raw = os.read(self._status_fd, 32)
        self.close()
        try:
            self.returncode = int(raw)
        except ValueError:
            self.returncode = -signal.SIGKILL
