"""Attack suite (``sandbox_attacks.py``): every hostile program contained with the right status, as this machine runs
it (every layer), each followed by honest programs (one in the same slot) that still pass; plus the host's strict
verdict parsing, machine-wide slots under concurrent calls, and the isolation record written by the host.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sandbox_attacks import CONFIG, HONEST, attacks, close_host, make_host, run_catalogue, sandbox_processes

from prift.rewards.code import TestSpec
from prift.rewards.sandbox import SandboxConfig, _parse_verdict, _slot_dir, current_plan, run_many
from prift.rewards.sandbox_zygote import Runner, idle_pids


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    bait = make_host(tmp_path_factory.mktemp("host"))
    yield bait
    close_host(bait)


@pytest.fixture(scope="module")
def outcomes(host):
    start = time.monotonic()
    results = run_catalogue(host)
    elapsed = time.monotonic() - start
    time.sleep(0.2)
    return {"attacks": results, "elapsed": elapsed, "leftovers": sandbox_processes()}


def test_every_attack_is_contained(outcomes):
    escaped = {name: (r["status"], r["detail"]) for name, r in outcomes["attacks"].items() if not r["contained"]}
    assert escaped == {}


def test_no_attack_is_graded_passed(outcomes):
    # every attack's tests are ones the program cannot pass honestly: `passed` would be a forged verdict
    assert [name for name, r in outcomes["attacks"].items() if r["status"] == "passed"] == []


def test_an_honest_program_passes_right_after_each_attack(outcomes):
    assert {name: r["honest_after"] for name, r in outcomes["attacks"].items() if r["honest_after"] != "passed"} == {}


def test_no_process_survives_the_batch(outcomes):
    assert outcomes["leftovers"] == []


def test_batch_time_is_bounded_by_the_timeouts(outcomes):
    timeouts = sum(r["status"] == "timeout" for r in outcomes["attacks"].values())
    runs = 3 * len(outcomes["attacks"])
    assert outcomes["elapsed"] < timeouts * (CONFIG.timeout_s + 1) + runs * 0.5 + 10


def test_secrets_do_not_reach_the_sandbox(outcomes, host):
    for name in ("env_secret", "proc_environ_secret"):
        assert host["secret"] not in outcomes["attacks"][name]["output"]


def test_output_is_capped(outcomes):
    for name in ("huge_stdout_finite", "huge_stdout_endless"):
        assert len(outcomes["attacks"][name]["output"]) <= CONFIG.max_output_bytes + 4096 + 100


def test_memory_is_bounded_per_run_not_per_process(outcomes):
    if current_plan().cgroups is None:
        pytest.skip("no writable cgroup here: memory is bounded per process only (recorded in degraded_reasons)")
    assert outcomes["attacks"]["memory_in_forks"]["status"] == "memory"


def test_the_isolation_record_is_the_hosts(outcomes):
    """The same record for every run whatever the program did (uid aside: it names the slot)."""
    records = [{k: v for k, v in r["isolation"].items() if k != "uid"} for r in outcomes["attacks"].values()]
    assert all(record == records[0] for record in records)
    plan = current_plan()
    assert records[0]["pid"] == ("pidns" if plan.namespaces else "setsid-only")
    assert set(records[0]["program_layers"]) == set(plan.program_layers)
    if plan.uid_base is not None:
        assert {r["isolation"]["uid"] for r in outcomes["attacks"].values()} <= set(range(plan.uid_base, 65535))


@pytest.mark.parametrize(
    "verdict",
    [
        [1, 2],
        {"status": "passed", "passed": 5, "total": 3},  # out of range
        {"status": "passed", "passed": 0, "total": 0},  # passed with no case
        {"status": "passed", "passed": True, "total": 1},  # bool is not a count
        {"status": "passed", "passed": 1.0, "total": 1},
        {"status": "great", "passed": 1, "total": 1},  # unknown status
        {"status": "failed", "detail": 7},
        {"status": "failed", "passed": -1, "total": 2},
    ],
)
def test_a_malformed_verdict_is_refused(verdict):
    assert _parse_verdict(repr(verdict).encode()) is None


@pytest.mark.parametrize("raw", [b"", b"not a literal", b"[" * 100000, b"{'status': 'passed'} " * 5000,
                                 b"__import__('os').system('true')"])
def test_bytes_that_are_no_verdict_are_refused(raw):
    assert _parse_verdict(raw) is None


def test_a_well_formed_verdict_is_read():
    verdict = _parse_verdict(repr({"status": "failed", "detail": "case 1", "passed": 1, "total": 3}).encode())
    assert (verdict["status"], verdict["passed"], verdict["total"]) == ("failed", 1, 3)


def test_concurrent_calls_never_share_a_slot():
    """Two run_many calls from two threads, two workers each: four programs alive at once, four uids."""
    plan = current_plan()
    if plan.uid_base is None:
        pytest.skip("not root: runs are told apart by namespaces, not uids")
    program = "import os, time\ndef f():\n    time.sleep(1.5)\n    return os.getuid()\n"
    config = SandboxConfig(timeout_s=20, workers=2)
    outputs: list = []

    def call():
        outputs.extend(run_many([program + "print('uid', f())\n"] * 2, [TestSpec("assert", "assert True")] * 2,
                                config))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    uids = [int(r.output.split("uid")[1].split()[0]) for r in outputs]
    assert [r.status for r in outputs] == ["passed"] * 4
    assert len(set(uids)) == 4
    assert {r.isolation["uid"] for r in outputs} == set(uids)


def test_a_runner_launched_ahead_that_gets_no_program_is_ended_and_its_slot_released():
    """Each worker launches its next runner while the current run is graded; with two workers and three programs one
    of those runners gets no program. It must be killed and its slot lock released when the batch returns."""
    results = run_many([HONEST[0]] * 3, [HONEST[1]] * 3, SandboxConfig(timeout_s=10, workers=2))
    assert [r.status for r in results] == ["passed"] * 3
    assert sandbox_processes() == []
    slots = str(_slot_dir())
    held = [os.readlink(fd.path) for fd in os.scandir("/proc/self/fd") if os.path.islink(fd.path)]
    assert [path for path in held if path.startswith(slots)] == []


def test_a_zygote_that_died_is_replaced():
    """The zygotes kept between calls are not trusted to be alive: every one killed meanwhile (some not yet reaped
    when the next call starts) is replaced, not used."""
    config = SandboxConfig(timeout_s=10, workers=3)
    assert [r.status for r in run_many([HONEST[0]] * 3, [HONEST[1]] * 3, config)] == ["passed"] * 3
    config = SandboxConfig(timeout_s=10, workers=1)
    idle = idle_pids()
    assert idle
    for pid in idle:
        os.kill(pid, signal.SIGKILL)
    after = run_many([HONEST[0]], [HONEST[1]], config)[0]
    assert (after.status, after.detail) == ("passed", "")
    assert set(idle_pids()) - set(idle)  # the replacement, kept in turn


def test_a_fork_bomb_does_not_spend_a_concurrent_run_s_process_budget():
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    honest = HONEST[0] + "import os, time\ntime.sleep(1.0)\nfor _ in range(8):\n    if os.fork() == 0:\n" \
                         "        os._exit(0)\n    os.wait()\n"
    results = run_many([bomb, honest], [TestSpec("assert", ""), HONEST[1]], SandboxConfig(timeout_s=4, workers=2))
    assert [r.status for r in results] == ["timeout", "passed"]


def test_catalogue_names_every_class_of_issue_13(host):
    groups = {attack.group for attack in attacks(host).values()}
    assert {"verdict", "memory", "kill", "keyring", "network", "metadata", "files", "secrets"} <= groups


def test_waiting_for_a_runner_s_end_is_bounded_when_another_process_holds_its_status_pipe():
    status_r, status_w = os.pipe()  # the write end stays open here, as in an escaped child of the run
    runner = Runner(os.getpid(), None, None, status_r)
    try:
        start = time.monotonic()
        assert runner.wait(timeout=0.2) is None
        assert time.monotonic() - start < 2.0
        os.write(status_w, b"3")
        assert runner.wait(timeout=0.2) == 3
    finally:
        runner.close()
        os.close(status_w)
