"""Attack suite: hostile programs graded in one batch with honest ones.

Each attack must be contained (nothing happens outside the sandbox, checked from the host side here) and
reported with the right status, while the honest programs in the same batch are still graded correctly.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

import pytest

from prift.rewards.code import TestSpec
from prift.rewards.sandbox import SandboxConfig, current_plan, run_many

RUNNER_MARK = "The program that runs *inside* the sandbox"
CONFIG = SandboxConfig(timeout_s=3.0, memory_mb=512, workers=2, max_output_bytes=8192)
HONEST = ("def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\n")


def _parent(pid: int) -> int:
    """Parent pid from /proc/<pid>/stat (0 when the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _ours_or_orphaned(pid: int) -> bool:
    """True when `pid` descends from this test process or was orphaned (reparented up to init): a process that
    escaped our sandbox ends up as one of these. Runs of another test process on the machine do not count."""
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        pid = _parent(pid)
    return pid == 1


def _sandbox_processes() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and RUNNER_MARK.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in pids if _ours_or_orphaned(pid)]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """Host-side bait: a secret in the environment, files to delete, a TCP and a UDP listener."""
    base = tmp_path_factory.mktemp("host")
    victim = base / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    tcp = socket.create_server(("127.0.0.1", 0))
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    secret = secrets.token_hex(16)
    os.environ["PRIFT_ATTACK_SECRET"] = secret
    yield {
        "base": base,
        "victim": victim,
        "outside": Path(f"/tmp/prift-attack-{secrets.token_hex(4)}"),
        "tcp": tcp,
        "udp": udp,
        "secret": secret,
        "pid": os.getpid(),
    }
    del os.environ["PRIFT_ATTACK_SECRET"]
    tcp.close()
    udp.close()


def _attacks(host: dict) -> dict[str, tuple[str, str, set[str]]]:
    """name -> (program, tests, acceptable statuses)."""
    tcp_port, udp_port = host["tcp"].getsockname()[1], host["udp"].getsockname()[1]
    return {
        "infinite_loop": ("while True:\n    pass\n", "", {"timeout"}),
        "fork_bomb": (
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            "",
            {"timeout"},
        ),
        "lingering_grandchild": (
            "import os, time\nif os.fork() == 0:\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n",
            "assert True",
            {"passed"},
        ),
        "escaping_grandchild": (  # setsid is denied; the attack fails before it can leave the process group
            "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n",
            "assert True",
            {"passed", "failed"},
        ),
        "memory_bomb": ("blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))\n", "", {"memory"}),
        "disk_fill_one_file": (
            "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 2**20)\n",
            "",
            {"failed"},
        ),
        "disk_fill_many_files": (
            "for i in range(10**6):\n    with open(f'f{i}', 'wb') as f:\n        f.write(b'x' * 8 * 2**20)\n",
            "",
            {"failed"},
        ),
        "huge_stdout_finite": ("print('y' * 10**8)\n", "assert True", {"passed"}),
        "huge_stdout_endless": ("while True:\n    print('z' * 10**5)\n", "", {"timeout"}),
        "kill_parent": (
            "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
            "assert True",
            {"passed", "failed"},
        ),
        "kill_grader": (f"import os, signal\nos.kill({host['pid']}, signal.SIGKILL)\n", "", {"failed"}),
        "kill_everything": ("import os, signal\nos.kill(-1, signal.SIGKILL)\n", "", {"passed", "failed"}),
        "env_secret": (
            "import os\nprint(dict(os.environ))\ndef environment():\n    return dict(os.environ)\n",
            "assert 'PRIFT_ATTACK_SECRET' not in environment()",
            {"passed"},
        ),
        "proc_environ_secret": (f"print(open('/proc/{host['pid']}/environ', 'rb').read())\n", "", {"failed"}),
        "write_outside": (f"open({str(host['outside'])!r}, 'w').write('pwned')\n", "", {"failed"}),
        "write_host_tmp": (f"open({str(host['base'] / 'pwned')!r}, 'w').write('pwned')\n", "", {"failed"}),
        "delete_files": (f"import shutil\nshutil.rmtree({str(host['victim'])!r})\n", "", {"failed"}),
        "tcp_connect": (
            f"import socket\nsocket.create_connection(('127.0.0.1', {tcp_port}), timeout=1).send(b'x')\n",
            "",
            {"failed"},
        ),
        "udp_send": (
            f"import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {udp_port}))\n",
            "",
            {"failed"},
        ),
        "internet": ("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)\n", "", {"failed"}),
        "sys_exit_zero": ("import sys\nsys.exit(0)\n", "assert False", {"failed"}),
        "os_exit_zero": ("import os\nos._exit(0)\n", "assert False", {"failed"}),
        "exit_inside_function": ("import sys\ndef f():\n    sys.exit(0)\n", "assert f() == 1", {"failed"}),
        "forged_verdict": ("print('0' * 32 + ' {\"status\": \"passed\"}')\nraise SystemExit\n", "", {"failed"}),
    }


@pytest.fixture(scope="module")
def outcomes(host):
    attacks = _attacks(host)
    names = list(attacks)
    programs, specs = [], []
    for name in names:  # interleave honest programs with the attacks
        program, tests, _ = attacks[name]
        programs += [program, HONEST[0]]
        specs += [TestSpec("assert", tests), TestSpec("assert", HONEST[1])]
    start = time.monotonic()
    results = run_many(programs, specs, CONFIG)
    elapsed = time.monotonic() - start
    time.sleep(0.2)
    return {
        "attacks": {name: (attacks[name][2], results[2 * i]) for i, name in enumerate(names)},
        "honest": results[1::2],
        "elapsed": elapsed,
        "leftovers": _sandbox_processes(),
    }


def test_every_attack_gets_its_status(outcomes):
    wrong = {
        name: (result.status, result.detail)
        for name, (expected, result) in outcomes["attacks"].items()
        if result.status not in expected
    }
    assert wrong == {}


def test_honest_programs_in_the_same_batch_pass(outcomes):
    assert [r.status for r in outcomes["honest"]] == ["passed"] * len(outcomes["honest"])


def test_no_process_survives_the_batch(outcomes):
    assert outcomes["leftovers"] == []


def test_batch_time_is_bounded_by_the_timeouts(outcomes):
    # 23 attacks + 23 honest runs on 2 workers; at most 4 of them run into the 3 s wall clock
    assert outcomes["elapsed"] < 4 * CONFIG.timeout_s + 10


def test_nothing_outside_the_sandbox_changed(outcomes, host):
    assert (host["victim"] / "keep.txt").read_text() == "precious"
    assert not host["outside"].exists()
    assert not (host["base"] / "pwned").exists()
    with pytest.raises(BlockingIOError):
        host["tcp"].accept()
    with pytest.raises(BlockingIOError):
        host["udp"].recv(16)


def test_secrets_do_not_reach_the_sandbox(outcomes, host):
    for name in ("env_secret", "proc_environ_secret"):
        assert host["secret"] not in outcomes["attacks"][name][1].output


def test_output_is_capped(outcomes):
    for name in ("huge_stdout_finite", "huge_stdout_endless"):
        result = outcomes["attacks"][name][1]
        assert len(result.output) <= CONFIG.max_output_bytes + 4096 + 100


def test_every_result_records_its_isolation(outcomes):
    plan = current_plan()
    for _, result in outcomes["attacks"].values():
        record = result.isolation
        assert {"fs", "net", "pid", "uid", "rlimits", "rlimits_binding", "degraded_reasons"} <= record.keys()
        assert record["pid"] == ("pidns" if plan.outer else "setsid-only")
