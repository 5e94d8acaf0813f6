"""A recipe: one YAML file describing a whole SFT-init comparison, validated before any work starts.

    name: demo                      # run name; default output folder outputs/<name>
    base_model: smollm2-135m-instruct
    reference_model: null           # frozen reference of the PriFT variants (default: base_model)
    seed: 42                        # every stage's seed (SFT, RL sampling and prompt order, eval sampling)
    seeds: [1, 2]                   # instead of `seed`: every SFT variant, RL stage and their evals once per seed
    sft: {dataset: ..., max_steps: 8, ...}          # PriftSFTConfig fields shared by every variant
    variants: [nll, dft, {name: mass04, method: prift_mass, rule_params: {threshold: 0.4}}]
    rl: {dataset: ..., budget: 8, budget_unit: prompts, ...}   # PriftRLConfig fields; null = no RL stage
    rl_from_base: true              # also RL the base model under the same budget (the control arm)
    eval: {benchmarks: arith=../data/arith/test.jsonl,gsm8k, n: 1, max_samples: 32, ...}   # EvalConfig fields
    eval_overrides: {gsm8k: {max_samples: 4, max_tokens: 160}}   # EvalConfig fields for one benchmark only
    diagnostics: {dataset: ..., samples: 16}       # held-out rows for the PriFT paper's figures; null = none
    readiness: {k: 8, benchmarks: held=../data/x.jsonl, max_samples: 16, temperature: 1.0}   # k samples per held-out
                                    # problem of every SFT init: the RL-readiness predictors; null = none
    unavailable_benchmarks: [aime24]  # benchmarks the paper used that prift cannot evaluate yet (reported)
    launch: {sft: accelerate launch --config_file ../accelerate/multi_gpu.yaml}   # see prift.recipes.launch
    published: {source: "paper Table 3", scores: {prift_mass: {avg@16: 40.67, pass@16: 69.60}}}   # shown in the report

A variant is a method preset name or a mapping with `name`, `method` (a preset of `prift.sft.methods`), any
PriftSFTConfig field (overriding `sft`), and `rl` (RL fields for RL from this init only; the budget check rejects
any that change the budget). Fields the pipeline sets itself (models, output folders, seeds) are rejected in the
sections. Relative paths that start with `./` or `../` are resolved against the recipe's folder, including the PATH
of a `NAME=PATH` item of `eval.benchmarks` (a local-file benchmark; `eval_overrides` and the report call it NAME).

Errors are `ConfigError`s naming the file, the key and the closest valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from prift.core.config import ConfigError, read_yaml_mapping, resolve_aliases
from prift.eval.benchmarks import benchmark_names
from prift.eval.config import EvalConfig
from prift.recipes.launch import parse_launch
from prift.rl.config import PriftRLConfig
from prift.sft.config import PriftSFTConfig
from prift.sft.methods import METHODS

# section -> (config class, fields the pipeline sets itself)
SECTIONS = {
    "sft": (PriftSFTConfig, ("model_name_or_path", "output_dir", "method", "reference_model", "seed")),
    "rl": (PriftRLConfig, ("model_name_or_path", "output_dir", "seed")),
    "eval": (EvalConfig, ("model_name_or_path", "output_dir", "seed")),
}
PATH_KEYS = ("dataset", "data_dir", "base_model", "reference_model", "reference_cache_dir", "perplexity")
# RL fields that define how much an init may spend: every init must get the same values
BUDGET_FIELDS = ("budget", "budget_unit", "max_steps", "num_generations", "generation_batch_size",
                 "per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation",
                 "num_iterations", "max_completion_length", "dynamic_sampling", "max_refill_rounds", "dataset",
                 "dataset_split", "max_samples", "seed", "shuffle_dataset")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-5` as a string; recipes mean a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"), list("-+0123456789."))


@dataclass
class Diagnostics:
    """Held-out rows on which the PriFT paper's diagnostics are computed (Fig 1a, 3a, 5)."""

    dataset: str  # SFT-style data: prompt/completion or messages file, or an SFT adapter name (gsm8k, math)
    dataset_split: str = "test"
    dataset_format: str = "auto"
    samples: int = 16  # rows scored per checkpoint
    example: int = 0  # row of the token heatmap (Fig 5)
    max_length: int = 512


@dataclass
class EvalSuite:
    """One checkpoint's evaluation: per benchmark, the shared eval settings plus that benchmark's overrides; each
    runs into `<output_dir>/<benchmark>` and the results are merged into `<output_dir>/results.json`."""

    configs: dict[str, EvalConfig]
    output_dir: str

    @property
    def model_name_or_path(self) -> str:
        return next(iter(self.configs.values())).model_name_or_path


@dataclass
class Variant:
    """One SFT initialisation: a method preset plus SFT field overrides and per-init RL overrides."""

    name: str
    method: str
    sft: dict = field(default_factory=dict)
    rl: dict = field(default_factory=dict)


@dataclass
class Recipe:
    """A validated recipe; `*_config` build each stage's config from it."""

    path: Path  # the YAML file (relative paths in it are resolved against its folder)
    name: str  # run name; the default run folder is outputs/<name>
    base_model: str  # hub id, local checkpoint or the embedded alias: SFT start, eval/base, rl/base
    variants: list[Variant]  # the SFT initialisations compared
    eval: dict  # EvalConfig fields shared by every benchmark and checkpoint
    sft: dict = field(default_factory=dict)  # PriftSFTConfig fields shared by every variant
    rl: dict | None = None  # PriftRLConfig fields shared by every init (None: no RL stage)
    reference_model: str | None = None  # frozen reference of reference-fed methods and diagnostics (None: base)
    seed: int = 42  # the seed of eval/base (and, with one seed, of every stage): the first of `seeds`
    seeds: list[int] = field(default_factory=list)  # SFT, RL and their evals run once per seed (default: [seed])
    readiness: dict | None = None  # {k, EvalConfig fields}: the readiness eval of every SFT init (None: none)
    output_dir: str | None = None  # run folder (`--output_dir` wins)
    rl_from_base: bool = False  # add the control arm: RL from the base model under the same budget
    eval_overrides: dict = field(default_factory=dict)  # benchmark -> EvalConfig fields for that benchmark only
    diagnostics: Diagnostics | None = None  # held-out rows of the PriFT diagnostics (None: no diagnostics stage)
    unavailable_benchmarks: list[str] = field(default_factory=list)  # paper benchmarks prift cannot run (reported)
    notes: str = ""  # a line printed above the plan and the report
    launch: dict[str, list[str]] = field(default_factory=dict)  # stage kind -> launcher argv prefix (multi-process)
    published: dict = field(default_factory=dict)  # {source, scores: {variant: {metric: %}}}: the paper's numbers

    def sft_fields(self, variant: Variant, output_dir: str | Path, seed: int | None = None) -> dict:
        """The PriftSFTConfig fields of one variant's SFT stage under `seed` (default: the recipe's `seed`)."""
        return {**self.sft, **variant.sft, "model_name_or_path": self.base_model, "method": variant.method,
                "reference_model": self.reference_model, "output_dir": str(output_dir),
                "seed": self.seed if seed is None else seed}

    def sft_config(self, variant: Variant, output_dir: str | Path, seed: int | None = None) -> PriftSFTConfig:
        return _build(PriftSFTConfig, self.sft_fields(variant, output_dir, seed), f"{self.path}: variant {variant.name!r}")

    def rl_inits(self) -> list[str]:
        """Names of the inits RL starts from: every variant, then `base` for the control arm."""
        if self.rl is None:
            return []
        return [v.name for v in self.variants] + (["base"] if self.rl_from_base else [])

    def rl_fields(self, init: str, model: str | Path, output_dir: str | Path, seed: int | None = None) -> dict:
        """The PriftRLConfig fields of RL from `init` under `seed` (what a launched stage reads from YAML)."""
        overrides = next((v.rl for v in self.variants if v.name == init), {})
        return {**(self.rl or {}), **overrides, "model_name_or_path": str(model), "output_dir": str(output_dir),
                "seed": self.seed if seed is None else seed}

    def rl_config(self, init: str, model: str | Path, output_dir: str | Path, seed: int | None = None) -> PriftRLConfig:
        return _build(PriftRLConfig, self.rl_fields(init, model, output_dir, seed), f"{self.path}: rl (init {init!r})")

    def eval_config(self, model: str | Path, output_dir: str | Path, seed: int | None = None) -> EvalSuite:
        return self._suite(self.eval, model, output_dir, seed, "eval", self.eval_overrides)

    def readiness_config(self, model: str | Path, output_dir: str | Path, seed: int | None = None) -> EvalSuite:
        """The readiness eval: `eval`'s fields, then `readiness`'s, with n = readiness.k samples per problem."""
        fields = {**self.eval, **{k: v for k, v in self.readiness.items() if k != "k"}, "n": self.readiness["k"]}
        return self._suite(fields, model, output_dir, seed, "readiness", {})

    def _suite(self, shared: dict, model, output_dir, seed: int | None, key: str, overrides: dict) -> EvalSuite:
        items = _build(EvalConfig, shared, f"{self.path}: {key}").benchmark_items()
        configs = {}
        for bench, item in items.items():
            fields = {**shared, **overrides.get(bench, {}), "benchmarks": item,
                      "model_name_or_path": str(model),
                      "output_dir": str(Path(output_dir) / bench), "seed": self.seed if seed is None else seed}
            configs[bench] = _build(EvalConfig, fields, f"{self.path}: {key} ({bench})")
        return EvalSuite(configs, str(output_dir))

    def report_notes(self) -> list[str]:
        """Lines the plan and the report print above everything else."""
        notes = [self.notes.strip()] if self.notes.strip() else []
        if self.unavailable_benchmarks:
            notes.append(f"NOT EVALUATED: {', '.join(self.unavailable_benchmarks)} (used by the paper, not in prift's "
                         "eval registry yet)")
        return notes


def describe_recipe(recipe: Recipe) -> str:
    """The recipe in a few lines: models, variants, the shared RL budget, evaluation."""
    lines = [f"[prift] recipe {recipe.name} ({recipe.path})",
             f"  base model: {recipe.base_model}; reference: {recipe.reference_model or 'the base model'}; "
             f"seed{'s ' + ', '.join(map(str, recipe.seeds)) if len(recipe.seeds) > 1 else ' ' + str(recipe.seed)}",
             f"  SFT variants: {', '.join(f'{v.name} ({v.method})' for v in recipe.variants)}"]
    if recipe.rl is not None:
        rl = recipe.rl_config(recipe.rl_inits()[0], "init", "out")
        lines.append(f"  RL: one budget of {rl.budget} {rl.budget_unit} for each of {', '.join(recipe.rl_inits())}")
    for bench, ev in recipe.eval_config(recipe.base_model, "out").configs.items():
        lines.append(f"  eval {bench}: n={ev.n}, T={ev.temperature}, max_tokens={ev.max_tokens}, max_samples={ev.max_samples}, "
                     f"template={ev.template_for(bench)}")
    return "\n".join(lines + [f"  NOTE: {n}" for n in recipe.report_notes()])


def _build(config_type: type, fields: dict, where: str):
    try:
        return config_type(**fields)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from err


def _unknown(key: str, valid, where: str) -> ConfigError:
    close = difflib.get_close_matches(str(key), list(valid), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else f" (valid: {', '.join(sorted(valid))})"
    return ConfigError(f"{where}: unknown key {key!r}{hint}")


def _check_keys(mapping: dict, valid, owned, where: str) -> None:
    for key in mapping:
        if key in owned:
            raise ConfigError(f"{where}: key {key!r} is set by the pipeline (use the recipe's top-level "
                              "base_model / reference_model / seed / output_dir)")
        if key not in valid:
            raise _unknown(key, valid, where)


def _section(raw: dict, name: str, path: Path) -> dict:
    mapping = raw.get(name) or {}
    if not isinstance(mapping, dict):
        raise ConfigError(f"{path}: {name}: expected a mapping of {SECTIONS[name][0].__name__} fields")
    config_type, owned = SECTIONS[name]
    mapping = resolve_aliases(config_type, mapping, f"{path}: {name}: ")
    _check_keys(mapping, {f.name for f in dataclasses.fields(config_type)}, owned, f"{path}: {name}")
    mapping = _resolve_paths(mapping, path)
    if name == "eval" and isinstance(mapping.get("benchmarks"), str):
        mapping["benchmarks"] = ",".join(_resolve_benchmark(item.strip(), path)
                                         for item in mapping["benchmarks"].split(","))
    return mapping


def _relative(value: str, path: Path) -> str:
    """`./x` and `../x` relative to the recipe's folder; anything else unchanged."""
    return str((path.parent / value).resolve()) if value.startswith(("./", "../")) else value


def _resolve_paths(mapping: dict, path: Path) -> dict:
    """Values of path keys, resolved by `_relative`."""
    return {k: _relative(v, path) if k in PATH_KEYS and isinstance(v, str) else v for k, v in mapping.items()}


def _resolve_benchmark(item: str, path: Path) -> str:
    """The PATH of a `NAME=PATH` benchmark item, resolved by `_relative`; a built-in name unchanged."""
    name, sep, file = item.partition("=")
    return f"{name.strip()}={_relative(file.strip(), path)}" if sep else item


def _variant(entry, path: Path) -> Variant:
    entry = {"method": entry} if isinstance(entry, str) else dict(entry or {})
    where = f"{path}: variants"
    if "method" not in entry:
        raise ConfigError(f"{where}: every variant needs a `method` (one of {', '.join(METHODS)})")
    method = entry.pop("method")
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), list(METHODS), n=3)
        raise ConfigError(f"{where}: unknown method preset {method!r}"
                          + (f" (did you mean {', '.join(close)}?)" if close else f"; valid: {', '.join(METHODS)}"))
    name = str(entry.pop("name", method))
    rl = entry.pop("rl", None) or {}
    where = f"{path}: variant {name!r}"
    entry, rl = resolve_aliases(PriftSFTConfig, entry, f"{where}: "), resolve_aliases(PriftRLConfig, rl, f"{where}: rl: ")
    _check_keys(entry, {f.name for f in dataclasses.fields(PriftSFTConfig)}, SECTIONS["sft"][1], where)
    _check_keys(rl, {f.name for f in dataclasses.fields(PriftRLConfig)}, SECTIONS["rl"][1], f"{where}: rl")
    return Variant(name, method, _resolve_paths(entry, path), _resolve_paths(rl, path))


def check_model(name: str, where: str) -> None:
    """A local model must exist; the embedded alias needs its package; hub ids are checked when loaded."""
    from prift.models.embedded import EMBEDDED_ALIASES, gguf_path
    from prift.models.loading import resolve_model_path

    try:
        gguf_path() if name in EMBEDDED_ALIASES else resolve_model_path(name)
    except FileNotFoundError as err:
        raise ConfigError(f"{where}: {err}") from err


def check_budgets(recipe: Recipe) -> None:
    """Every RL init must get the same budget: fail loudly (naming the inits and fields) before any work."""
    if recipe.rl is None:
        return
    configs = {init: recipe.rl_config(init, "init", "out") for init in recipe.rl_inits()}
    if any(c.budget is None for c in configs.values()):
        raise ConfigError(f"{recipe.path}: rl.budget must be set: every init gets the same, recorded RL budget")
    first, *others = configs
    for init in others:
        diff = [(k, getattr(configs[first], k), getattr(configs[init], k)) for k in BUDGET_FIELDS
                if getattr(configs[first], k, None) != getattr(configs[init], k, None)]
        if diff:
            detail = "; ".join(f"{k}: {a!r} vs {b!r}" for k, a, b in diff)
            raise ConfigError(f"{recipe.path}: RL inits {first!r} and {init!r} would get different budgets "
                              f"({detail}); a fair SFT-init comparison needs one budget for all")


def load_recipe(path: str | Path, output_dir: str | None = None, base_model: str | None = None) -> Recipe:
    """Parse and validate a recipe; every stage config is built once so a bad value fails here. ``base_model``
    replaces the recipe's (the same comparison on another model)."""
    path = Path(path)
    raw = read_yaml_mapping(path, "recipe", "recipe keys", loader=_Loader)
    if base_model:
        raw["base_model"] = str(Path(base_model).absolute()) if Path(base_model).exists() else base_model
    valid = [f.name for f in dataclasses.fields(Recipe) if f.name != "path"]
    for key in raw:
        if key not in valid:
            raise _unknown(key, valid, str(path))
    for key in ("name", "base_model", "variants", "eval"):
        if not raw.get(key):
            raise ConfigError(f"{path}: missing required key {key!r}")
    top = _resolve_paths({k: raw[k] for k in ("base_model", "reference_model") if raw.get(k)}, path)
    seeds = _seeds(raw, path)
    recipe = Recipe(
        path=path, name=str(raw["name"]), base_model=top["base_model"], reference_model=top.get("reference_model"),
        seed=seeds[0], seeds=seeds, output_dir=output_dir or raw.get("output_dir"),
        sft=_section(raw, "sft", path), rl=_section(raw, "rl", path) if raw.get("rl") is not None else None,
        eval=_section(raw, "eval", path), rl_from_base=bool(raw.get("rl_from_base", False)),
        variants=[_variant(v, path) for v in raw["variants"]],
        diagnostics=_diagnostics(raw.get("diagnostics"), path), readiness=_readiness(raw.get("readiness"), path),
        unavailable_benchmarks=list(raw.get("unavailable_benchmarks") or []), notes=str(raw.get("notes", "")),
        launch=_launch(raw.get("launch"), path), published=_published(raw.get("published"), path))
    recipe.eval_overrides = _eval_overrides(raw, path, list(recipe.eval_config(recipe.base_model, "out").configs))
    _validate(recipe)
    return recipe


def _eval_overrides(raw: dict, path: Path, benchmarks: list[str]) -> dict:
    overrides = {bench: resolve_aliases(EvalConfig, mapping or {}, f"{path}: eval_overrides: {bench}: ")
                 for bench, mapping in (raw.get("eval_overrides") or {}).items()}
    for bench, mapping in overrides.items():
        if bench not in benchmarks:
            raise ConfigError(f"{path}: eval_overrides: {bench!r} is not in eval.benchmarks ({', '.join(benchmarks)})")
        _check_keys(mapping, {f.name for f in dataclasses.fields(EvalConfig)}, (*SECTIONS["eval"][1], "benchmarks"),
                    f"{path}: eval_overrides: {bench}")
    return {bench: _resolve_paths(mapping, path) for bench, mapping in overrides.items()}


def _seeds(raw: dict, path: Path) -> list[int]:
    """`seeds: [s1, s2, ...]` (distinct integers), else `[seed]` (default 42); setting both is ambiguous."""
    if "seeds" not in raw:
        return [int(raw.get("seed", 42))]
    seeds = raw["seeds"]
    if "seed" in raw:
        raise ConfigError(f"{path}: set `seed` or `seeds`, not both")
    if (not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise ConfigError(f"{path}: seeds: expected a non-empty list of distinct integers, got {seeds!r}")
    return seeds


def _readiness(raw, path: Path) -> dict | None:
    """`{k: int >= 1, EvalConfig fields}`; more than one sample per problem needs an explicit temperature > 0."""
    if not raw:
        return None
    where = f"{path}: readiness"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping {{k: NUMBER, EvalConfig fields}}")
    k = raw.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"{where}: k: expected an integer >= 1 (samples per held-out problem), got {k!r}")
    if k > 1 and not (raw.get("temperature") or 0) > 0:
        raise ConfigError(f"{where}: temperature: k = {k} samples per problem need sampling (temperature > 0)")
    fields = resolve_aliases(EvalConfig, {key: v for key, v in raw.items() if key != "k"}, f"{where}: ")
    _check_keys(fields, {f.name for f in dataclasses.fields(EvalConfig)}, (*SECTIONS["eval"][1], "n"), where)
    fields = _resolve_paths(fields, path)
    if isinstance(fields.get("benchmarks"), str):
        fields["benchmarks"] = ",".join(_resolve_benchmark(i.strip(), path) for i in fields["benchmarks"].split(","))
    return {**fields, "k": k}


def _launch(raw, path: Path) -> dict[str, list[str]]:
    try:
        return parse_launch(raw, path)
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from err


def _published(raw, path: Path) -> dict:
    """`{source: str, scores: {variant: {metric: number}}}`; numbers are percentages as the paper prints them."""
    if not raw:
        return {}
    where = f"{path}: published"
    if not isinstance(raw, dict) or set(raw) - {"source", "scores"} or not isinstance(raw.get("scores"), dict):
        raise ConfigError(f"{where}: expected {{source: TEXT, scores: {{VARIANT: {{METRIC: NUMBER}}}}}}")
    for variant, scores in raw["scores"].items():
        if not isinstance(scores, dict) or not all(isinstance(v, int | float) for v in scores.values()):
            raise ConfigError(f"{where}: scores: {variant}: expected {{METRIC: NUMBER}}, e.g. {{avg@16: 40.67}}")
    return {"source": str(raw.get("source", "")), "scores": raw["scores"]}


def _diagnostics(mapping, path: Path) -> Diagnostics | None:
    if not mapping:
        return None
    valid = [f.name for f in dataclasses.fields(Diagnostics)]
    _check_keys(mapping, valid, (), f"{path}: diagnostics")
    return Diagnostics(**_resolve_paths(mapping, path))


def _validate(recipe: Recipe) -> None:
    names = [v.name for v in recipe.variants]
    duplicates = sorted({n for n in names if names.count(n) > 1} | ({"base"} & set(names)))
    if duplicates:
        raise ConfigError(f"{recipe.path}: variant names must be unique and not 'base': {duplicates}")
    unknown = sorted(set(recipe.published.get("scores", {})) - {*names, "base"})
    if unknown:
        raise ConfigError(f"{recipe.path}: published: scores for {unknown}, which are not variants ({', '.join(names)})")
    check_model(recipe.base_model, f"{recipe.path}: base_model")
    if recipe.reference_model:
        check_model(recipe.reference_model, f"{recipe.path}: reference_model")
    known = [b for b in recipe.unavailable_benchmarks if b in benchmark_names()]
    if known:
        raise ConfigError(f"{recipe.path}: unavailable_benchmarks lists {known}, which prift can evaluate: move them "
                          "to eval.benchmarks")
    for variant in recipe.variants:
        recipe.sft_config(variant, "out")
    recipe.eval_config(recipe.base_model, "out")
    if recipe.readiness is not None:
        recipe.readiness_config(recipe.base_model, "out")
    check_budgets(recipe)
