"""The installed layout: every folder with an ``__init__.py`` is a package pyproject lists (editable installs hide
a missing one, the wheel does not), and a stage folder imported by its bare name refuses with the right name
(from the checkout, ``import sft`` would load a second copy of every registry)."""

from __future__ import annotations

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
