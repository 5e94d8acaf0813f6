"""The attack catalogue run by an unprivileged uid (65534, as researchers run prift on shared clusters), with and
without unprivileged user namespaces: the verdict stays unforgeable and every run stays killable with whatever
layers are left; what a setting does not contain is exactly what its missing layer is for.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from sandbox_attack_matrix import run_in_subprocess

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="switching to uid 65534 needs root and setpriv"
)
WITHOUT_CGROUP = {"memory_in_forks"}  # one process per fork, each under memory_mb: only a cgroup bounds the sum
WITHOUT_MOUNT_NS = {"disk_fill_many_files"}  # no tmpfs work dir: many files under RLIMIT_FSIZE fill until the clock


@pytest.fixture(scope="module")
def matrix():
    names = ["nobody", "nobody-no-userns"]
    with ThreadPoolExecutor(len(names)) as pool:
        return dict(zip(names, pool.map(run_in_subprocess, names), strict=True))


def test_runs_as_the_unprivileged_uid(matrix):
    assert {result["uid"] for result in matrix.values()} == {65534}
    assert matrix["nobody"]["plan"]["namespaces"] is True  # through an unprivileged user namespace
    assert matrix["nobody-no-userns"]["plan"]["namespaces"] is False


@pytest.mark.parametrize("setting", ["nobody", "nobody-no-userns"])
def test_no_verdict_is_forged(matrix, setting):
    assert [name for name, r in matrix[setting]["attacks"].items() if r["status"] == "passed"
            and name not in WITHOUT_CGROUP] == []


@pytest.mark.parametrize("setting", ["nobody", "nobody-no-userns"])
def test_everything_else_is_contained(matrix, setting):
    result = matrix[setting]
    escaped = {name for name, r in result["attacks"].items() if not r["contained"]}
    expected = (WITHOUT_CGROUP if result["plan"]["cgroup"] is None else set()) | (
        set() if result["plan"]["namespaces"] else WITHOUT_MOUNT_NS)
    assert escaped == expected


@pytest.mark.parametrize("setting", ["nobody", "nobody-no-userns"])
def test_every_run_is_killed_and_the_next_one_passes(matrix, setting):
    result = matrix[setting]
    assert result["leftovers"] == []
    assert {name: r["honest_after"] for name, r in result["attacks"].items() if r["honest_after"] != "passed"} == {}


def test_missing_layers_are_named(matrix):
    reasons = " ".join(matrix["nobody-no-userns"]["plan"]["degraded_reasons"])
    assert "namespaces: disabled by the caller" in reasons
    if matrix["nobody"]["plan"]["cgroup"] is None:
        assert "cgroup:" in " ".join(matrix["nobody"]["plan"]["degraded_reasons"])
