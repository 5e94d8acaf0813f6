"""Isolation layers for the code sandbox: probed once per process, then described in every result.

Layers (``../shared/notes/sandbox-isolation.md`` measured what each stops and costs on these machines):

- **always**: a fresh ``python -I`` process in its own session/process group, scrubbed environment, private
  0700 work dir, rlimits (address space, CPU, file size, open files, core, processes), wall-clock kill of the
  group, capped output (see :mod:`prift.rewards.sandbox_runner` for the inner layers);
- **namespaces** via ``unshare(1)``: network (no IP at all, not even the host's 127.0.0.1), PID (the run sees
  only itself; ``--kill-child`` kills the whole tree, setsid'd grandchildren included), mount (private
  ``/proc`` and a size-limited tmpfs work dir), IPC, UTS. Root uses them directly; other users through an
  unprivileged user namespace (``--user --map-root-user``);
- **uid**: a root caller drops each concurrent slot to its own unprivileged uid (``uid_base + slot``), so runs
  cannot signal or read each other, rlimits are binding and ``RLIMIT_NPROC`` counts only that slot;
- **Landlock**: read-only interpreter and system dirs, read-write work dir, no TCP, no signals or abstract Unix
  sockets leaving the sandbox.

A layer that does not work here is left out and named in ``degraded_reasons``; ``strict`` callers refuse that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

NAMESPACE_FLAGS = ("--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc")
SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/localtime", "/dev/urandom")
CAP_SYS_RESOURCE = 24


@dataclass(frozen=True)
class Plan:
    """How runs are launched on this machine (one per process, from :func:`probe`)."""

    outer: tuple[str, ...]  # argv prefix that creates the namespaces, or () when none work
    userns: bool  # the namespaces sit in an unprivileged user namespace
    uid_base: int | None  # root callers: slot ``i`` runs as uid/gid ``uid_base + i``
    caps_bind_rlimits: bool  # False when this process could raise rlimits again (holds CAP_SYS_RESOURCE)
    interpreter: str = ""
    degraded_reasons: tuple[str, ...] = field(default=())

    def drop_to(self, slot: int) -> tuple[int, int] | None:
        return None if self.uid_base is None else (self.uid_base + slot, self.uid_base + slot)

    def describe(self, inner: dict | None, slot: int) -> dict:
        """The isolation record of one run; ``inner`` is what the runner reported it applied (None: unknown)."""
        confirmed = inner is not None
        inner = inner or {}
        has_landlock = "landlock_abi" in inner if confirmed else True
        planned_uid = (self.drop_to(slot) or (os.geteuid(), 0))[0]
        uid = inner.get("uid", planned_uid)
        return {
            "fs": "+".join(filter(None, ["landlock" if has_landlock else "", inner.get("fs_quota", "")])) or "none",
            "net": "netns" if self.outer else "landlock-tcp-only" if has_landlock else "none",
            "pid": "pidns" if self.outer else "setsid-only",
            "uid": uid,
            "rlimits": inner.get("rlimits", {}),
            "rlimits_binding": uid != 0 or self.userns or self.caps_bind_rlimits,
            "cgroup": None,
            "interpreter": self.interpreter,
            "degraded_reasons": [*self.degraded_reasons, *inner.get("degraded_reasons", [])],
            "confirmed": confirmed,
        }


def _holds_capability(bit: int) -> bool:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


def _try(argv: list[str]) -> str | None:
    """None when ``argv`` runs successfully, else why not (stderr or the exception)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")[:300]


def probe(uid_base: int = 64000) -> Plan:
    """Find the strongest namespace set that works here (the interpreter is chosen by the sandbox)."""
    root = os.geteuid() == 0
    reasons: list[str] = []
    unshare = shutil.which("unshare") or shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")
    true = shutil.which("true") or "/bin/true"
    outer: tuple[str, ...] = ()
    userns = not root
    if unshare is None:
        reasons.append("namespaces: unshare(1) not found")
    else:
        candidate = (unshare, *(() if root else ("--user", "--map-root-user")), *NAMESPACE_FLAGS, "--")
        failure = _try([*candidate, true])
        if failure is None:
            outer = candidate
        else:
            reasons.append(f"namespaces: {failure}")
    return Plan(
        outer=outer,
        userns=userns and bool(outer),
        uid_base=uid_base if root else None,
        caps_bind_rlimits=not _holds_capability(CAP_SYS_RESOURCE),
        degraded_reasons=tuple(reasons),
    )
