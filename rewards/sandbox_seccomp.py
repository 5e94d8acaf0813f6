"""Seccomp-BPF filter for sandboxed programs (x86_64, aarch64; pure ctypes, standard library only).

``seccomp_install(protect_pids)`` confines the calling process and every process it later starts: the syscalls in
``SECCOMP_DENIED`` fail with EPERM, ``clone3`` with ENOSYS (so libc falls back to ``clone``, whose flags are
checked), ``clone`` with namespace flags with EPERM, signals (and ``pidfd_open``/``prlimit64``) aimed at pid -1, at
the own process group (``kill(0)``) or at a protected pid, its thread ids or its process group with EPERM, and
setting a SIGIO owner (``fcntl F_SETOWN/F_SETSIG/F_SETOWN_EX``, ``ioctl FIOSETOWN/SIOCSPGRP``) with EPERM; a
foreign syscall ABI (i386, x32, arm32) kills the process. Everything else is allowed.

This text is also glued in front of a sandbox script and run with ``python -I -S -c``: standard library only,
imports inside functions, and every top-level name starts with ``seccomp_``/``SECCOMP_``.
"""

SECCOMP_DENIED = (
    # other processes' memory and kernel objects
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "pidfd_send_signal",
    "keyctl", "add_key", "request_key",
    # mounts, namespaces, roots
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "open_tree", "open_tree_attr", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # kernel attack surface and administration
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "name_to_handle_at", "open_by_handle_at",
    "fanotify_init", "personality",
    # anonymous memory files and System V / POSIX IPC
    "memfd_create", "memfd_secret", "shmget", "shmat", "msgget", "semget", "mq_open",
    # file metadata
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "utime", "utimes", "utimensat", "futimesat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "setxattrat", "removexattrat", "file_setattr", "mknod", "mknodat",
    # leaving the run's session / process group; new sockets (socketpair stays allowed)
    "setsid", "setpgid", "socket",
)

# machine -> (AUDIT_ARCH_*, syscall numbers). x86_64: arch/x86/entry/syscalls/syscall_64.tbl; aarch64: the generic
# table, include/uapi/asm-generic/unistd.h. A name missing from a table does not exist on that architecture.
SECCOMP_TABLES = {
    "x86_64": (0xC000003E, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438,
        "pidfd_send_signal": 424, "keyctl": 250, "add_key": 248, "request_key": 249,
        "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
        "open_tree": 428, "open_tree_attr": 467, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442,
        "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163,
        "quotactl": 179, "quotactl_fd": 443, "name_to_handle_at": 303, "open_by_handle_at": 304,
        "fanotify_init": 300, "personality": 135,
        "memfd_create": 319, "memfd_secret": 447, "shmget": 29, "shmat": 30, "msgget": 68, "semget": 64,
        "mq_open": 240,
        "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452, "chown": 92, "fchown": 93, "lchown": 94,
        "fchownat": 260, "utime": 132, "utimes": 235, "utimensat": 280, "futimesat": 261,
        "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197, "lremovexattr": 198,
        "fremovexattr": 199, "setxattrat": 463, "removexattrat": 466, "file_setattr": 469, "mknod": 133,
        "mknodat": 259, "setsid": 112, "setpgid": 109, "socket": 41,
        # inspected, not denied outright
        "clone": 56, "clone3": 435, "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297, "pidfd_open": 434, "prlimit64": 302, "fcntl": 72, "ioctl": 16,
        "seccomp": 317,
    }),
    "aarch64": (0xC00000B7, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "pidfd_getfd": 438,
        "pidfd_send_signal": 424, "keyctl": 219, "add_key": 217, "request_key": 218,
        "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268,
        "open_tree": 428, "open_tree_attr": 467, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442,
        "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89,
        "quotactl": 60, "quotactl_fd": 443, "name_to_handle_at": 264, "open_by_handle_at": 265,
        "fanotify_init": 262, "personality": 92,
        "memfd_create": 279, "memfd_secret": 447, "shmget": 194, "shmat": 196, "msgget": 186, "semget": 190,
        "mq_open": 180,
        "fchmod": 52, "fchmodat": 53, "fchmodat2": 452, "fchown": 55, "fchownat": 54, "utimensat": 88,
        "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14, "lremovexattr": 15, "fremovexattr": 16,
        "setxattrat": 463, "removexattrat": 466, "file_setattr": 469, "mknodat": 33,
        "setsid": 157, "setpgid": 154, "socket": 198,
        "clone": 220, "clone3": 435, "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138,
        "rt_tgsigqueueinfo": 240, "pidfd_open": 434, "prlimit64": 261, "fcntl": 25, "ioctl": 29,
        "seccomp": 277,
    }),
}

# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
# | CLONE_NEWTIME
SECCOMP_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
# syscalls whose first argument is a target pid (tgid for tgkill/rt_tgsigqueueinfo); kill is handled apart
SECCOMP_PID_SYSCALLS = ("tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "prlimit64")
SECCOMP_FCNTL_OWNER_CMDS = (8, 10, 15)  # F_SETOWN, F_SETSIG, F_SETOWN_EX
SECCOMP_IOCTL_OWNER_CMDS = (0x8901, 0x8902)  # FIOSETOWN, SIOCSPGRP


def seccomp_protected_ids(protect_pids):
    """The sorted ids to guard: each pid in ``protect_pids`` plus the thread ids listed now in /proc/<pid>/task
    (``kill``/``tkill`` of any thread id reach the whole process with SIGKILL). Raises ValueError for a pid < 1."""
    import os

    ids = set()
    for pid in protect_pids:
        pid = int(pid)
        if pid < 1:
            raise ValueError(f"protect_pids: {pid} is not a process id")
        ids.add(pid)
        try:
            ids.update(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if tid.isdigit())
        except OSError:
            pass
    return sorted(ids)


def seccomp_build(machine, protected_ids=()):
    """The filter for ``machine`` ('x86_64' or 'aarch64') as packed ``struct sock_filter`` bytes, and its one-line
    description. ``protected_ids`` are used as given (see :func:`seccomp_protected_ids`). Raises OSError for an
    unsupported machine and ValueError when the program would exceed the kernel's 4096 instructions."""
    import struct

    if machine not in SECCOMP_TABLES:
        raise OSError(f"seccomp: unsupported architecture {machine!r}")
    audit_arch, table = SECCOMP_TABLES[machine]
    ld_abs, jeq, jge, jset, ja, ret = 0x20, 0x15, 0x35, 0x45, 0x05, 0x06
    kill_process, allow = 0x80000000, 0x7FFF0000
    eperm, enosys = 0x00050000 | 1, 0x00050000 | 38
    off_nr, off_arch, off_arg0, off_arg1 = 0, 4, 16, 24  # seccomp_data; low words of args (little-endian)
    prog = []  # [code, jt, jf, k]; k of a JA may be a label until resolved
    labels = {}

    def emit(code, k, jt=0, jf=0):
        prog.append([code, jt, jf, k])

    def deny_if_equal(value, action=eperm):
        emit(jeq, value & 0xFFFFFFFF, 0, 1)
        emit(ret, action)

    emit(ld_abs, off_arch)
    emit(jeq, audit_arch, 1, 0)
    emit(ret, kill_process)
    emit(ld_abs, off_nr)
    if machine == "x86_64":  # x32 ABI numbers carry bit 30
        emit(jge, 0x40000000, 0, 1)
        emit(ret, kill_process)
    denied = [name for name in SECCOMP_DENIED if name in table]
    for name in denied:
        deny_if_equal(table[name])
    deny_if_equal(table["clone3"], enosys)
    for name, label in (("clone", "clone"), ("kill", "kill"), *((n, "pid") for n in SECCOMP_PID_SYSCALLS),
                        ("fcntl", "fcntl"), ("ioctl", "ioctl")):
        emit(jeq, table[name], 0, 1)
        emit(ja, label)
    emit(ret, allow)

    labels["clone"] = len(prog)
    emit(ld_abs, off_arg0)
    emit(jset, SECCOMP_CLONE_NS_FLAGS, 0, 1)
    emit(ret, eperm)
    emit(ret, allow)

    labels["kill"] = len(prog)
    emit(ld_abs, off_arg0)
    deny_if_equal(0)  # own process group
    for pid in protected_ids:
        deny_if_equal(-pid)  # the protected process's group
    emit(ja, "pid_loaded")
    labels["pid"] = len(prog)
    emit(ld_abs, off_arg0)
    labels["pid_loaded"] = len(prog)
    deny_if_equal(-1)  # every process we may signal
    for pid in protected_ids:
        deny_if_equal(pid)
    emit(ret, allow)

    for name, offset, cmds in (("fcntl", off_arg1, SECCOMP_FCNTL_OWNER_CMDS),
                               ("ioctl", off_arg1, SECCOMP_IOCTL_OWNER_CMDS)):
        labels[name] = len(prog)
        emit(ld_abs, offset)
        for cmd in cmds:
            deny_if_equal(cmd)
        emit(ret, allow)

    if len(prog) > 4096:
        raise ValueError(f"seccomp: {len(prog)} instructions, more than the kernel's 4096 (too many protected ids)")
    packed = []
    for index, (code, jt, jf, k) in enumerate(prog):
        if code == ja:
            k = labels[k] - index - 1
        packed.append(struct.pack("<HBBI", code, jt, jf, k))
    description = (f"seccomp {machine}: {len(denied)} syscalls denied, clone3 ENOSYS, namespace clone flags, SIGIO "
                   f"owners and signals to -1/own group/{len(protected_ids)} protected ids denied")
    return b"".join(packed), description


def seccomp_install(protect_pids=()):
    """Install the filter in the calling process (all its threads when the kernel can synchronise them), after
    setting PR_SET_NO_NEW_PRIVS; it is inherited by every child and cannot be removed. Returns a one-line
    description, e.g. 'seccomp x86_64: 81 syscalls denied, ...'. Raises OSError when the architecture or ABI is
    unsupported or the kernel refuses."""
    import ctypes
    import os
    import struct

    machine = os.uname().machine
    if machine not in SECCOMP_TABLES or struct.calcsize("P") != 8:
        raise OSError(f"seccomp: unsupported architecture {machine!r} ({struct.calcsize('P') * 8}-bit process)")
    code, description = seccomp_build(machine, seccomp_protected_ids(protect_pids))
    libc = ctypes.CDLL(None, use_errno=True)
    ulong = ctypes.c_ulong
    if libc.prctl(38, ulong(1), ulong(0), ulong(0), ulong(0)) != 0:  # PR_SET_NO_NEW_PRIVS
        errno = ctypes.get_errno()
        raise OSError(errno, f"seccomp: PR_SET_NO_NEW_PRIVS: {os.strerror(errno)}")
    program = ctypes.create_string_buffer(code, len(code))
    fprog = ctypes.create_string_buffer(struct.pack("@HP", len(code) // 8, ctypes.addressof(program)))
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog); prctl(PR_SET_SECCOMP, ...) where absent
    result = libc.syscall(ctypes.c_long(SECCOMP_TABLES[machine][1]["seccomp"]), ulong(1), ulong(1), fprog)
    errno = ctypes.get_errno() if result != 0 else 0
    if result == -1 and errno == 38:
        result = libc.prctl(22, ulong(2), fprog, ulong(0), ulong(0))
        errno = ctypes.get_errno() if result != 0 else 0
    if result > 0:
        raise OSError(f"seccomp: thread {result} could not be synchronised to the filter")
    if result != 0:
        raise OSError(errno, f"seccomp: the kernel refused the filter: {os.strerror(errno)}")
    return description
