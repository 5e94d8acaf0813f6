"""The stage graph of a recipe, its fingerprints, and a resumable run that records every stage's outcome.

Stages, in run order (each writes into `<run>/<name>`):

    eval/base -> sft/<v> (all variants; one shared reference cache) -> eval/sft-<v> -> diagnostics
              -> eval/ready-<v> (with `readiness`) -> rl/<v> (and rl/base with rl_from_base; one budget)
              -> eval/rl-<init>

With `seeds: [s1, s2, ...]` every stage but eval/base runs once per seed, named `<stage>/seed<s>` (e.g.
`sft/nll/seed1`, `eval/rl-base/seed2`, `diagnostics/seed1`), each with its own fingerprint and folder; the
reference cache (keyed by reference and data, not seed) is shared. eval/base evaluates the untrained base model
once; it is the base init's pre-RL score under every seed. A single-seed recipe keeps the unsuffixed names.

Stages hand off only through files: a downstream stage's model is its upstream's output folder. A recipe's `launch`
runs SFT and RL stages in their own launched processes (`accelerate launch ...`, see :mod:`prift.recipes.launch`);
the rest run in this process.

**Fingerprint** of a stage = sha256 of its kind, its launcher (the files it names by their content), its resolved
config (the run folder replaced by `<run>`, so a moved run keeps its fingerprints), the sha256 of every local file
or checkpoint its config names outside the run, and the fingerprints of the stages it depends on. `<output>/stage.json` holds it with the stage's status. Planned
actions:

| action | when | what happens |
|---|---|---|
| skip | same fingerprint, every input skipped, done and its output marker present | nothing |
| resume | same fingerprint, every input skipped, not done (killed or failed) | the stage's own resume continues |
| rerun | output from a different fingerprint, or an input that runs again | the old output is deleted, then run |
| run | no output | run |

A stage that raises is recorded as failed (error and traceback tail in `pipeline.json` and its `stage.json`);
stages that need its output are blocked; independent stages still run.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import json
import shlex
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prift.core.provenance import settings_of, sha256_file, to_jsonable, write_json_atomic
from prift.recipes.launch import run_launched
from prift.recipes.recipe import Recipe

STATE_FILE = "stage.json"
SUMMARY_FILE = "pipeline.json"


def _run_sft(config):
    from prift.sft.train import run_sft

    return run_sft(config)


def _run_rl(config):
    from prift.rl.train import run_rl

    return run_rl(config)


def _run_eval(suite):
    """Each benchmark into its own folder (resumable on its own), then one merged results.json."""
    from prift.eval.runner import evaluate

    merged: dict = {}
    for bench, config in suite.configs.items():
        payload = json.loads(evaluate(config).read_text())
        result = payload["results"][bench]
        result["samples_file"] = f"{bench}/{result['samples_file']}"
        merged = merged or {**payload, "results": {}}
        merged["results"][bench] = result
    return write_json_atomic(Path(suite.output_dir) / "results.json", merged)


def _run_diagnostics(config):
    from prift.recipes.diagnostics import run_diagnostics

    return run_diagnostics(config)


# stage kind -> (runner taking the stage's config, file whose presence marks a finished output)
RUNNERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "sft": (_run_sft, "run.json"),
    "rl": (_run_rl, "run.json"),
    "eval": (_run_eval, "results.json"),
    "diagnostics": (_run_diagnostics, "diagnostics.json"),
}


@dataclass
class Stage:
    """One node of the graph: `config` is what its runner receives; `deps` name the stages it reads."""

    name: str
    kind: str
    config: Any
    output: Path
    deps: tuple[str, ...] = ()
    fields: dict | None = None  # the fields `config` was built from (what a launched stage reads)
    launch: list[str] | None = None  # launcher argv prefix (None: run in this process)
    fingerprint: str = ""
    action: str = ""  # skip | resume | rerun | run (decided by `plan`)
    status: str = "pending"  # skipped | done | failed | blocked (after `execute`)
    wall_s: float = 0.0
    error: str | None = None


def seeded(name: str, seed: int | None) -> str:
    """The stage name under `seed` (None: a single-seed recipe, the name unchanged)."""
    return name if seed is None else f"{name}/seed{seed}"


def split_seed(name: str) -> tuple[str, int | None]:
    """(stage name without its seed suffix, the seed or None): the inverse of `seeded`."""
    head, _, tail = name.rpartition("/seed")
    return (head, int(tail)) if head and tail.isdigit() else (name, None)


def build_stages(recipe: Recipe, run_dir: Path) -> list[Stage]:
    """The stage graph of `recipe` with outputs under `run_dir`, in run order (per kind, then per seed)."""
    from prift.recipes.diagnostics import DiagnosticsRun

    def out(name: str) -> Path:
        return run_dir / name

    seeds = [None] if len(recipe.seeds) == 1 else recipe.seeds
    stages = [Stage("eval/base", "eval", recipe.eval_config(recipe.base_model, out("eval/base")), out("eval/base"))]
    for seed in seeds:
        for v in recipe.variants:
            name = seeded(f"sft/{v.name}", seed)
            stages.append(Stage(name, "sft", recipe.sft_config(v, out(name), seed), out(name),
                                fields=recipe.sft_fields(v, out(name), seed), launch=recipe.launch.get("sft")))
    for seed in seeds:
        for v in recipe.variants:
            sft, name = seeded(f"sft/{v.name}", seed), seeded(f"eval/sft-{v.name}", seed)
            stages.append(Stage(name, "eval", recipe.eval_config(out(sft), out(name), seed), out(name), (sft,)))
    for seed in seeds if recipe.diagnostics is not None else ():
        sfts = {v.name: seeded(f"sft/{v.name}", seed) for v in recipe.variants}
        name = seeded("diagnostics", seed)
        config = DiagnosticsRun(recipe.diagnostics, recipe.reference_model or recipe.base_model,
                                {v: str(out(s)) for v, s in sfts.items()}, {v.name: v.method for v in recipe.variants},
                                str(out(name)), recipe.base_model)
        stages.append(Stage(name, "diagnostics", config, out(name), tuple(sfts.values())))
    for seed in seeds if recipe.readiness is not None else ():
        for v in recipe.variants:
            sft, name = seeded(f"sft/{v.name}", seed), seeded(f"eval/ready-{v.name}", seed)
            stages.append(Stage(name, "eval", recipe.readiness_config(out(sft), out(name), seed), out(name), (sft,)))
    for seed in seeds:
        for init in recipe.rl_inits():
            sft, name = seeded(f"sft/{init}", seed), seeded(f"rl/{init}", seed)
            start, deps = (recipe.base_model, ()) if init == "base" else (out(sft), (sft,))
            stages.append(Stage(name, "rl", recipe.rl_config(init, start, out(name), seed), out(name), deps,
                                fields=recipe.rl_fields(init, start, out(name), seed), launch=recipe.launch.get("rl")))
    for seed in seeds:
        for init in recipe.rl_inits():
            rl, name = seeded(f"rl/{init}", seed), seeded(f"eval/rl-{init}", seed)
            stages.append(Stage(name, "eval", recipe.eval_config(out(rl), out(name), seed), out(name), (rl,)))
    return stages


def _scrub(value: Any, run_dir: str) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, run_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, run_dir) for v in value]
    return value.replace(run_dir, "<run>") if isinstance(value, str) else value


def _strings(value: Any):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str) and value and len(value) < 4096:
        yield value


@functools.lru_cache(maxsize=256)
def _digest(path: str, stamp: tuple) -> str | None:
    """sha256 of a file, or of a checkpoint folder's weights and config; memoised per (path, size/mtime stamp)
    so a plan hashes a large base checkpoint once, not once per stage that reads it."""
    from prift.sft.reference_cache import checkpoint_fingerprint

    if Path(path).is_file():
        return sha256_file(path)
    return checkpoint_fingerprint(path) if (Path(path) / "config.json").is_file() else None


def _stamp(path: Path) -> tuple:
    files = [path] if path.is_file() else sorted(path.iterdir())
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file())


def _input_files(config: dict, run_dir: str) -> dict[str, str]:
    """sha256 of every local file / checkpoint folder a config names outside the run folder (also the PATH of a
    `NAME=PATH` benchmark item)."""
    found = {}
    for value in _strings(config):
        value = value.partition("=")[2] if "=" in value and not Path(value).exists() else value
        path = Path(value)
        if value.startswith(run_dir) or value in found or not (path.is_file() or (path / "config.json").is_file()):
            continue
        found[value] = _digest(value, _stamp(path))
    return found


def fingerprint(stage: Stage, deps: list[Stage], run_dir: Path) -> str:
    config = settings_of(stage.config) if dataclasses.is_dataclass(stage.config) else to_jsonable(stage.config)
    launch = [_digest(a, _stamp(Path(a))) if Path(a).is_file() else a for a in stage.launch or ()]  # file: content
    payload = {"kind": stage.kind, "launch": launch, "config": _scrub(config, str(run_dir)),
               "files": _input_files(config, str(run_dir)), "deps": [d.fingerprint for d in deps]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def read_state(stage: Stage) -> dict:
    path = stage.output / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def plan(stages: list[Stage], run_dir: Path) -> list[Stage]:
    """Fill in every stage's fingerprint and action (see the module docstring)."""
    by_name = {s.name: s for s in stages}
    for stage in stages:
        deps = [by_name[d] for d in stage.deps]
        stage.fingerprint = fingerprint(stage, deps, run_dir)
        state = read_state(stage)
        same = state.get("fingerprint") == stage.fingerprint and all(d.action == "skip" for d in deps)
        finished = state.get("status") == "done" and (stage.output / RUNNERS[stage.kind][1]).is_file()
        if same and finished:
            stage.action = "skip"
        elif same:
            stage.action = "resume"
        elif stage.output.exists():
            stage.action = "rerun"
        else:
            stage.action = "run"
    return stages


def describe_plan(stages: list[Stage]) -> str:
    """One line per stage: action, name, inputs, output."""
    width = max(len(s.name) for s in stages)
    lines = []
    for s in stages:
        inputs = ", ".join(s.deps) or getattr(s.config, "model_name_or_path", None)
        via = f"  via {shlex.join(s.launch)}" if s.launch else ""
        lines.append(f"  {s.action:<6}  {s.name:<{width}}  <- {inputs}  -> {s.output}{via}")
    return "\n".join(lines)


@dataclass
class Summary:
    """What `execute` did; written to `<run>/pipeline.json` after every stage."""

    recipe: str
    run_dir: Path
    notes: list[str] = field(default_factory=list)
    published: dict = field(default_factory=dict)  # the recipe's published numbers, shown beside measured ones
    stages: list[Stage] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def elapsed(self) -> float:
        return time.time() - self.started

    def write(self) -> Path:
        rows = [{"name": s.name, "kind": s.kind, "action": s.action, "status": s.status, "fingerprint": s.fingerprint,
                 "output": str(s.output), "deps": list(s.deps), "wall_s": round(s.wall_s, 1), "error": s.error}
                for s in self.stages]
        return write_json_atomic(self.run_dir / SUMMARY_FILE, {
            "recipe": self.recipe, "run_dir": str(self.run_dir), "notes": self.notes, "published": self.published,
            "stages": rows,
            "wall_s": round(self.elapsed(), 1),
            "failed": [s.name for s in self.stages if s.status in ("failed", "blocked")]})


def _write_state(stage: Stage, status: str, **extra) -> None:
    write_json_atomic(stage.output / STATE_FILE, {"name": stage.name, "fingerprint": stage.fingerprint,
                                                  "status": status, **extra})


def run_stage(stage: Stage) -> None:
    """Run one planned stage, recording its status; never raises for a failure of the stage itself."""
    if stage.action == "rerun":
        print(f"[prift] {stage.name}: settings or inputs changed, discarding {stage.output}", flush=True)
        shutil.rmtree(stage.output)
    print(f"[prift] === {stage.name} ({stage.action}) -> {stage.output}", flush=True)
    _write_state(stage, "running")
    started = time.time()
    try:
        if stage.launch:
            run_launched(stage.launch, stage.kind, stage.fields, stage.output)
        else:
            RUNNERS[stage.kind][0](stage.config)
    except Exception as err:  # noqa: BLE001 - a failed stage is recorded; independent stages still run
        stage.status, stage.error = "failed", f"{type(err).__name__}: {err}"
        tail = traceback.format_exc().splitlines()[-12:]
        print(f"[prift] {stage.name} FAILED: {stage.error}", flush=True)
        _write_state(stage, "failed", error=stage.error, traceback=tail)
    else:
        stage.status = "done"
        _write_state(stage, "done", wall_s=round(time.time() - started, 1))
    stage.wall_s = time.time() - started
    gc.collect()  # the stage's models and trainer go before the next stage loads its own


def execute(stages: list[Stage], summary: Summary) -> Summary:
    """Run the planned stages in order; a stage whose input failed is blocked."""
    by_name = {s.name: s for s in stages}
    summary.stages = stages
    for stage in stages:
        bad = [d for d in stage.deps if by_name[d].status in ("failed", "blocked")]
        if bad:
            stage.status, stage.error = "blocked", f"input stage(s) failed: {', '.join(bad)}"
        elif stage.action == "skip":
            stage.status, stage.wall_s = "skipped", read_state(stage).get("wall_s", 0.0)  # the time it took once
        else:
            run_stage(stage)
        summary.write()
    return summary
