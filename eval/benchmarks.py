"""Benchmarks: a registry of classes that load a split into :class:`Problem` rows and say how to prompt and grade.

Every benchmark names its split, the row count of the shared data (``rows``), the files it reads under the data
root (``--data-dir`` / ``$PRIFT_DATA_DIR`` / ``../shared/data``) and the hub id users without those files get.
The built-in ones live in :mod:`.bench_math`, :mod:`.bench_code` and :mod:`.bench_medical`; ``get_benchmark(item)``
imports them on first use. A ``--benchmarks`` item is a built-in name or ``NAME=PATH``: a math benchmark named
``NAME`` read from a local jsonl/json file of the user's own (:class:`prift.eval.bench_math.LocalMath`);
``parse_benchmark(item)`` validates either form. Grading happens in :mod:`.grading` through :mod:`prift.rewards`
only, by ``task``:

- ``math``: ``gold`` is the final answer (LaTeX or a number), graded by ``prift.rewards.math.grade_many``;
- ``choice``: ``gold`` is an option letter, graded by ``prift.rewards.choice.extract_choice``;
- ``code``: ``gold`` is a test spec (anything ``prift.rewards.code.parse_tests`` reads), run by the sandbox.

A row that cannot become a problem (missing field, undecodable tests, malformed JSON line) becomes a
``Problem`` with ``error`` set: it is never generated for, every sample of it is recorded as an error and counts
as wrong, and the run goes on.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prift.core.datasets import DatasetSpec, HubSource
from prift.core.paths import data_root
from prift.core.provenance import sha256_file
from prift.core.registry import Registry

BENCHMARKS: Registry[type[Benchmark]] = Registry(
    "benchmark",
    builtins=("prift.eval.bench_math", "prift.eval.bench_code", "prift.eval.bench_lcb", "prift.eval.bench_evalplus",
              "prift.eval.bench_medical"))
TASKS = ("math", "choice", "code")


@dataclass
class Problem:
    """One benchmark item. ``question`` is the bare input (problem text, formatted MC question, code prompt);
    ``meta`` holds what prompts and grading need besides (entry point, subject, reference solution, ...)."""

    id: str
    question: str
    gold: Any
    meta: dict = field(default_factory=dict)
    error: str | None = None


@dataclass
class Loaded:
    """The problems of one benchmark and where they came from (file paths and sha256, or hub id)."""

    problems: list[Problem]
    sources: list[dict]
    total_rows: int


class Benchmark:
    """Base class; subclasses set the class attributes and implement ``read_local``/``to_problem``."""

    name: str = ""
    task: str = "math"
    split: str = "test"
    rows: int | None = None  # row count of the documented split in the shared data
    files: tuple[str, ...] = ()  # relative to the data root
    hub: tuple[str, str | None, str] | None = None  # (hub id, config, split)
    default_template: str = "chat"
    base_stop: tuple[str, ...] = ()  # stop strings of the few-shot / completion base prompt
    letters: str = "ABCD"
    dataset: DatasetSpec | None = None  # the training-data spec this benchmark is a view of (same prompt and gold)
    # Generation defaults of the harness the benchmark's papers cite (the defining class's docstring names it):
    # max_tokens, and temperature / top_p where that harness sets them. `--max_tokens` etc. override them.
    generation: dict[str, float] = {}
    answer_words: tuple[str, ...] = ()  # choice: the options' answer words in letter order (PubMedQA yes/no/maybe)
    views: tuple[str, ...] = ()  # extra verdicts of a graded sample, scored apart in results.json (evalplus: "base")

    def __init__(self, data_dir: str | Path | None = None, **settings: Any) -> None:
        self.data_dir = data_dir
        unknown = set(settings) - set(self.settings_defaults())
        if unknown:
            raise ValueError(f"{self.name}: unknown settings {sorted(unknown)}; valid: {self.settings_defaults()}")
        self.settings = {**self.settings_defaults(), **settings}

    @classmethod
    def settings_defaults(cls) -> dict[str, Any]:
        return {}

    # --- data -------------------------------------------------------------------------------------------
    def local_root(self) -> Path | None:
        root = data_root(self.data_dir)
        if root is not None and all((root / f).exists() for f in self.files):
            return root
        return None

    def read_local(self, root: Path) -> list[dict]:
        raise NotImplementedError

    def hub_sources(self) -> list[tuple[str, str | None, str]]:
        """Every ``(hub id, config, split)`` the hub fallback loads (checked against the hub's configs by a test)."""
        return [self.hub] if self.hub else []

    def read_hub(self) -> list[dict]:
        if self.hub is None:
            raise FileNotFoundError(f"{self.name}: no local data under the data root and no hub id")
        from datasets import load_dataset

        hub_id, config, split = self.hub
        return [dict(row) for row in load_dataset(hub_id, config, split=split)]

    def read_extra(self, relpath: str, hub: tuple[str, str | None, str]) -> list[dict]:
        """Rows of another file of the same dataset (few-shot exemplars), local when present, else from the hub."""
        root = data_root(self.data_dir)
        if root is not None and (root / relpath).exists():
            path = root / relpath
            return read_csv(path) if path.suffix == ".csv" else read_jsonl(path)
        from datasets import load_dataset

        return [dict(row) for row in load_dataset(hub[0], hub[1], split=hub[2])]

    def keep(self, row: dict) -> bool:
        """Rows of the evaluated split (e.g. MBPP task ids 11-510) or settings (LiveCodeBench date window)."""
        return True

    def to_problem(self, row: dict, index: int) -> Problem:
        raise NotImplementedError

    def load(self, limit: int | None = None) -> Loaded:
        root = self.local_root()
        if root is not None:
            raw = self.read_local(root)
            sources = [{"path": str(root / f), "sha256": sha256_file(root / f)} for f in self.files]
        else:
            raw = self.read_hub()
            hub_id, config, split = self.hub
            sources = [{"hub": hub_id, "config": config, "split": split}]
        rows = [row for row in raw if "__error__" in row or self.keep(row)]
        problems = [self._problem(row, i) for i, row in enumerate(rows)]
        return Loaded(problems[:limit] if limit else problems, sources, len(rows))

    def _problem(self, row: dict, index: int) -> Problem:
        if "__error__" in row:
            return Problem(f"{self.name}/row{index}", "", None, error=row["__error__"])
        try:
            return self.to_problem(row, index)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            return Problem(f"{self.name}/row{index}", "", None, error=f"bad row: {type(exc).__name__}: {exc}")

    # --- prompts ----------------------------------------------------------------------------------------
    def instruction(self, problem: Problem) -> str:
        """Zero-shot user message for chat models (question plus the answer-format instruction)."""
        raise NotImplementedError

    def base_prompt(self, problem: Problem) -> str:
        """The standard few-shot / completion prompt for base models (no chat template)."""
        raise NotImplementedError

    def reference(self, problem: Problem) -> str:
        """A completion that must grade as correct (gold answer or canonical solution): the eval-path self-check."""
        raise NotImplementedError

    def subset(self, problem: Problem) -> str | None:
        """Subset name for per-subset metrics (MMLU subjects), else None."""
        return None

    def sandbox_limits(self, problem: Problem) -> dict:
        """Per-problem sandbox limits where the official harness sets them (``{"timeout_s": ...}``), else {}."""
        return {}

    def view_status(self, view: str, problem: Problem, row: dict) -> str:
        """The status of graded sample ``row`` under ``view`` (one of :attr:`views`)."""
        raise ValueError(f"{self.name}: unknown view {view!r}; known: {list(self.views)}")


LOCAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # NAME of a NAME=PATH item: it names files and folders


def parse_benchmark(item: str) -> tuple[str, Path | None]:
    """A ``--benchmarks`` item as ``(name, path)``: a built-in name -> ``(name, None)``; ``NAME=PATH`` ->
    ``(NAME, PATH)``, a local-file math benchmark. ``ValueError`` (naming the item) for an unknown name, a NAME that
    is a built-in benchmark or not a plain file name (letters, digits, ``_ . -``), and a PATH that is not a file."""
    name, sep, path = (part.strip() for part in item.partition("="))
    if not sep:
        if name not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {name!r}; valid: {', '.join(benchmark_names())}, all, or NAME=PATH "
                             "(a local jsonl/json file)")
        return name, None
    if not LOCAL_NAME.fullmatch(name):
        raise ValueError(f"benchmark {item!r}: NAME must be letters, digits, '_', '.' or '-' (it names the results)")
    if name in BENCHMARKS:
        raise ValueError(f"benchmark {item!r}: {name!r} is a built-in benchmark; give the local file another NAME")
    file = Path(path).expanduser()
    if not file.is_file():
        where = "" if file.is_absolute() else f" (looked for {file.resolve()})"
        raise ValueError(f"benchmark {item!r}: no such file {path!r}{where}")
    return name, file


def spec_split(dataset: DatasetSpec, split: str) -> tuple[str, tuple[str, str | None, str]]:
    """``(file under the data root, (hub id, config, split))`` of ``split`` of ``dataset`` (:meth:`read_extra`'s
    arguments)."""
    hub: HubSource = dataset.hub[split]
    return dataset.files[split], (hub.id, hub.config, hub.split)


def spec_files(dataset: DatasetSpec, split: str) -> tuple[tuple[str, ...], tuple[str, str | None, str]]:
    """``(files, hub)`` class attributes of a benchmark that evaluates ``split`` of ``dataset``."""
    file, hub = spec_split(dataset, split)
    return (file,), hub


def get_benchmark(item: str, data_dir: str | Path | None = None, **settings: Any) -> Benchmark:
    """The benchmark of a ``--benchmarks`` item (see :func:`parse_benchmark`), with its ``settings``."""
    name, path = parse_benchmark(item)
    if path is None:
        return BENCHMARKS.get(name)(data_dir, **settings)
    from prift.eval.bench_math import LocalMath

    return LocalMath(name, path, data_dir, **settings)


def benchmark_names() -> list[str]:
    return BENCHMARKS.names()


# --- readers shared by the built-in benchmarks -------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict]:
    """One JSON object per line (``.gz`` too); a malformed line becomes ``{"__error__": ...}`` for that row."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append(row if isinstance(row, dict) else {"__error__": f"{path.name}:{number}: not an object"})
            except json.JSONDecodeError as exc:
                rows.append({"__error__": f"{path.name}:{number}: malformed JSON ({exc})"})
    return rows


def read_json_rows(path: Path) -> list[dict]:
    """A JSON array of objects when the file starts with ``[``, else JSON lines (:func:`read_jsonl`); an item that
    is not an object becomes ``{"__error__": ...}`` for that row."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        is_array = handle.read(4096).lstrip().startswith("[")
    if not is_array:
        return read_jsonl(path)
    with opener(path, "rt", encoding="utf-8") as handle:
        rows = json.load(handle)
    return [row if isinstance(row, dict) else {"__error__": f"{path.name}: item {i} is not an object"}
            for i, row in enumerate(rows)]


def read_json_array(path: Path, unwrap: str | None = None) -> list[dict]:
    """A JSON array of objects; ``unwrap="data"`` takes ``row["data"]`` (the MultiMedQA mirror's shape)."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    if unwrap:
        rows = [row.get(unwrap, {"__error__": f"no {unwrap!r} key"}) if isinstance(row, dict) else
                {"__error__": "not an object"} for row in rows]
    return rows


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
