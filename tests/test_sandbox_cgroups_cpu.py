"""Per-run cgroups of the code sandbox (:mod:`prift.rewards.sandbox_cgroups`): real processes run through
``enter_argv`` under the limits the machine's cgroups enforce (skipped only where ``probe_cgroups`` finds none), plus
the v2 code path on fake cgroup trees under tmp_path where the machine has no v2 memory controller.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prift.rewards import sandbox_cgroups as sc
from prift.rewards.sandbox_cgroups import CgroupSupport, RunCgroup, probe_cgroups

MiB = 1 << 20
PY = [sys.executable, "-I", "-S", "-c"]

# forks 3 children that each touch 200 MB and hold it 1 s (so all three overlap); prints their exit codes
FORK_ALLOC = """
import json, os, time
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        block = b"\\1" * (200 << 20)
        time.sleep(1.0)
        os._exit(0)
    kids.append(pid)
print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in kids]))
"""
MEMFD = """
import os
fd, chunk = os.memfd_create("prift-test"), b"\\1" * (1 << 20)
for _ in range(300):
    os.write(fd, chunk)
print("survived")
"""
FORK_LOOP = """
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            os.closerange(0, 3)  # so the test's pipe closes when the parent exits
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as e:
    print(n, e.errno)
"""
# a grandchild in a new session (outside any process-group kill) reports its pid through a file, then sleeps
ESCAPE = """
import os, sys, time
out = sys.argv[1]
child = os.fork()
if child == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 3)
        with open(out + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(out + ".tmp", out)
        time.sleep(60)
    os._exit(0)
os.waitpid(child, 0)
if len(sys.argv) > 2:
    block = b"\\1" * (int(sys.argv[2]) << 20)
time.sleep(60)
"""


@pytest.fixture(scope="module")
def support():
    found = probe_cgroups(f"prift-sandbox-test-{os.getpid()}")
    if found.version is None:
        pytest.skip(f"no usable cgroups: {found.reason}")
    yield found
    errors = []
    for parent in found.parents:
        for leaf in parent.glob("slot-*"):
            try:
                RunCgroup._named(found, leaf.name).kill()
                leaf.rmdir()
            except (RuntimeError, OSError) as e:
                errors.append(str(e))
        try:
            parent.rmdir()
        except OSError as e:
            errors.append(str(e))
    assert not errors, errors


def _run(cg: RunCgroup, code: str, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(cg.enter_argv([*PY, code, *args]), capture_output=True, text=True, timeout=timeout)


def _procs(cg: RunCgroup) -> set[int]:
    return {int(p) for d in cg.dirs for p in (d / "cgroup.procs").read_text().split()}


def _wait_file(path: Path, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return int(path.read_text())


def _running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (an orphan's zombie may wait for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_probe_finds_a_place_here(support):
    assert support.version in ("v1", "v2") and support.reason == ""
    assert all(p.is_dir() and p.name.startswith("prift-sandbox-test-") for p in support.parents)
    assert not any(list(p.glob("probe-*")) for p in support.parents), "the probe's test cgroup was left behind"
    if support.version == "v1":
        memory, pids, freezer = support.parents
        assert (memory / "memory.limit_in_bytes").exists() and (pids / "pids.max").exists()
        assert (freezer / "freezer.state").exists() and support.kill == "freezer"
    else:
        assert set((support.parents[0] / "cgroup.subtree_control").read_text().split()) >= {"memory", "pids"}


def test_total_memory_of_forked_children_is_bounded(support):
    cg = RunCgroup(support, 0)
    cg.prepare(1024 * MiB, 64)
    done = _run(cg, FORK_ALLOC)
    assert done.returncode == 0 and json.loads(done.stdout) == [0, 0, 0], (done.stdout, done.stderr)
    assert not cg.oom_killed()
    assert cg.peak_memory_bytes() >= 3 * 200 * MiB  # all three blocks were charged at once

    cg.prepare(256 * MiB, 64)  # same slot, next run: limits and counters start afresh
    done = _run(cg, FORK_ALLOC)
    codes = json.loads(done.stdout) if done.returncode == 0 else []
    assert done.returncode == -9 or -9 in codes, (done.returncode, done.stdout, done.stderr)
    assert cg.oom_killed()
    assert cg.peak_memory_bytes() <= 256 * MiB  # not the previous run's 600 MB
    assert cg.describe()["memory_bytes"] == 256 * MiB


def test_memfd_memory_is_charged(support):
    cg = RunCgroup(support, 1)
    cg.prepare(256 * MiB, 64)
    done = _run(cg, MEMFD)
    assert done.returncode == -9 and "survived" not in done.stdout, (done.returncode, done.stdout, done.stderr)
    assert cg.oom_killed()
    assert cg.peak_memory_bytes() > 200 * MiB  # the process itself is small: the memfd pages were charged


def test_pids_limit_stops_a_fork_loop(support):
    cg = RunCgroup(support, 2)
    cg.prepare(256 * MiB, 10)
    done = _run(cg, FORK_LOOP)
    forked, err = map(int, done.stdout.split())
    assert (forked, err) == (9, errno.EAGAIN), done.stdout  # the parent plus 9 children make 10
    assert len(_procs(cg)) == 9  # the children outlived their parent, still inside
    cg.kill()
    assert _procs(cg) == set()


def test_kill_reaches_a_double_forked_new_session(support, tmp_path):
    cg = RunCgroup(support, 3)
    cg.prepare(256 * MiB, 32)
    report = tmp_path / "pid"
    proc = subprocess.Popen(cg.enter_argv([*PY, ESCAPE, str(report)]), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        grandchild = _wait_file(report)
        assert os.getsid(grandchild) != os.getsid(proc.pid) and os.getpgid(grandchild) != os.getpgid(proc.pid)
        assert {proc.pid, grandchild} == _procs(cg)
        cg.kill(timeout_s=5)
        assert proc.wait(timeout=5) == -9
        assert _procs(cg) == set()
        for d in cg.dirs:
            assert (d / "cgroup.procs").read_text() == ""
        deadline = time.monotonic() + 2
        while _running(grandchild) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _running(grandchild)
    finally:
        proc.kill()
        proc.wait()


FORK_CHAINS = """
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: this process reaps every chain's dead links
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
for _ in range(8):  # eight chains: each process forks its successor and exits, so the set of pids never rests
    if os.fork() == 0:
        while True:
            try:
                if os.fork() != 0:
                    os._exit(0)
            except OSError:
                time.sleep(0.001)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.001)
"""


def test_a_kill_without_waiting_leaves_no_process_able_to_run(support, tmp_path):
    """kill(wait=False) (the sandbox's end of a run) returns before the processes are gone, but not one of them
    runs again: the cgroup empties by itself, with no second kill, while its pids changed all the time."""
    cg = RunCgroup(support, 5)
    cg.prepare(256 * MiB, 64)
    report = tmp_path / "started"
    proc = subprocess.Popen(cg.enter_argv([*PY, FORK_CHAINS, str(report)]))
    try:
        _wait_file(report)
        deadline = time.monotonic() + 5
        while len(_procs(cg)) < 9:  # the subreaper and its eight chains
            assert time.monotonic() < deadline, "the chains never started"
            time.sleep(0.01)
        before = _procs(cg)
        time.sleep(0.2)
        assert len(before - _procs(cg)) >= 4  # the chains are moving (a busy machine may stall a few)
        cg.kill(wait=False)
        deadline = time.monotonic() + 3
        while _procs(cg) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _procs(cg) == set()
    finally:
        cg.kill()
        proc.wait()


def test_prepare_kills_leftovers_and_resets_the_oom_counter(support, tmp_path):
    cg = RunCgroup(support, 4)
    cg.prepare(64 * MiB, 32)
    report = tmp_path / "pid"
    done = subprocess.run(cg.enter_argv([*PY, ESCAPE, str(report), "200"]), capture_output=True, timeout=15)
    assert done.returncode == -9  # the parent hit 64 MiB
    leftover = _wait_file(report)
    assert cg.oom_killed() and _running(leftover) and _procs(cg) == {leftover}

    cg.prepare(64 * MiB, 32)
    assert _procs(cg) == set() and not _running(leftover)
    assert not cg.oom_killed()


def test_v2_probe_reports_missing_controllers_on_the_real_unified_tree():
    mounts = sc._parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    own = sc._parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
    v2 = next((m for m in mounts if m[2] == "cgroup2"), None)
    if v2 is None or "" not in own:
        pytest.skip("no cgroup2 mount here")
    own_dir = sc._locate(v2, own[""])
    available = (own_dir / "cgroup.controllers").read_text().split()
    if "memory" in available and "pids" in available:
        pytest.skip(f"{own_dir} offers memory and pids: the real v2 path is covered by the other tests")
    name = f"prift-sandbox-test-{os.getpid()}"
    found = sc._probe_v2(own_dir, name)
    assert found.version is None and "offers no" in found.reason and str(own_dir) in found.reason
    assert not (own_dir / name).exists()


def test_mountinfo_and_proc_cgroup_parsing():
    pure_v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    hybrid = ("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
              "36 31 0:33 /docker/abc /mnt/my\\040cg rw shared:9 - cgroup cgroup rw,pids,cpu\n"
              "41 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
    (v2,) = sc._parse_mountinfo(pure_v2)
    assert v2 == ("/", Path("/sys/fs/cgroup"), "cgroup2", {"rw", "nsdelegate"})
    memory, pids, unified = sc._parse_mountinfo(hybrid)
    assert pids[:3] == ("/docker/abc", Path("/mnt/my cg"), "cgroup") and {"pids", "cpu"} <= pids[3]
    own = sc._parse_proc_cgroup("9:name=systemd:/\n8:cpu,pids:/docker/abc/x\n4:memory:/process_api/1\n0::/u.slice\n")
    assert own == {"name=systemd": "/", "cpu": "/docker/abc/x", "pids": "/docker/abc/x",
                   "memory": "/process_api/1", "": "/u.slice"}
    assert sc._locate(memory, own["memory"]) == Path("/sys/fs/cgroup/memory/process_api/1")
    assert sc._locate(pids, own["pids"]) == Path("/mnt/my cg/x")
    assert sc._locate(pids, "/other") is None  # outside what that mount shows
    assert sc._locate(unified, own[""]) == Path("/sys/fs/cgroup/unified/u.slice")


def _fake_v2_cgroup(path: Path, controllers: str = "memory pids", procs: str = "") -> Path:
    path.mkdir(parents=True)
    for name, text in {"cgroup.controllers": controllers, "cgroup.subtree_control": "", "cgroup.procs": procs,
                       "memory.max": "max", "memory.swap.max": "max", "pids.max": "max",
                       "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 5\n", "cgroup.kill": ""}.items():
        (path / name).write_text(text)
    return path


def test_v2_probe_on_a_fake_tree_enables_controllers_for_its_children(tmp_path):
    own = _fake_v2_cgroup(tmp_path / "user.slice" / "app.scope")
    found = sc._probe_v2(own, "sbx")
    # a plain directory has no cgroup.kill/cgroup.freeze in the new child: the probe must refuse, not pretend
    assert found.version is None and "neither cgroup.kill nor cgroup.freeze" in found.reason
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (own / "sbx" / "cgroup.subtree_control").read_text() == "+memory +pids"

    missing = sc._probe_v2(_fake_v2_cgroup(tmp_path / "hybrid", controllers="hugetlb"), "sbx")
    assert missing.version is None and "memory/pids" in missing.reason and "hugetlb" in missing.reason


def test_v2_probe_moves_only_a_sole_delegated_process_on_ebusy(tmp_path, monkeypatch):
    real_open = open

    def busy_open(path, mode="r", *args, **kwargs):  # the kernel's answer for a cgroup that holds processes
        if Path(path).name == "cgroup.subtree_control" and "w" in mode and Path(path).parent.name == "scope":
            if not (Path(path).parent / "sbx-host" / "cgroup.procs").exists():
                raise OSError(errno.EBUSY, "Device or resource busy")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(sc, "open", busy_open, raising=False)
    crowded = _fake_v2_cgroup(tmp_path / "a" / "scope", procs=f"{os.getpid()}\n1\n")
    found = sc._probe_v2(crowded, "sbx")
    assert found.version is None and "holds processes" in found.reason and "Delegate=yes" in found.reason
    assert not (crowded / "sbx-host").exists()

    alone = _fake_v2_cgroup(tmp_path / "b" / "scope", procs=f"{os.getpid()}\n")
    os.setxattr(alone, "user.delegate", b"1")  # what systemd marks a delegated cgroup with
    found = sc._probe_v2(alone, "sbx")
    assert (alone / "sbx-host" / "cgroup.procs").read_text() == str(os.getpid())
    assert (alone / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert "neither cgroup.kill" in found.reason  # got as far as the fake tree allows


def test_v2_run_cgroup_files_on_a_fake_tree(tmp_path):
    parent = tmp_path / "own" / "sbx"
    support = CgroupSupport("v2", "", (parent,), "cgroup.kill")
    slot = _fake_v2_cgroup(parent / "slot-3")
    cg = RunCgroup(support, 3)
    assert cg.dirs == (slot,)
    cg.prepare(256 * MiB, 10)
    assert [(slot / f).read_text() for f in ("memory.max", "memory.swap.max", "pids.max")] == [
        str(256 * MiB), "0", "10"]
    assert (slot / "cgroup.kill").read_text() == ""  # nothing to kill, nothing written
    assert not cg.oom_killed()  # oom_kill 5 was the previous runs'
    assert cg.peak_memory_bytes() is None  # no memory.peak file
    (slot / "memory.events").write_text("oom 1\noom_kill 6\n")
    assert cg.oom_killed()
    (slot / "cgroup.procs").write_text("999999999\n")  # a fake tree never empties: kill must time out loudly
    with pytest.raises(RuntimeError, match="still in"):
        cg.kill(timeout_s=0.05)
    assert (slot / "cgroup.kill").read_text() == "1"
    assert cg.describe() == {"version": "v2", "memory_bytes": 256 * MiB, "pids": 10, "kill": "cgroup.kill",
                             "cgroups": [str(slot)]}


def test_write_errors_name_the_file(tmp_path):
    support = CgroupSupport("v2", "", (tmp_path / "sbx",), "cgroup.kill")
    slot = _fake_v2_cgroup(tmp_path / "sbx" / "slot-0")
    (slot / "pids.max").unlink()
    (slot / "pids.max").mkdir()  # opening it for writing fails
    with pytest.raises(RuntimeError, match="pids.max"):
        RunCgroup(support, 0).prepare(MiB, 1)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_enter_argv_quotes_hostile_paths(tmp_path, version):
    weird = tmp_path / "a dir 'with' \"quotes\" $(touch pwned) `touch pwned2`; touch pwned3"
    parents = tuple(weird / c for c in (("memory", "pids", "freezer") if version == "v1" else ("unified",)))
    cg = RunCgroup(CgroupSupport(version, "", parents, "freezer" if version == "v1" else "cgroup.kill"), 7)
    for d in cg.dirs:
        d.mkdir(parents=True)
        (d / "cgroup.procs").write_text("")
    done = subprocess.run(cg.enter_argv([*PY, "import os; print(os.getpid())"]), capture_output=True, text=True,
                          cwd=tmp_path, timeout=10)
    assert done.returncode == 0, done.stderr
    for d in cg.dirs:
        assert (d / "cgroup.procs").read_text() == done.stdout  # sh's $$ is the pid that exec'd python
    assert not list(tmp_path.glob("pwned*"))

    missing = RunCgroup(CgroupSupport(version, "", tuple(p / "gone" for p in parents), "cgroup.kill"), 7)
    done = subprocess.run(missing.enter_argv(["/bin/echo", "ran"]), capture_output=True, text=True, timeout=10)
    assert done.returncode == sc.ENTER_FAILED_EXIT and "ran" not in done.stdout
