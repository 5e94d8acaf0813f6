"""Which attacks each sandbox setting contains: the catalogue of ``sandbox_attacks.py`` under a list of settings.

    .venv/bin/python tests/sandbox_attack_matrix.py            # every setting, a markdown table (root: ~4 min)
    .venv/bin/python tests/sandbox_attack_matrix.py --setting nobody --json   # one setting, JSON on stdout

A setting is who runs prift (root, or the unprivileged uid 65534 through ``setpriv``, as on a shared cluster) and
which layers are disabled (to stand for machines that lack them: no cgroup delegation, no unprivileged user
namespaces, kernels without Landlock or seccomp). A cell is ``ok`` when the attack was contained (right status,
nothing changed on the host), else the status it got.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

SETTINGS = {  # name -> (run as uid 65534, layers disabled)
    "root": (False, ()),
    "root-no-cgroup": (False, ("cgroup",)),
    "nobody": (True, ()),
    "nobody-no-userns": (True, ("namespaces",)),
    "nobody-no-userns-no-seccomp": (True, ("namespaces", "seccomp")),
    "nobody-no-userns-no-landlock": (True, ("namespaces", "landlock")),
}


def run_setting(disable: tuple[str, ...]) -> dict:
    """The catalogue in this process under ``disable``; attack -> outcome, plus the plan and leftover processes."""
    import dataclasses
    import time
    import warnings

    from sandbox_attacks import CONFIG, close_host, make_host, run_catalogue, sandbox_processes

    from prift.rewards.sandbox import current_plan

    config = dataclasses.replace(CONFIG, disable_layers=disable)
    base = Path(tempfile.mkdtemp(prefix="prift-matrix-"))
    host = make_host(base)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the degradation is the point here
            outcome = run_catalogue(host, config)
        time.sleep(0.2)
        leftovers = sandbox_processes()
    finally:
        close_host(host)
        shutil.rmtree(base, ignore_errors=True)
    plan = current_plan(tuple(sorted(disable)))
    for record in outcome.values():
        record.pop("output")
        record.pop("isolation")
    return {"uid": os.getuid(), "plan": {"program_layers": list(plan.program_layers), "namespaces": plan.namespaces,
                                         "cgroup": plan.cgroups.version if plan.cgroups else None,
                                         "degraded_reasons": list(plan.degraded_reasons)},
            "attacks": outcome, "leftovers": leftovers}


def stage_for_nobody(directory: Path) -> Path:
    """A world-readable copy of what a uid-65534 run imports (prift.rewards, the catalogue, this script): a checkout
    usually sits where that uid cannot read it (a 0700 clone or home), and prift.rewards needs only the stdlib."""
    here = Path(__file__).resolve().parent
    package = directory / "prift"
    shutil.copytree(here.parent / "rewards", package / "rewards", ignore=shutil.ignore_patterns("__pycache__"))
    (package / "__init__.py").write_text("")
    for name in ("sandbox_attacks.py", "sandbox_attack_matrix.py"):
        shutil.copy(here / name, directory / name)
    for path in [directory, *directory.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


def setting_command(name: str, staged: Path | None = None) -> list[str]:
    as_nobody, _ = SETTINGS[name]
    if not as_nobody:
        return [sys.executable, str(Path(__file__).resolve()), "--setting", name, "--json"]
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else os.path.realpath(sys.executable)
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--", python,
            str(staged / "sandbox_attack_matrix.py"), "--setting", name, "--json"]


def run_in_subprocess(name: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="prift-matrix-stage-") as tmp:
        staged = stage_for_nobody(Path(tmp)) if SETTINGS[name][0] else None
        env = _env() | ({"PYTHONPATH": str(staged)} if staged else {})
        done = subprocess.run(setting_command(name, staged), capture_output=True, text=True, cwd="/", env=env,
                              timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"setting {name} failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env() -> dict:
    keep = ("PATH", "LANG", "PRIFT_DATA_DIR", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if k in keep} | {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}


def table(results: dict[str, dict]) -> str:
    names = list(next(iter(results.values()))["attacks"])
    lines = ["| attack | class | " + " | ".join(results) + " |", "|---|---|" + "---|" * len(results)]
    for attack in names:
        first = next(iter(results.values()))["attacks"][attack]
        cells = []
        for result in results.values():
            outcome = result["attacks"][attack]
            cells.append("ok" if outcome["contained"] else f"**{outcome['status']}**")
        lines.append(f"| {attack} | {first['group']} | " + " | ".join(cells) + " |")
    lines.append("| processes left after the batch | | " + " | ".join(str(len(r["leftovers"])) for r in results.values())
                 + " |")
    lines.append("| program layers | | " + " | ".join("+".join(r["plan"]["program_layers"]) + (
        f" +cgroup {r['plan']['cgroup']}" if r["plan"]["cgroup"] else "") + (" +ns" if r["plan"]["namespaces"] else "")
        for r in results.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=list(SETTINGS), help="run one setting in this process")
    parser.add_argument("--json", action="store_true", help="print the one setting's outcome as JSON")
    args = parser.parse_args()
    if args.setting:
        result = run_setting(SETTINGS[args.setting][1])
        print(json.dumps(result) if args.json else table({args.setting: result}))
        return
    if os.geteuid() != 0:
        raise SystemExit("the full matrix switches to uid 65534 and needs root; run one --setting instead")
    results = {}
    for name in SETTINGS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = run_in_subprocess(name)
    print(table(results))


if __name__ == "__main__":
    main()
