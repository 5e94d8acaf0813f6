"""Launching sandbox runs, glued behind ``sandbox_runner.py`` (whose ``main``, ``_libc``, ``_check``, ``_message``,
``SIGKILL``, ``PR_SET_DUMPABLE``, ``MS_NOSUID``, ``MS_NODEV`` and ``VERDICT_FD`` it uses) and compiled with it; never imported by prift.

:func:`zygote` is the loop of the interpreter each grading worker starts once: it forks one runner process per
request (:func:`run_process`), which takes the run's pipes, its own session, the slot's cgroup(s) and (where the plan
has them) new namespaces, then forks the grader into them and reports its exit status. The zygote never runs
program code and holds nothing of a run: the tests reach the grader only after the fork.
"""
# the names above come from sandbox_runner.py, which precedes this file in the compiled runner
# ruff: noqa: F821

import ctypes
import fcntl
import marshal
import os
import socket
import struct
import sys

PR_SET_PDEATHSIG = 1
MS_NOEXEC, MS_REC, MS_PRIVATE = 8, 1 << 14, 1 << 18
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
# a run's descriptors in its runner: stdin (job, tests), the capped log (1 and 2), the verdict pipe, and the status
# pipe on which the runner process reports its grader's exit status (held by that process alone)
STATUS_FD = 4
RUN_FDS = (0, 1, VERDICT_FD, STATUS_FD)


def zygote(control_fd):
    """Fork one runner per request on ``control_fd`` (a SOCK_SEQPACKET socket to the host): a request is a marshalled
    dict with the run's four pipes attached (:data:`RUN_FDS` order); the reply is the runner's pid, 4 bytes.

    Started once per grading worker, so a run costs a fork instead of an interpreter start-up and these imports.
    It never runs program code and holds nothing of a run: the tests reach the grader only after the fork."""
    control = socket.socket(fileno=control_fd)
    _check(_libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))  # no process of this uid reads or writes this memory
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, len(RUN_FDS))
        if not message:  # the host closed the socket: the worker is done
            os._exit(0)
        _reap()
        pid = os.fork()
        if pid == 0:
            control.close()
            run_process(marshal.loads(message), fds)
        for fd in fds:
            os.close(fd)
        control.sendall(struct.pack(">i", pid))


def _reap():
    """Reap runners that ended. Each stays a zombie until a later request, keeping its pid and process group unused
    while the host kills that group (a worker asks for a launch only once the run before the current one is
    killed)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_process(request, fds):
    """A forked runner: the run's pipes on fixed descriptors, a session of its own, the slot's cgroup(s), then (where
    the plan has them) new namespaces, and the grader forked into them; waits for the grader and writes its exit
    status on :data:`STATUS_FD`, the host's sign that the run's grader has ended. Never returns."""
    status = request["enter_failed_exit"]
    try:
        spare = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in fds]  # above every target: no dup2 hits a source
        for fd in fds:
            os.close(fd)
        for target, fd in zip(RUN_FDS, spare, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.dup2(1, 2)
        os.setsid()  # the host kills the run's process group: this process, the grader and the program
        _check(_libc().prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))  # as after an exec; the grader clears it again
        for procs in request["cgroup_procs"]:  # before anything of the run allocates or forks
            with open(procs, "w") as file:
                file.write(str(os.getpid()))
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["workdir"])
        if request["namespaces"]:
            status = request["namespaces_failed_exit"]
            enter_namespaces(request["userns"])
        grader = os.fork()
    except BaseException as exc:
        _finish(status, f"sandbox runner could not start: {_message(exc)}\n")
    if grader == 0:
        try:
            os.close(STATUS_FD)
            if request["namespaces"]:
                _check(_libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0))  # the namespace dies with this process
                mount_proc()
        except BaseException as exc:
            os.write(1, f"sandbox grader could not start: {_message(exc)}\n".encode())
            os._exit(request["namespaces_failed_exit"])
        main()
    for fd in (0, 1, 2, VERDICT_FD):
        os.close(fd)
    _, wait_status = os.waitpid(grader, 0)
    _finish(os.waitstatus_to_exitcode(wait_status))


def _finish(status, message=""):
    if message:
        os.write(1, message.encode())
    os.write(STATUS_FD, str(status).encode())
    os._exit(0)


def enter_namespaces(userns):
    """New mount, UTS, IPC, network and PID namespaces (the next child is the PID namespace's init); through a user
    namespace where this uid is root for a caller without privileges (``unshare --map-root-user``)."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID | (CLONE_NEWUSER if userns else 0)
    _check(_libc().unshare(flags))
    if userns:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as file:
                file.write(text)
    _check(_libc().mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None))  # no mount leaks either way


def mount_proc():
    """A /proc of the new PID namespace (``unshare --mount-proc``): the program sees only its own run's processes."""
    libc = _libc()
    _check(libc.mount(b"none", b"/proc", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None))
    _check(libc.mount(b"proc", b"/proc", b"proc", ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC), None))


if __name__ == "__main__":
    zygote(int(sys.argv[2]))
