"""Per-run cgroups for the code sandbox: a memory limit and a pids limit on everything a run starts, and a kill that
reaches every process of the run whatever it did with sessions and process groups.

Contract: :func:`probe_cgroups` finds a writable place for per-slot cgroups (cgroup v2, else v1 with the memory,
pids and freezer hierarchies), proves it by creating, entering, killing and removing a test cgroup, and returns a
:class:`CgroupSupport` whose ``version`` is ``None`` (with ``reason`` saying why and what to do) when there is none;
the caller then falls back to rlimits. :class:`RunCgroup` is the cgroup(s) of one slot; the caller guarantees that one
run at a time uses a slot. ``prepare`` before each run; the run's first process joins by writing its pid to every
file of ``procs_files`` before it starts anything (``enter_argv(argv)`` wraps a command so); ``kill`` after it.

Placement: v1 ``<mount>/<own cgroup in that hierarchy>/<name>/slot-<N>`` for memory, pids and freezer; v2
``<mount>/<own cgroup>/<name>/slot-<N>``. v2 only lets a cgroup without processes hand controllers to its children,
so when this process is the only one in its own cgroup and that cgroup is delegated to it, the probe moves this
process into the leaf ``<own>/<name>-host`` (the pattern container runtimes use) and enables memory and pids in
``<own>``. Writes to cgroup files that fail raise :class:`RuntimeError` naming the file.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

V1_CONTROLLERS = ("memory", "pids", "freezer")
V2_CONTROLLERS = ("memory", "pids")
ENTER_FAILED_EXIT = 125  # exit status of enter_argv's shell when it could not join the cgroup(s); argv never ran
_POLL_S = 0.005
_DELEGATE_HINT = "run prift as root or under `systemd-run --user --scope -p Delegate=yes`"


@dataclass(frozen=True)
class CgroupSupport:
    """Where per-slot cgroups go. ``parents``: v1 the ``<name>`` dirs of the memory, pids and freezer hierarchies
    (in that order), v2 the one ``<name>`` dir. ``kill``: ``cgroup.kill``, ``cgroup.freeze`` (v2) or ``freezer``."""

    version: str | None
    reason: str = ""
    parents: tuple[Path, ...] = ()
    kill: str = ""


def probe_cgroups(name: str = "prift-sandbox") -> CgroupSupport:
    """Find a writable place for per-slot cgroups with memory + pids limits and a way to kill every process, trying
    cgroup v2 then v1; actually creates, enters, kills and removes a test cgroup to be sure. Never raises for a
    missing or unusable cgroup setup: returns ``CgroupSupport(None, reason)`` instead."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"bad cgroup name {name!r}")
    try:
        mounts = _parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        own = _parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
    except OSError as e:
        return CgroupSupport(None, f"cannot read /proc/self/mountinfo or /proc/self/cgroup: {e.strerror}")
    reasons = []
    v2 = next((m for m in mounts if m[2] == "cgroup2"), None)
    if v2 is not None and "" in own:
        support = _probe_v2(_locate(v2, own[""]), name)
        if support.version:
            return support
        reasons.append(support.reason)
    elif v2 is not None:
        reasons.append("cgroup v2: this process has no cgroup v2 entry in /proc/self/cgroup")
    support = _probe_v1(mounts, own, name)
    if support.version:
        return support
    return CgroupSupport(None, "; ".join([*reasons, support.reason]))


class RunCgroup:
    """The cgroup(s) of one slot: ``prepare`` (create, kill leftovers, set limits, reset counters), ``enter_argv``
    (launch inside), ``kill`` (every process, returns when empty), ``oom_killed``/``peak_memory_bytes`` (this run
    only), ``remove``."""

    def __init__(self, support: CgroupSupport, slot: int):
        if support.version not in ("v1", "v2"):
            raise ValueError(f"no cgroup support: {support.reason}")
        self._init(support, f"slot-{int(slot)}")

    @classmethod
    def _named(cls, support: CgroupSupport, leaf: str) -> RunCgroup:
        self = cls.__new__(cls)
        self._init(support, leaf)
        return self

    def _init(self, support: CgroupSupport, leaf: str) -> None:
        self.support = support
        self.dirs = tuple(parent / leaf for parent in support.parents)
        self.memory_bytes: int | None = None
        self.max_pids: int | None = None
        self._oom_base = 0
        self._peak_fd: int | None = None

    @property
    def _memory_dir(self) -> Path:
        return self.dirs[0]

    def prepare(self, memory_bytes: int, max_pids: int) -> None:
        """Create the cgroup(s) if missing, kill anything left in them, set the limits (v1 memory.limit_in_bytes and
        memory.memsw.limit_in_bytes when it exists, pids.max; v2 memory.max, memory.swap.max=0 when it exists,
        pids.max) and reset the counters behind ``oom_killed`` and ``peak_memory_bytes``."""
        fresh = False
        for d in self.dirs:
            try:
                d.mkdir()
                fresh = True
            except FileExistsError:
                pass
            except OSError as e:
                raise RuntimeError(f"cannot create cgroup {d}: {e.strerror}") from e
        self.kill()
        mem = self._memory_dir
        if self.support.version == "v1":
            memsw = mem / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                _write(memsw, "-1")  # memsw must stay >= memory.limit_in_bytes while the latter changes
            _write(mem / "memory.limit_in_bytes", str(memory_bytes))
            if memsw.exists():
                _write(memsw, str(memory_bytes))
            _write(mem / "memory.max_usage_in_bytes", "0")
            _write(self.dirs[1] / "pids.max", str(max_pids))
        else:
            _write(mem / "memory.max", str(memory_bytes))
            if (mem / "memory.swap.max").exists():
                _write(mem / "memory.swap.max", "0")
            _write(mem / "pids.max", str(max_pids))
            self._open_peak(fresh)
        self.memory_bytes, self.max_pids = memory_bytes, max_pids
        self._oom_base = self._oom_count()

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` file of each hierarchy, which a process joins by writing its pid."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def enter_argv(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped so the process moves itself into the cgroup(s) and then execs ``argv``: everything the run
        ever starts is inside from its first instruction. Exits with ``ENTER_FAILED_EXIT`` if it cannot join."""
        joins = " && ".join(f"echo $$ > {shlex.quote(path)}" for path in self.procs_files)
        return ["/bin/sh", "-c", f'{joins} || exit {ENTER_FAILED_EXIT}; exec "$@"', "sh", *argv]

    def kill(self, timeout_s: float = 5.0, wait: bool = True) -> None:
        """SIGKILL every process in the cgroup(s), whatever it did with sessions or process groups (v2
        ``cgroup.kill``; else freeze so nothing can fork, SIGKILL every pid, thaw) and, with ``wait``, return once
        none is left, repeating the kill. Without ``wait`` it returns once every process has a SIGKILL pending: none
        runs another instruction, but their exit (namespace teardown included) may still be under way.
        Raises :class:`RuntimeError` if processes remain after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        method = self.support.kill
        if method == "cgroup.kill" and self._procs():
            _write(self._memory_dir / "cgroup.kill", "1")
        if not wait:
            if method != "cgroup.kill" and self._procs():
                self._kill_frozen(deadline)
            return
        while pids := self._procs():
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {sorted(pids)} still in {self.dirs[-1]} after {timeout_s} s")
            if method != "cgroup.kill":
                self._kill_frozen(deadline)
            time.sleep(_POLL_S)

    def _kill_frozen(self, deadline: float) -> None:
        """Freeze (no process forks or runs), SIGKILL every process, thaw (v1 frozen tasks act on SIGKILL once
        thawed). The pids are read while frozen, so none started after the read escapes."""
        self._freeze(True, deadline)
        try:
            for pid in self._procs():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            self._freeze(False, deadline)

    def oom_killed(self) -> bool:
        """True if the OOM killer killed a process of this cgroup since ``prepare``."""
        return self._oom_count() > self._oom_base

    def peak_memory_bytes(self) -> int | None:
        """Peak memory charged to the cgroup since ``prepare`` (v1 memory.max_usage_in_bytes; v2 memory.peak when
        the kernel has it and it could be reset or the cgroup is new), else None."""
        try:
            if self.support.version == "v1":
                return int((self._memory_dir / "memory.max_usage_in_bytes").read_text())
            return int(os.pread(self._peak_fd, 64, 0)) if self._peak_fd is not None else None
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        """rmdir the cgroup(s); ignores ones that are missing or still busy."""
        self._close_peak()
        for d in self.dirs:
            try:
                d.rmdir()
            except OSError:
                pass

    def describe(self) -> dict:
        """What this run had, for the run record."""
        return {"version": self.support.version, "memory_bytes": self.memory_bytes, "pids": self.max_pids,
                "kill": self.support.kill, "cgroups": [str(d) for d in self.dirs]}

    def _procs(self) -> set[int]:
        pids: set[int] = set()
        for d in self.dirs:
            try:
                pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                pass
            except OSError as e:
                raise RuntimeError(f"cannot read {d / 'cgroup.procs'}: {e.strerror}") from e
        return pids

    def _freeze(self, frozen: bool, deadline: float) -> None:
        v1 = self.support.kill == "freezer"
        path = self.dirs[2] / "freezer.state" if v1 else self.dirs[0] / "cgroup.freeze"
        _write(path, ("FROZEN" if frozen else "THAWED") if v1 else str(int(frozen)))
        # freezing is asynchronous; a task stuck in the kernel may never freeze, so wait briefly and kill regardless
        limit, pause = min(deadline, time.monotonic() + 0.5), _POLL_S / 16
        while frozen and time.monotonic() < limit:
            if (_read(path).strip() == "FROZEN") if v1 else ("frozen 1" in _read(self.dirs[0] / "cgroup.events")):
                return
            time.sleep(pause)
            pause = min(2 * pause, _POLL_S)  # most freezes take well under a millisecond

    def _oom_count(self) -> int:
        name = "memory.oom_control" if self.support.version == "v1" else "memory.events"
        try:
            text = (self._memory_dir / name).read_text()
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise RuntimeError(f"cannot read {self._memory_dir / name}: {e.strerror}") from e
        match = re.search(r"^oom_kill (\d+)$", text, re.M)
        return int(match.group(1)) if match else 0

    def _open_peak(self, fresh: bool) -> None:
        self._close_peak()
        try:
            fd = os.open(self._memory_dir / "memory.peak", os.O_RDWR)
        except OSError:
            return  # kernel < 5.19
        try:
            os.write(fd, b"reset\n")  # Linux >= 6.12: resets the peak seen through this fd
        except OSError:
            if not fresh:
                os.close(fd)  # the peak of an older run would leak into this one
                return
        self._peak_fd = fd

    def _close_peak(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None

    def __del__(self):
        if getattr(self, "_peak_fd", None) is not None:
            self._close_peak()


def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise RuntimeError(f"cannot write {value!r} to {path}: {e.strerror or e}") from e


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise RuntimeError(f"cannot read {path}: {e.strerror or e}") from e


def _parse_mountinfo(text: str) -> list[tuple[str, Path, str, set[str]]]:
    """(root, mount point, fs type, super options) of every mount in a /proc/self/mountinfo text."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or not tail:
            continue
        opts = set(tail[2].split(",")) if len(tail) > 2 else set()
        mounts.append((_unescape(fields[3]), Path(_unescape(fields[4])), tail[0], opts))
    return mounts


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _parse_proc_cgroup(text: str) -> dict[str, str]:
    """Controller -> cgroup path from a /proc/self/cgroup text; the v2 entry is keyed ``""``."""
    own = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                own[controller] = parts[2]
    return own


def _locate(mount: tuple[str, Path, str, set[str]], path: str) -> Path | None:
    """The directory of cgroup ``path`` under ``mount``, or None when the mount does not show it."""
    root, point = mount[0], mount[1]
    if root != "/" and path != root and not path.startswith(root.rstrip("/") + "/"):
        return None
    rel = path[len(root):] if root != "/" else path
    return point / rel.lstrip("/")


def _probe_v1(mounts: list, own: dict[str, str], name: str) -> CgroupSupport:
    parents = []
    for controller in V1_CONTROLLERS:
        where = None
        for mount in mounts:
            if mount[2] == "cgroup" and controller in mount[3] and controller in own:
                where = _locate(mount, own[controller])
                if where is not None:
                    break
        if where is None:
            return CgroupSupport(None, f"cgroup v1: no mounted {controller} hierarchy showing this process's cgroup")
        parents.append(where / name)
    return _try(CgroupSupport("v1", "", tuple(parents), "freezer"), "cgroup v1", "cgroup v1 needs root")


def _probe_v2(own_dir: Path | None, name: str) -> CgroupSupport:
    """Set up ``<own_dir>/<name>`` with memory and pids for its children, or say why not."""
    if own_dir is None:
        return CgroupSupport(None, "cgroup v2: the cgroup2 mount does not show this process's cgroup")
    try:
        available = _read(own_dir / "cgroup.controllers").split()
    except RuntimeError as e:
        return CgroupSupport(None, f"cgroup v2: {e}")
    missing = [c for c in V2_CONTROLLERS if c not in available]
    if missing:
        return CgroupSupport(None, f"cgroup v2: {own_dir} offers no {'/'.join(missing)} controller (cgroup.controllers:"
                                   f" {' '.join(available) or 'empty'}); on a hybrid system they belong to cgroup v1")
    base = own_dir / name
    try:
        _mkdir(base)
        _enable_controllers(own_dir, name)
        _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in V2_CONTROLLERS))
    except (RuntimeError, PermissionError) as e:
        return CgroupSupport(None, f"cgroup v2: {e}")
    kill = next((k for k in ("cgroup.kill", "cgroup.freeze") if (base / k).exists()), None)
    if kill is None:
        return CgroupSupport(None, f"cgroup v2: {base} has neither cgroup.kill nor cgroup.freeze (Linux < 5.2)")
    return _try(CgroupSupport("v2", "", (base,), kill), "cgroup v2", _DELEGATE_HINT)


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(exist_ok=True)
    except PermissionError as e:
        raise PermissionError(f"no write access to {path.parent} ({_DELEGATE_HINT})") from e
    except OSError as e:
        raise RuntimeError(f"cannot create {path}: {e.strerror}") from e


def _enable_controllers(own_dir: Path, name: str) -> None:
    """Enable memory and pids in ``own_dir``'s subtree_control; if this process alone occupies ``own_dir`` and it is
    delegated to us, first move this process into the leaf ``<own_dir>/<name>-host`` (v2: no internal processes)."""
    control = own_dir / "cgroup.subtree_control"
    if set(V2_CONTROLLERS) <= set(_read(control).split()):
        return
    value = " ".join(f"+{c}" for c in V2_CONTROLLERS)
    try:
        with open(control, "w") as f:
            f.write(value)
        return
    except PermissionError as e:
        raise PermissionError(f"no write access to {control} ({_DELEGATE_HINT})") from e
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise RuntimeError(f"cannot write {value!r} to {control}: {e.strerror}") from e
    procs = _read(own_dir / "cgroup.procs").split()
    if procs != [str(os.getpid())] or not _delegated(own_dir):
        raise RuntimeError(
            f"{own_dir} holds processes ({len(procs)}: {' '.join(procs[:5])}), so cgroup v2 cannot give its children "
            f"memory/pids limits, and it is not a cgroup delegated to this process alone; start prift as the only "
            f"process of a delegated cgroup (e.g. `systemd-run --user --scope -p Delegate=yes prift ...`)")
    host = own_dir / f"{name}-host"
    _mkdir(host)
    _write(host / "cgroup.procs", str(os.getpid()))
    _write(control, value)


def _delegated(own_dir: Path) -> bool:
    """A cgroup we may reorganise: owned by us as non-root (systemd chowns delegated cgroups) or marked delegated."""
    if os.geteuid() != 0:
        return os.access(own_dir / "cgroup.procs", os.W_OK) and os.access(own_dir, os.W_OK)
    for attr in ("trusted.delegate", "user.delegate"):
        try:
            if os.getxattr(own_dir, attr) == b"1":
                return True
        except OSError:
            pass
    return False


def _try(support: CgroupSupport, label: str, hint: str) -> CgroupSupport:
    """Prove ``support`` with a test cgroup: create, limit, run a process inside, kill, remove."""
    created = []
    for parent in support.parents:
        try:
            if not parent.exists():
                parent.mkdir()
                created.append(parent)
        except PermissionError:
            return _undo(created, f"{label}: no write access to {parent.parent} ({hint})")
        except OSError as e:
            return _undo(created, f"{label}: cannot create {parent}: {e.strerror}")
    test = RunCgroup._named(support, f"probe-{os.getpid()}")
    try:
        test.prepare(64 << 20, 16)
        show = 'while read -r line; do echo "$line"; done < /proc/self/cgroup'  # /bin/sh alone, no cat needed
        done = subprocess.run(test.enter_argv(["/bin/sh", "-c", show]), capture_output=True, text=True, timeout=10)
        if done.returncode != 0 or f"/{test.dirs[0].parent.name}/{test.dirs[0].name}\n" not in done.stdout:
            raise RuntimeError(f"a test process could not join {test.dirs[0]}: {(done.stderr or done.stdout).strip()}")
        test.kill()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        test.remove()
        return _undo(created, f"{label}: {e}")
    test.remove()
    return support


def _undo(created: list[Path], reason: str) -> CgroupSupport:
    for path in created:
        try:
            path.rmdir()
        except OSError:
            pass
    return CgroupSupport(None, reason)
