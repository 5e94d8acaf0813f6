"""The installed layout: every folder with an ``__init__.py`` is a package pyproject lists (editable installs hide
a missing one, the wheel does not), and a stage folder imported by its bare name refuses with the right name
(from the checkout, ``import sft`` would load a second copy of every registry)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib")

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"tests", "benchmarks", "docs", ".venv", "outputs", "build"}


def _packages_on_disk(package_dir: dict[str, str]) -> set[str]:
    """Dotted names the folders with an __init__.py install as, through pyproject's package-dir."""
    by_folder = {folder: name for name, folder in package_dir.items()}
    found = set()
    for init in ROOT.rglob("__init__.py"):
        parts = init.parent.relative_to(ROOT).parts
        if not parts or parts[0] in SKIP or parts[0].startswith(".") or parts[0].endswith(".egg-info"):
            continue
        assert parts[0] in by_folder, f"{init.parent} has an __init__.py but no package-dir entry in pyproject.toml"
        found.add(".".join([by_folder[parts[0]], *parts[1:]]))
    return found


def test_every_package_folder_is_in_the_wheel():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert _packages_on_disk(setuptools["package-dir"]) == set(setuptools["packages"])


@pytest.mark.parametrize("stage", ["sft", "rl", "rewards", "eval", "recipes", "models", "core"])
def test_a_bare_stage_import_refuses_and_names_the_right_one(stage):
    done = subprocess.run([sys.executable, "-c", f"import {stage}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and f"import prift.{stage}, not {stage}" in done.stderr


@pytest.mark.slow
def test_a_strict_editable_install_lets_pyright_resolve_prift_imports(tmp_path):
    """IDE users install with ``editable_mode=strict`` (README): a link tree pyright follows, where the default
    editable install is an import hook static tools never run. A copy of the checkout is installed into a fresh
    venv that borrows this one's dependencies, so the link tree is built under tmp_path."""
    pytest.importorskip("pyright", reason="pyright is in the dev extra")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    source = tmp_path / "checkout"
    for name in tracked.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "borrowed-deps.pth").write_text(ours + "\n")  # setuptools, torch, trl, ... from this venv
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "-e", str(source), "--config-settings", "editable_mode=strict"],
                   check=True, timeout=300, capture_output=True)
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "check.py").write_text(
        "from prift.core.datasets import DATASETS\nfrom prift.sft.priorities import get_rule\n"
        "from prift.eval.benchmarks import BENCHMARKS\nfrom prift.commands import sft\nfrom prift import main\n"
        "reveal_type(get_rule)\n")
    (probe / "pyrightconfig.json").write_text(json.dumps({"venvPath": str(tmp_path), "venv": "venv"}))
    done = subprocess.run([sys.executable, "-m", "pyright", "check.py"], cwd=probe, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and "0 errors" in done.stdout, done.stdout + done.stderr
    assert 'Type of "get_rule" is "(name: str) -> Rule"' in done.stdout
