"""Isolation layers for the code sandbox: probed once per process, then described by the host in every result.

Layers (``docs/notes/sandbox-isolation.md`` measured what each stops and costs on these machines):

- **separation** (always): the grader and the program are two processes; the program is forked before the tests
  are read, talks to the grader only through data on a pipe pair and never holds the verdict pipe
  (:mod:`prift.rewards.sandbox_runner`);
- **process**: a runner process forked per run from a ``python -I`` zygote that has run no program (nothing of
  another run is in it), in its own session, scrubbed environment, private 0700 work dir, rlimits (address space,
  CPU, file size, open files, core, processes), capped output;
- **namespaces**, created by each run's runner process (``unshare(2)``, as ``unshare(1)`` would): network (no IP at
  all), PID (the grader is the namespace's init, which the program cannot signal; killing the runner process takes
  the whole tree), mount (private ``/proc``, size-limited tmpfs work dir), IPC (no SysV shared memory with the
  host), UTS. Root uses them directly; other users through an unprivileged user namespace (their uid mapped to
  root, as ``--map-root-user``), where the program then drops every capability;
- **cgroup** (:mod:`prift.rewards.sandbox_cgroups`): memory and pids limits on everything a run starts, and a kill
  of the whole cgroup; v1 or v2, whichever is writable here;
- **uid**: a root caller runs each machine-wide slot's program as its own uid (``uid_base + slot``);
- **keyring**: the program joins a fresh, empty session keyring;
- **Landlock**: read-only interpreter and system dirs, read-write work dir, no TCP, signals and abstract Unix
  sockets scoped to the program's own domain;
- **seccomp** (:mod:`prift.rewards.sandbox_seccomp`): no ptrace / process_vm, keyrings, sockets, namespaces, mounts,
  metadata changes (chmod/chown/utime/xattr), SysV or memfd memory, setsid/setpgid, signals to the grader or -1.

The host writes ``result.isolation`` from this plan alone (never from the sandboxed side). A layer that does not
work here is left out and named in ``degraded_reasons``; ``strict`` callers refuse that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from prift.rewards.sandbox_cgroups import CgroupSupport, probe_cgroups

NAMESPACE_FLAGS = ("--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc")
SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/localtime", "/dev/urandom")
PROGRAM_LAYERS = ("uid", "capabilities", "keyring", "landlock", "seccomp")  # applied in the program's process
LAYERS = ("namespaces", "cgroup", *PROGRAM_LAYERS)  # what ``disable`` may name
CAP_SYS_RESOURCE = 24


@dataclass(frozen=True)
class Plan:
    """How runs are launched on this machine (one per process and ``disable`` set, from :func:`probe`)."""

    namespaces: bool  # each run's runner creates network, PID, mount, IPC and UTS namespaces (sandbox_runner)
    userns: bool  # ... inside an unprivileged user namespace
    uid_base: int | None  # root callers: slot ``i`` runs its program as uid/gid ``uid_base + i``
    caps_bind_rlimits: bool  # False when this process could raise rlimits again (holds CAP_SYS_RESOURCE)
    cgroups: CgroupSupport | None = None
    interpreter: str = ""
    runner_code: bytes = b""  # the runner compiled and marshalled by ``interpreter`` (see sandbox.BOOTSTRAP)
    program_layers: tuple[str, ...] = ()  # confirmed by the probe run; every later run requires them
    disabled: tuple[str, ...] = ()
    degraded_reasons: tuple[str, ...] = field(default=())

    def drop_to(self, slot: int) -> tuple[int, int] | None:
        return None if self.uid_base is None else (self.uid_base + slot, self.uid_base + slot)

    def kill_method(self) -> str:
        if self.cgroups is not None:
            return f"cgroup {self.cgroups.version}"
        return "pid namespace" if self.namespaces else "process group (setsid/setpgid denied by seccomp)"

    def describe(self, slot: int, limits: dict) -> dict:
        """The isolation record of one run, from what the host set up (never read back from the sandbox)."""
        layers = set(self.program_layers)
        uid = (self.drop_to(slot) or (os.geteuid(), 0))[0]
        return {
            "separation": "grader process; program forked before the tests are read, data-only pipe",
            "fs": "+".join(["landlock"] * ("landlock" in layers) + ["tmpfs"] * self.namespaces) or "none",
            "net": "netns" if self.namespaces else "seccomp-no-sockets" if "seccomp" in layers else "none",
            "pid": "pidns" if self.namespaces else "setsid-only",
            "uid": uid,
            "program_layers": sorted(layers),
            "rlimits": limits,
            "rlimits_binding": uid != 0 or "capabilities" in layers or self.caps_bind_rlimits,
            "cgroup": None if self.cgroups is None else self.cgroups.version,
            "kill": self.kill_method(),
            "interpreter": self.interpreter,
            "disabled": list(self.disabled),
            "degraded_reasons": list(self.degraded_reasons),
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


def probe(uid_base: int = 64000, disable: tuple[str, ...] = ()) -> Plan:
    """The strongest outer set that works here, less ``disable`` (the program layers are confirmed by a probe run).

    Namespaces are probed with ``unshare(1)`` (util-linux), which makes the same ``unshare(2)`` call, uid/gid maps
    and mounts as ``sandbox_launch.run_process`` does for every run."""
    unknown = set(disable) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown sandbox layers {sorted(unknown)}; known: {list(LAYERS)}")
    root = os.geteuid() == 0
    reasons: list[str] = [f"{name}: disabled by the caller" for name in disable]
    namespaces = False
    if "namespaces" not in disable:
        unshare = shutil.which("unshare") or shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")
        if unshare is None:
            reasons.append("namespaces: unshare(1) not found")
        else:
            failure = _try([unshare, *(() if root else ("--user", "--map-root-user")), *NAMESPACE_FLAGS, "--",
                            shutil.which("true") or "/bin/true"])
            if failure is None:
                namespaces = True
            else:
                reasons.append(f"namespaces: {failure}")
    cgroups = None
    if "cgroup" not in disable:
        cgroups = probe_cgroups()
        if cgroups.version is None:
            reasons.append(f"cgroup: {cgroups.reason}; memory is bounded per process (address space) only")
            cgroups = None
    return Plan(
        namespaces=namespaces,
        userns=not root and namespaces,
        uid_base=uid_base if root and "uid" not in disable else None,
        caps_bind_rlimits=not _holds_capability(CAP_SYS_RESOURCE),
        cgroups=cgroups,
        disabled=tuple(disable),
        degraded_reasons=tuple(reasons),
    )
