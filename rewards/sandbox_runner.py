"""The program that runs *inside* the sandbox: confine this process, then run untrusted code and its tests.

Launched as ``python -I -c <this source>`` (never imported by prift; it must run on any Python >= 3.10 the
sandbox picks, importing as little as possible: start-up time is most of a run). It reads one ``marshal``-ed
job from stdin, then, before any untrusted
code runs:

1. mounts a size-limited tmpfs on its work dir when it owns a private mount namespace (disk-fill bound),
2. sets rlimits: address space, CPU seconds, file size, open files, core = 0, processes (when countable),
3. drops to the job's unprivileged uid/gid (root callers only; capabilities go with it),
4. applies Landlock (no_new_privs; read-only interpreter and system dirs, read-write work dir, no TCP,
   no signals or abstract sockets outside the sandbox) where the kernel has it.

It then runs the tests (``assert`` code, ``stdio`` cases, or ``functional`` cases) and prints one verdict line
``<nonce> <repr of a dict>`` on stdout, ``status`` being ``passed`` / ``failed`` / ``memory`` / ``error`` (bad test
spec), and exits. The nonce (read from stdin) means a program cannot print a verdict by accident; ``sys.exit``
or ``os._exit`` from the program never reaches the verdict line and so grades as a failure.
"""

import _ast
import ctypes
import io
import marshal
import math
import os
import resource
import sys

LANDLOCK_RW = (1 << 13) - 1  # execute .. make_sym (ABI 1)
LANDLOCK_RO = 1 | 4 | 8  # execute, read_file, read_dir
LANDLOCK_FILE_RW = 2 | 4  # write_file, read_file: for files (not dirs) such as /dev/null
ABI_FS_EXTRA = {2: 1 << 13, 3: 1 << 14, 5: 1 << 15}  # refer, truncate, ioctl_dev
SYS_LANDLOCK_CREATE, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT = 444, 445, 446
PR_SET_NO_NEW_PRIVS = 38
MS_NOSUID, MS_NODEV = 2, 4


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(ret):
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def mount_tmpfs(path, size_mb, uid, gid):
    options = f"size={size_mb}m,mode=0700,uid={uid},gid={gid}".encode()
    _check(_libc().mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options))
    return f"tmpfs {size_mb} MiB"


def set_rlimits(limits):
    applied = {}
    for name, value in limits.items():
        if value is not None:
            resource.setrlimit(getattr(resource, "RLIMIT_" + name.upper()), (value, value))
            applied[name] = value
    return applied


def drop_privileges(uid, gid):
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def landlock(read_paths, write_paths):
    """Restrict this process and its children; returns the ABI version used (raises when unavailable)."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    abi = _check(libc.syscall(SYS_LANDLOCK_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))
    fs_all = LANDLOCK_RW | sum(bit for version, bit in ABI_FS_EXTRA.items() if abi >= version)
    attr = [fs_all, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0]  # fs, net (bind+connect TCP), scopes
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    buf = (ctypes.c_uint64 * 3)(*attr)
    ruleset = _check(libc.syscall(SYS_LANDLOCK_CREATE, buf, ctypes.c_size_t(size), ctypes.c_uint32(0)))
    for paths, rights in ((read_paths, LANDLOCK_RO), (write_paths, fs_all)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            file_rights = (LANDLOCK_FILE_RW | ABI_FS_EXTRA[3] if abi >= 3 else LANDLOCK_FILE_RW) & rights
            allowed = rights if os.path.isdir(path) else file_rights
            rule = _PathBeneath(allowed, fd)
            _check(libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0))
            os.close(fd)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
    _check(libc.syscall(SYS_LANDLOCK_RESTRICT, ruleset, 0))
    os.close(ruleset)
    return abi


def confine(job):
    """Apply every inner layer the job asks for; returns what was actually applied (and why not)."""
    report = {"uid": os.getuid(), "degraded_reasons": []}
    workdir = job["workdir"]
    if job.get("tmpfs_mb"):
        try:
            report["fs_quota"] = mount_tmpfs(workdir, job["tmpfs_mb"], *(job.get("drop_to") or (0, 0)))
        except OSError as exc:
            report["degraded_reasons"].append(f"tmpfs: {exc}")
    os.chdir(workdir)
    report["rlimits"] = set_rlimits(job["limits"])
    if job.get("drop_to"):
        drop_privileges(*job["drop_to"])
        report["uid"] = os.getuid()
    if job.get("landlock") is not None:
        try:
            interpreter_paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]
            report["landlock_abi"] = landlock([*job["landlock"]["read"], *interpreter_paths], [workdir, os.devnull])
        except (OSError, AttributeError) as exc:
            report["degraded_reasons"].append(f"landlock: {exc}")
    return report


def same_output(actual, expected):
    """LiveCodeBench-style: compare stripped non-empty lines; numbers within 1e-6 (absolute or relative)."""
    got = [line.strip() for line in actual.strip().splitlines()]
    want = [line.strip() for line in expected.strip().splitlines()]
    if got == want:
        return True
    got_tokens, want_tokens = " ".join(got).split(), " ".join(want).split()
    if len(got_tokens) != len(want_tokens):
        return False
    return all(a == b or _close(a, b) for a, b in zip(got_tokens, want_tokens, strict=True))


def _close(a, b):
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)
    except ValueError:
        return False


def same_value(actual, expected):
    """Functional results: JSON-normalised equality (tuples == lists), floats within 1e-6."""
    if isinstance(actual, float) or isinstance(expected, float):
        return isinstance(actual, int | float) and math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(actual, list | tuple) and isinstance(expected, list):
        return len(actual) == len(expected) and all(same_value(a, b) for a, b in zip(actual, expected, strict=True))
    return type(actual) in (int, str, bool, type(None), dict) and actual == expected


class CappedSink(io.RawIOBase):
    """A writable byte stream that keeps the first ``cap`` bytes and discards the rest."""

    def __init__(self, cap):
        super().__init__()
        self.cap, self.data = cap, bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.data += bytes(b[: max(0, self.cap - len(self.data))])
        return len(b)


class StdioCase:
    """Runs the whole program as ``__main__`` with ``input`` on stdin; keeps at most ``cap`` bytes of stdout."""

    def __init__(self, code, cap):
        self.code, self.cap = code, cap

    def __call__(self, case):
        sink = CappedSink(self.cap)
        sys.stdin = io.TextIOWrapper(io.BytesIO(case["input"].encode()), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(sink), encoding="utf-8")
        try:
            exec(self.code, {"__name__": "__main__"})
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise
        finally:
            sys.stdout.flush()
            sys.stdin, sys.stdout = sys.__stdin__, sys.__stdout__
        return same_output(sink.data.decode("utf-8", "replace"), case["output"])


def _functional(program_globals, fn_name):
    import json

    solution = program_globals.get("Solution")
    target = getattr(solution(), fn_name) if solution is not None else program_globals[fn_name]

    def check(case):
        args = [json.loads(line) for line in case["input"].split("\n") if line.strip()]
        return same_value(target(*args), json.loads(case["output"]))

    return check


def run_cases(job, program):
    """Returns (passed, total, first failure detail). Test-spec errors raise ``ValueError``."""
    kind, tests, stop = job["kind"], job["tests"], job["stop_on_failure"]
    if kind == "assert":
        statements = compile(tests, "<tests>", "exec", _ast.PyCF_ONLY_AST).body
        program_globals = {"__name__": "__main__"}
        exec(program, program_globals)
        cases = [compile(_ast.Module([stmt], []), "<tests>", "exec") for stmt in statements]

        def check(code):
            exec(code, program_globals)
            return True
    elif kind == "stdio":
        cases, check = tests, StdioCase(program, job["max_output"])
    elif kind == "functional":
        program_globals = {"__name__": "__main__"}
        exec(program, program_globals)
        cases, check = tests["cases"], _functional(program_globals, tests["fn_name"])
    else:
        raise ValueError(f"unknown test kind {kind!r}")
    passed, detail = 0, ""
    for index, case in enumerate(cases):
        try:
            ok = check(case)
        except MemoryError:
            raise
        except (Exception, SystemExit) as exc:
            ok, why = False, f"case {index}: {type(exc).__name__}: {exc}"[:2000]
        else:
            why = f"case {index}: wrong output"
        passed += ok
        detail = detail or ("" if ok else why)
        if stop and not ok:
            break
    return passed, len(cases), detail


def verdict_for(job):
    try:
        program = compile(job["program"], "<program>", "exec")
    except (SyntaxError, ValueError) as exc:
        return {"status": "failed", "detail": f"program does not compile: {exc}"}
    try:
        passed, total, detail = run_cases(job, program)
    except MemoryError:
        return {"status": "memory", "detail": "MemoryError (address-space limit)"}
    except SystemExit as exc:
        return {"status": "failed", "detail": f"program called sys.exit({exc.code!r})"}
    except SyntaxError as exc:
        return {"status": "error", "detail": f"tests do not compile: {exc}"}
    except BaseException as exc:  # the program itself raised before any case ran
        return {"status": "failed", "detail": f"{type(exc).__name__}: {exc}"[:2000]}
    status = "passed" if passed == total and total > 0 else "failed"
    return {
        "status": status,
        "detail": detail or ("no test cases" if total == 0 else ""),
        "passed": passed,
        "total": total,
    }


def main():
    job = marshal.loads(sys.stdin.buffer.read())
    nonce = job.pop("nonce")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BytesIO(b""))
    isolation = confine(job)
    verdict = verdict_for(job)
    verdict["isolation"] = isolation
    sys.__stdout__.flush()
    os.write(1, f"\n{nonce} {verdict!r}\n".encode("utf-8", "replace"))
    os._exit(0)


if __name__ == "__main__":
    main()
