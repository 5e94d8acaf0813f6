"""The seccomp filter of the code sandbox (:mod:`prift.rewards.sandbox_seccomp`).

Each kernel test forks a child that installs the filter, tries things and reports every outcome ("ok" or the errno
name) through a pipe; the parent asserts, and checks side effects (file modes, times) from outside. Control runs of
the same actions without the filter show that the denials come from the filter, not from the machine. The filter
program itself is also run through a small classic-BPF interpreter, which covers aarch64 on any machine.
"""

from __future__ import annotations

import ast
import ctypes
import errno
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from prift.rewards import sandbox_seccomp
from prift.rewards.sandbox_seccomp import SECCOMP_DENIED, SECCOMP_TABLES, seccomp_build, seccomp_install

MACHINE = os.uname().machine
if sys.platform != "linux" or MACHINE not in SECCOMP_TABLES or struct.calcsize("P") != 8:
    pytest.skip(f"seccomp filter supports 64-bit Linux x86_64/aarch64, not {sys.platform} {MACHINE}",
                allow_module_level=True)

TABLE = SECCOMP_TABLES[MACHINE][1]
SOURCE = Path(sandbox_seccomp.__file__).read_text()
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
EPERM, ENOSYS = "EPERM", "ENOSYS"
STATUS = Path("/proc/self/status").read_text()
ALREADY_FILTERED = not re.search(r"^Seccomp:\s+0$", STATUS, re.M)  # e.g. a container runtime's filter
CAN_UNSHARE = not ALREADY_FILTERED and bool(int(re.search(r"^CapEff:\s+(\w+)", STATUS, re.M)[1], 16) >> 21 & 1)
BPF_KILL, BPF_ALLOW, BPF_EPERM, BPF_ENOSYS = 0x80000000, 0x7FFF0000, 0x00050001, 0x00050026


# --- helpers -------------------------------------------------------------------------------------------------------

def syscall(name: str, *args) -> int:
    """Raw syscall by name (this machine's number); raises OSError like the os module does."""
    res = LIBC.syscall(ctypes.c_long(TABLE[name]), *(ctypes.c_long(a) if isinstance(a, int) else a for a in args))
    if res == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return res


def outcome(fn, *args) -> str:
    """'ok' when ``fn(*args)`` returns, else the errno name of the OSError it raised."""
    try:
        fn(*args)
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "ok"


def in_child(body, protect=(), install=True, timeout_s=20) -> dict:
    """Fork; the child installs the filter (unless ``install`` is False), runs ``body() -> dict`` and sends the dict
    back as JSON. Asserts that the child exited cleanly and raised nothing."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: always leaves through os._exit
        try:
            os.close(read_end)
            signal.alarm(timeout_s)  # a hang kills the child; the parent then sees the signal
            try:
                result = {"installed": seccomp_install(protect) if install else None}
                result.update(body())
            except BaseException as exc:  # reported to the parent
                result = {"child_error": f"{type(exc).__name__}: {exc}"}
            data = json.dumps(result).encode()
            while data:
                data = data[os.write(write_end, data):]
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child died: status {status}, sent {data!r}"
    result = json.loads(data)
    assert "child_error" not in result, result["child_error"]
    if install:
        assert result["installed"].startswith(f"seccomp {MACHINE}: "), result["installed"]
    return result


def forked_outcome(fn, *args) -> str:
    """:func:`outcome` of ``fn(*args)`` run in a forked grandchild, which then exits."""
    pid = os.fork()
    if pid == 0:
        try:
            result = outcome(fn, *args)
            os._exit(0 if result == "ok" else getattr(errno, result, 255))
        finally:
            os._exit(255)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return "ok" if code == 0 else errno.errorcode.get(code, str(code))


def fork_sleeper() -> int:
    """A grandchild that sleeps until killed (at most 30 s)."""
    pid = os.fork()
    if pid == 0:
        try:
            signal.alarm(30)
            signal.pause()
        finally:
            os._exit(0)
    return pid


def reap(pid: int) -> int:
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def fork_exit(code: int) -> int:
    """Plain fork of a grandchild that exits with ``code``; returns its exit code seen by waitpid."""
    pid = os.fork()
    if pid == 0:
        os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def raw_clone(flags: int) -> int:
    """clone(flags | SIGCHLD) without a new stack (fork-like); the grandchild exits at once with 5."""
    pid = syscall("clone", flags | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        os._exit(5)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


# --- kernel tests --------------------------------------------------------------------------------------------------

def privileged_actions() -> dict:
    """Memory of other processes, keys, namespaces, memfd and other denied syscalls."""
    out = {}
    sleeper = fork_sleeper()
    try:
        out["ptrace_attach_child"] = outcome(syscall, "ptrace", 16, sleeper, 0, 0)  # PTRACE_ATTACH
    finally:
        reap(sleeper)
    buf, copy = ctypes.create_string_buffer(b"secret", 16), ctypes.create_string_buffer(16)
    local = struct.pack("@PN", ctypes.addressof(copy), 6)
    remote = struct.pack("@PN", ctypes.addressof(buf), 6)
    out["process_vm_readv_self"] = outcome(syscall, "process_vm_readv", os.getpid(), local, 1, remote, 1, 0)
    out["keyctl_session_keyring"] = outcome(syscall, "keyctl", 0, -3, 0)  # KEYCTL_GET_KEYRING_ID, SESSION
    out["memfd_create"] = outcome(os.memfd_create, "x")
    out["personality_query"] = outcome(syscall, "personality", 0xFFFFFFFF)
    out["setpgid"] = forked_outcome(os.setpgid, 0, 0)  # apart: a group leader may not setsid, and vice versa
    out["setsid"] = forked_outcome(os.setsid)
    out["kill_minus_1"] = outcome(os.kill, -1, 0)
    out["kill_own_group"] = outcome(os.kill, 0, 0)
    return out


def namespace_actions() -> dict:
    """In this order because, unfiltered, each unshare changes what the calls after it may do."""
    return {
        "clone_newuser": outcome(raw_clone, CLONE_NEWUSER),
        "clone_newnet": outcome(raw_clone, CLONE_NEWNET),
        "clone_plain": outcome(raw_clone, 0),
        "clone3": outcome(syscall, "clone3", 0, 0),  # unfiltered: EFAULT/EINVAL for a NULL argument
        "unshare_mount": outcome(syscall, "unshare", CLONE_NEWNS),
        "unshare_user": outcome(syscall, "unshare", CLONE_NEWUSER),
    }


def test_privileged_actions_are_denied_and_allowed_without_the_filter():
    denied = in_child(privileged_actions)
    assert {k: v for k, v in denied.items() if k != "installed"} == {
        "ptrace_attach_child": EPERM, "process_vm_readv_self": EPERM, "keyctl_session_keyring": EPERM,
        "memfd_create": EPERM, "personality_query": EPERM, "setsid": EPERM, "setpgid": EPERM,
        "kill_minus_1": EPERM, "kill_own_group": EPERM,
    }
    control = in_child(privileged_actions, install=False)
    for key in ("memfd_create", "setsid", "setpgid", "kill_minus_1", "kill_own_group"):
        assert control[key] == "ok", (key, control)
    if not ALREADY_FILTERED:  # a container's own filter may deny these too
        for key in ("ptrace_attach_child", "process_vm_readv_self", "keyctl_session_keyring", "personality_query"):
            assert control[key] == "ok", (key, control)


def test_namespaces_are_denied_but_plain_clone_works():
    denied = in_child(namespace_actions)
    assert denied["unshare_user"] == denied["unshare_mount"] == EPERM, denied
    assert denied["clone_newuser"] == denied["clone_newnet"] == EPERM, denied
    assert denied["clone_plain"] == "ok", denied
    assert denied["clone3"] == ENOSYS, denied
    control = in_child(namespace_actions, install=False)
    assert control["clone_plain"] == "ok" and control["clone3"] != ENOSYS, control
    if CAN_UNSHARE:  # this process may create namespaces, so the denials above are the filter's
        assert control["clone_newuser"] == control["clone_newnet"] == control["unshare_mount"] == "ok", control
        assert control["unshare_user"] == "ok", control


def socket_actions() -> dict:
    out = {"unix": outcome(socket.socket, socket.AF_UNIX, socket.SOCK_STREAM),
           "inet": outcome(socket.socket, socket.AF_INET, socket.SOCK_STREAM),
           "inet6_udp": outcome(socket.socket, socket.AF_INET6, socket.SOCK_DGRAM)}
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ping")
        out["socketpair"] = right.recv(4).decode()
        out["fiosetown"] = outcome(ioctl_int, left.fileno(), 0x8901, os.getpid())
    import fcntl

    read_end, write_end = os.pipe()
    out["f_setown"] = outcome(fcntl.fcntl, read_end, fcntl.F_SETOWN, os.getpid())
    out["f_getown"] = outcome(fcntl.fcntl, read_end, fcntl.F_GETOWN)
    out["f_setfl"] = outcome(fcntl.fcntl, read_end, fcntl.F_SETFL, os.O_NONBLOCK)
    os.close(read_end)
    os.close(write_end)
    return out


def ioctl_int(fd: int, request: int, value: int) -> None:
    """ioctl(fd, request, &value) for an int argument; raises OSError."""
    arg = ctypes.c_int(value)
    if LIBC.ioctl(fd, ctypes.c_ulong(request), ctypes.byref(arg)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def test_sockets_denied_socketpair_and_fcntl_still_work():
    result = in_child(socket_actions)
    assert result["unix"] == result["inet"] == result["inet6_udp"] == EPERM, result
    assert result["socketpair"] == "ping"
    assert result["fiosetown"] == result["f_setown"] == EPERM, result
    assert result["f_getown"] == result["f_setfl"] == "ok", result
    control = in_child(socket_actions, install=False)
    assert control["unix"] == control["fiosetown"] == control["f_setown"] == "ok", control


def test_socket_module_raises_permission_error():
    def body():
        try:
            socket.socket(socket.AF_UNIX)
        except PermissionError:
            return {"raised": "PermissionError"}
        return {"raised": None}

    assert in_child(body)["raised"] == "PermissionError"


def test_file_metadata_cannot_change(tmp_path):
    target, control_file = tmp_path / "target", tmp_path / "control"
    for path in (target, control_file):
        path.write_text("data")
        os.chmod(path, 0o600)
        os.utime(path, (1_000_000, 1_000_000))
    before = os.stat(target)

    def body(path=str(target)):
        fd = os.open(path, os.O_RDONLY)
        try:
            return {
                "chmod": outcome(os.chmod, path, 0o777),
                "fchmod": outcome(os.fchmod, fd, 0o777),
                "chown": outcome(os.chown, path, os.getuid(), os.getgid()),
                "utime": outcome(os.utime, path, (2_000_000, 2_000_000)),
                "utime_now": outcome(os.utime, path),
                "setxattr": outcome(os.setxattr, path, "user.prift", b"1"),
                "removexattr": outcome(os.removexattr, path, "user.prift"),
                "mkfifo": outcome(os.mkfifo, path + ".fifo"),
                "read": Path(path).read_text(),
            }
        finally:
            os.close(fd)

    result = in_child(body)
    assert {k: v for k, v in result.items() if k not in ("installed", "read")} == dict.fromkeys(
        ("chmod", "fchmod", "chown", "utime", "utime_now", "setxattr", "removexattr", "mkfifo"), EPERM)
    assert result["read"] == "data"
    after = os.stat(target)
    assert stat.S_IMODE(after.st_mode) == 0o600 and after.st_mtime == before.st_mtime == 1_000_000
    assert not (tmp_path / "target.fifo").exists()
    try:
        assert "user.prift" not in os.listxattr(target)
    except OSError as exc:  # file system without xattrs: nothing to check
        assert exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)

    control = in_child(lambda: {"chmod": outcome(os.chmod, str(control_file), 0o640),
                                "utime": outcome(os.utime, str(control_file), (3_000_000, 3_000_000))},
                       install=False)
    assert control["chmod"] == control["utime"] == "ok"
    assert stat.S_IMODE(os.stat(control_file).st_mode) == 0o640 and os.stat(control_file).st_mtime == 3_000_000


def test_signals_to_protected_process_its_threads_and_group_are_denied():
    """The test process is protected; one of its extra threads too (kill/tkill of a thread id reach the whole
    process). The child may still signal itself and its own children."""
    ready, stop, tids = threading.Event(), threading.Event(), []

    def park():
        tids.append(threading.get_native_id())
        ready.set()
        stop.wait(30)

    thread = threading.Thread(target=park, daemon=True)
    thread.start()
    ready.wait(5)
    parent, tid = os.getpid(), tids[0]

    def body():
        import resource

        out = {
            "kill_parent": outcome(os.kill, parent, 0),
            "kill_parent_group": outcome(os.kill, -parent, 0),
            "kill_parent_thread": outcome(os.kill, tid, 0),
            "tkill_parent_thread": outcome(syscall, "tkill", tid, 0),
            "tgkill_parent": outcome(syscall, "tgkill", parent, tid, 0),
            "pidfd_open_parent": outcome(syscall, "pidfd_open", parent, 0),
            "prlimit_parent": outcome(resource.prlimit, parent, resource.RLIMIT_NOFILE),
            "kill_self": outcome(os.kill, os.getpid(), 0),
            "prlimit_self": outcome(resource.prlimit, os.getpid(), resource.RLIMIT_NOFILE),
            "getrlimit": outcome(resource.getrlimit, resource.RLIMIT_NOFILE),
        }
        proc_fd = os.open(f"/proc/{parent}", os.O_RDONLY | os.O_DIRECTORY)  # pidfd_send_signal accepts it
        out["pidfd_send_signal_parent"] = outcome(syscall, "pidfd_send_signal", proc_fd, 0, 0, 0)
        os.close(proc_fd)
        grandchild = fork_sleeper()
        try:
            out["pidfd_open_grandchild"] = outcome(syscall, "pidfd_open", grandchild, 0)
            out["kill_grandchild"] = outcome(os.kill, grandchild, signal.SIGKILL)
        finally:
            status = os.waitpid(grandchild, 0)[1]
        out["grandchild_signal"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        return out

    try:
        assert tid in sandbox_seccomp.seccomp_protected_ids((parent,))
        result = in_child(body, protect=(parent,))
        control = in_child(body, install=False)
    finally:
        stop.set()
        thread.join(5)
    for key in ("kill_parent", "kill_parent_group", "kill_parent_thread", "tkill_parent_thread", "tgkill_parent",
                "pidfd_open_parent", "prlimit_parent", "pidfd_send_signal_parent"):
        assert result[key] == EPERM, (key, result)
    for key in ("kill_self", "prlimit_self", "getrlimit", "pidfd_open_grandchild", "kill_grandchild"):
        assert result[key] == "ok", (key, result)
    assert result["grandchild_signal"] == signal.SIGKILL
    for key in ("kill_parent", "kill_parent_thread", "tkill_parent_thread", "tgkill_parent", "pidfd_open_parent",
                "prlimit_parent", "pidfd_send_signal_parent"):
        assert control[key] == "ok", (key, control)


def workload(tmp: str) -> dict:
    import collections
    import decimal
    import fractions
    import heapq
    import itertools
    import multiprocessing
    import shutil

    out = {}
    seen = []
    threads = [threading.Thread(target=seen.append, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out["threads"] = sorted(seen)
    out["fork"] = fork_exit(7)
    out["true"] = subprocess.run([shutil.which("true") or "/bin/true"], check=False).returncode
    out["python"] = subprocess.run([sys.executable, "-I", "-S", "-c", "print(6 * 7)"], capture_output=True,
                                   text=True, check=False).stdout.strip()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        out["pool"] = pool.map(abs, [-1, -2, -3, -4])
    out["compute"] = [str(decimal.Decimal(1) / decimal.Decimal(8)), str(fractions.Fraction(3, 6)),
                      heapq.nsmallest(2, [5, 1, 4]), list(itertools.accumulate([1, 2, 3])),
                      collections.Counter("abca").most_common(1)[0][0], re.sub(r"\d", "#", "a1b2"),
                      json.loads('{"k": [1]}')["k"]]
    path = Path(tmp) / "work" / "file.txt"
    path.parent.mkdir()
    path.write_text("hello")
    out["file"] = path.read_text()
    path.rename(path.with_suffix(".bak"))
    path.with_suffix(".bak").unlink()
    path.parent.rmdir()
    out["left"] = os.listdir(tmp)
    return out


def test_normal_workload_runs_under_the_filter(tmp_path):
    result = in_child(lambda: workload(str(tmp_path)), protect=(os.getpid(),))
    assert result["threads"] == [0, 1, 2, 3]
    assert result["fork"] == 7 and result["true"] == 0 and result["python"] == "42"
    assert result["pool"] == [1, 2, 3, 4]
    assert result["compute"] == ["0.125", "1/2", [1, 4], [1, 3, 6], "a", "a#b#", [1]]
    assert result["file"] == "hello" and result["left"] == []


GLUED_TAIL = """
print(seccomp_install())
import collections, decimal, fractions, heapq, itertools, json, re, socket, threading
import multiprocessing
try:
    socket.socket(socket.AF_INET)
    print("socket allowed")
except PermissionError:
    print("socket denied")
t = threading.Thread(target=print, args=("thread ran",))
t.start()
t.join()
with multiprocessing.get_context("fork").Pool(2) as pool:
    print("pool", sum(pool.map(abs, [-1, -2, -3])))
print("decimal", decimal.Decimal(1) / decimal.Decimal(4))
"""


def test_module_source_runs_glued_in_front_of_a_script_under_isolated_mode():
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", SOURCE + GLUED_TAIL], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"seccomp {MACHINE}: ") and "syscalls denied" in lines[0], lines
    assert lines[1:] == ["socket denied", "thread ran", "pool 6", "decimal 0.25"], proc.stdout


# --- static checks -------------------------------------------------------------------------------------------------

def test_module_defines_only_prefixed_names_and_imports_only_the_standard_library():
    tree = ast.parse(SOURCE)
    for node in tree.body:
        if isinstance(node, ast.Expr):
            assert node is tree.body[0] and isinstance(node.value, ast.Constant), "only the docstring"
            continue
        assert isinstance(node, (ast.Assign, ast.FunctionDef)), ast.dump(node)[:80]
        targets = [t.id for t in node.targets] if isinstance(node, ast.Assign) else [node.name]
        for name in targets:
            assert name.startswith(("seccomp_", "SECCOMP_")), name
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            raise AssertionError(f"from-import of {node.module}")
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name in ("ctypes", "os", "struct"), alias.name


def header_numbers(path: str) -> dict[str, int]:
    text = Path(path).read_text()
    raw = dict(re.findall(r"^#define\s+(__NR(?:3264)?_\w+)\s+(\w+)", text, re.M))
    numbers = {}
    for macro, value in raw.items():
        for _ in range(3):  # e.g. __NR_fcntl -> __NR3264_fcntl -> 25
            value = raw.get(value, value)
        if macro.startswith("__NR_") and value.isdigit():
            numbers[macro[len("__NR_"):]] = int(value)
    return numbers


@pytest.mark.parametrize("machine,headers", [
    ("x86_64", ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h")),
    ("aarch64", ("/usr/include/asm-generic/unistd.h",)),
])
def test_syscall_numbers_match_the_kernel_headers(machine, headers):
    header = next((path for path in headers if Path(path).exists()), None)
    if header is None:
        pytest.skip(f"kernel headers not installed: {headers}")
    numbers = header_numbers(header)
    table = SECCOMP_TABLES[machine][1]
    checked = [name for name in table if name in numbers]
    assert len(checked) > 60, checked
    assert {name: table[name] for name in checked} == {name: numbers[name] for name in checked}
    if machine == "aarch64":  # legacy path-based calls do not exist in the generic table
        for name in ("chmod", "chown", "lchown", "utime", "utimes", "futimesat", "mknod"):
            assert name not in numbers and name not in table
    # syscalls added since 5.1 (>= 424) share one number on every architecture, newer headers or not
    x86, arm = SECCOMP_TABLES["x86_64"][1], SECCOMP_TABLES["aarch64"][1]
    assert {n: x86[n] for n in x86 if x86[n] >= 424} == {n: arm[n] for n in x86 if x86[n] >= 424}


# --- the program through a classic-BPF interpreter ----------------------------------------------------------------

def run_bpf(code: bytes, nr: int, arch: int, args=(0,) * 6) -> int:
    """Execute the filter on one seccomp_data; only the instructions the builder may emit are accepted."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(a & 0xFFFFFFFFFFFFFFFF for a in args))
    prog = [struct.unpack_from("<HBBI", code, i) for i in range(0, len(code), 8)]
    pc, acc = 0, 0
    for _ in range(len(prog)):
        op, jt, jf, k = prog[pc]
        if op == 0x20:  # LD W ABS
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif op in (0x15, 0x35, 0x45):  # JEQ, JGE, JSET (K)
            taken = acc == k if op == 0x15 else acc >= k if op == 0x35 else bool(acc & k)
            pc += 1 + (jt if taken else jf)
        elif op == 0x05:  # JA
            pc += 1 + k
        elif op == 0x06:  # RET K
            return k
        else:
            raise AssertionError(f"unexpected opcode {op:#x} at {pc}")
    raise AssertionError("fell off the program")


@pytest.mark.parametrize("machine", sorted(SECCOMP_TABLES))
def test_filter_program_decisions(machine):
    audit, table = SECCOMP_TABLES[machine]
    parent = 4242
    code, description = seccomp_build(machine, [parent, 4243])
    assert len(code) % 8 == 0 and len(code) // 8 <= 4096
    present = [name for name in SECCOMP_DENIED if name in table]
    assert description.startswith(f"seccomp {machine}: {len(present)} syscalls denied")
    for _, jt, jf, _ in (struct.unpack_from("<HBBI", code, i) for i in range(0, len(code), 8)):
        assert jt <= 1 and jf <= 1  # far targets only through JA (32-bit offsets)

    def decide(name_or_nr, *args, arch=audit):
        nr = table[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
        return run_bpf(code, nr, arch, args + (0,) * (6 - len(args)))

    assert decide("socket", arch=0x40000003) == BPF_KILL  # i386 ABI
    assert decide(0, arch=0x40000028) == BPF_KILL  # arm32 compat
    if machine == "x86_64":
        assert decide(0x40000000 | 41) == BPF_KILL  # x32 socket
        assert decide(0x40000000) == BPF_KILL
    for name in present:
        assert decide(name) == BPF_EPERM, name
    assert decide("clone3") == BPF_ENOSYS
    benign = {"x86_64": (0, 1, 2, 3, 9, 57, 58, 60, 231, 53, 257), "aarch64": (63, 64, 56, 57, 222, 93, 94, 199)}
    for nr in benign[machine]:  # read/write/open/close/mmap/fork/vfork/exit/socketpair/openat ...
        assert decide(nr, 3, 4) == BPF_ALLOW, nr
    for name in ("landlock_create_ruleset", "seccomp"):
        if name in table:
            assert decide(name) == BPF_ALLOW
    # clone: namespace flags denied, thread/fork flags allowed; the high word of args[0] is ignored by the kernel
    assert decide("clone", 0x01200011) == BPF_ALLOW  # fork: CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
    assert decide("clone", 0x003D0F00) == BPF_ALLOW  # pthread_create flags
    for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x80):
        assert decide("clone", flag | 0x11) == BPF_EPERM, hex(flag)
    # signals
    assert decide("kill", parent, 9) == BPF_EPERM
    assert decide("kill", 4243, 9) == BPF_EPERM
    assert decide("kill", -parent, 9) == BPF_EPERM
    assert decide("kill", -1, 9) == BPF_EPERM
    assert decide("kill", (1 << 32) - 1, 9) == BPF_EPERM  # -1 as a 32-bit pid
    assert decide("kill", 0, 9) == BPF_EPERM
    assert decide("kill", 777, 9) == BPF_ALLOW
    assert decide("kill", -777, 9) == BPF_ALLOW
    for name in ("tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "prlimit64"):
        assert decide(name, parent, 9) == BPF_EPERM, name
        assert decide(name, -1, 9) == BPF_EPERM, name
        assert decide(name, 777, 9) == BPF_ALLOW, name
    assert decide("tgkill", 777, parent, 9) == BPF_ALLOW  # the tid must belong to tgid 777: the kernel checks
    assert decide("prlimit64", 0, 7) == BPF_ALLOW  # own limits (getrlimit/setrlimit)
    # SIGIO owners
    for cmd in (8, 10, 15):
        assert decide("fcntl", 3, cmd, 1) == BPF_EPERM
    for cmd in (0, 1, 2, 3, 4, 9):
        assert decide("fcntl", 3, cmd, 1) == BPF_ALLOW
    assert decide("ioctl", 3, 0x8901) == BPF_EPERM and decide("ioctl", 3, 0x8902) == BPF_EPERM
    assert decide("ioctl", 1, 0x5401) == BPF_ALLOW  # TCGETS


def test_builder_rejects_unsupported_input():
    with pytest.raises(OSError):
        seccomp_build("riscv64")
    with pytest.raises(ValueError):
        sandbox_seccomp.seccomp_protected_ids([0])
    with pytest.raises(ValueError):
        seccomp_build("x86_64", list(range(1, 1000)))  # 4 instructions per id: over 4096
    assert sandbox_seccomp.seccomp_protected_ids([os.getpid()])[0] <= os.getpid()
