"""`evaluate(config) -> results.json path`: generate, grade and score every requested benchmark, resumably.

For each benchmark the problems, longest prompt first (lm-eval's batch order: little padding, and an HF chunk is
lm-eval's batch), are cut into fixed chunks (``config.problems_per_chunk()`` problems, the same chunks on every run). A chunk's missing samples are generated in one backend call seeded from (seed, benchmark,
chunk index), graded through :mod:`.grading` and appended to ``samples/<benchmark>.jsonl`` before the next chunk
starts, so a killed run loses at most one chunk and a rerun into the same ``output_dir`` generates only the
samples that are missing, exactly as the first run would have. ``results.json`` (metrics with standard errors,
counts, settings, data sha256, package versions, backend settings, wall time) is rewritten atomically after each
benchmark. A benchmark that cannot be set up (its data unreachable or malformed) is recorded under ``failed`` in
results.json while the others still run; ``evaluate`` then raises :class:`BenchmarkUnavailable` naming it.

Under ``accelerate launch`` (several processes; CPU ranks meet over gloo) the evaluation is data-parallel: every
rank loads the model on its own device and generates and grades the chunks ``i % num_processes == rank`` into its
own shard of the samples file. Since a chunk's samples depend only on its seed, which rank generates it changes
nothing. After each benchmark the ranks wait for each other; rank 0 merges the shards into
``samples/<benchmark>.jsonl`` (in the benchmark's problem order, as a 1-process run leaves it), scores it and writes results.json, and every rank
returns its path once it is complete. Resuming reads all shards, so a rerun may use another process count.
"""

from __future__ import annotations

import functools
import sys
import time
import zlib
from dataclasses import asdict, replace
from pathlib import Path

from tqdm.auto import tqdm

from prift.core.console import quiet_libraries, verbose_default
from prift.core.provenance import RunRecord, ensure_writable, write_json_atomic
from prift.eval.backends import Backend, Sampling, make_backend
from prift.eval.benchmarks import Benchmark, Problem, get_benchmark
from prift.eval.config import EvalConfig
from prift.eval.grading import GradingSettings, grade, majority_votes
from prift.eval.lmeval import is_parity, mc_request, mc_verdicts, parity_task
from prift.eval.metrics import ProblemSamples, mean_stderr, summarize, summarize_subsets
from prift.eval.samples import SampleStore, discard_samples
from prift.eval.templates import generation_stops, render, resolve_template, stop_strings, use_chat_template
from prift.rewards.sandbox import SandboxConfig

TRUNCATION_WARNING = 0.05  # a benchmark with more samples cut at max_tokens than this is named on stderr


def grading_settings(config: EvalConfig) -> GradingSettings:
    sandbox = SandboxConfig(timeout_s=config.sandbox_timeout_s, memory_mb=config.sandbox_memory_mb,
                            **({"workers": config.sandbox_workers} if config.sandbox_workers else {}))
    return GradingSettings(math_timeout_s=config.math_timeout_s, sandbox=sandbox)


def chunk_seed(seed: int, benchmark: str, chunk: int) -> int:
    return (seed * 1_000_003 + zlib.crc32(benchmark.encode()) + chunk * 7919) % (2**31)


class BenchmarkUnavailable(ValueError):
    """Some benchmarks could not be set up (their data or prompts); the others ran and are in results.json."""


def samples_path(out: Path, name: str) -> Path:
    """The merged samples file of benchmark ``name`` in the run folder ``out``."""
    return out / "samples" / f"{name}.jsonl"


def launch_state():
    """accelerate's ``PartialState`` of this process: one of ``num_processes`` ranks under ``accelerate launch``
    (gloo on the CPU when no GPU is visible), else the only process (``num_processes == 1``)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


class BenchmarkRun:
    """One benchmark of one eval run: problems, prompts, the sample store, and the generate-grade-write loop.
    ``name`` keys the samples file and the results; ``item`` is its ``benchmarks`` item (``name`` or ``NAME=PATH``).
    With ``world > 1`` this process is rank ``rank``: it generates only its chunks, into its own shard."""

    def __init__(self, name: str, item: str, config: EvalConfig, backend: Backend, tokenizer, out: Path,
                 rank: int = 0, world: int = 1) -> None:
        self.name, self.config, self.backend, self.rank, self.world = name, config, backend, rank, world
        self.bench: Benchmark = get_benchmark(item, config.data_dir, **config.benchmark_settings(name))
        self.loaded = self.bench.load(config.max_samples)
        self.template = resolve_template(config.template_for(name), self.bench)
        self.chat = use_chat_template(self.template, tokenizer, config.use_chat_template)
        if self.chat and getattr(tokenizer, "chat_template", None) is None:  # refuse, rather than fail every prompt
            raise ValueError(f"use_chat_template=true but the tokenizer of {config.model_name_or_path!r} has no chat template; use "
                             "--chat_template off (plain prompts) or auto")
        self.tokenizer = tokenizer
        self.parity = parity_task(self.bench) if is_parity(self.template) else None  # lm-eval's stops and filters
        self.loglik = self.bench.task == "choice" and config.mc_scoring == "loglik"
        if self.loglik and not hasattr(backend, "loglikelihood"):
            raise ValueError(f"mc_scoring=loglik needs the hf backend, not {config.backend!r}")
        self.stops = generation_stops(tokenizer, getattr(backend, "generation_config", None), self.chat,
                                      config.model_name_or_path)
        stop = stop_strings(self.template, self.bench) + (self.parity.stop if self.parity else ())
        self.sampling: Sampling = replace(config.sampling(stop, self.bench.generation),
                                          stop_token_ids=tuple(self.stops["token_ids"]))
        if self.loglik:  # one scored row per problem
            self.sampling = replace(self.sampling, n=1)
        self.store = SampleStore(samples_path(out, name), self.settings(), shard=rank if world > 1 else None)
        self.timing = {"generation_s": 0.0, "grading_s": 0.0}

    def settings(self) -> dict:
        c = self.config
        return {"model": c.model_name_or_path, "backend": c.backend, "template": self.template.name, "chat_template": self.chat,
                "sampling": asdict(self.sampling), "seed": c.seed, "chunk_size": c.problems_per_chunk(),
                "chunk_order": "longest_prompt_first",
                "benchmark_settings": self.bench.settings, "dtype": c.dtype,
                **({"mc_scoring": "loglik"} if self.loglik else {})}

    @functools.cached_property
    def ordered(self) -> list[Problem]:
        """The problems in chunk order: longest prompt first (in tokens, then by text), lm-eval's batch order, so a
        chunk's prompts pad little and an HF micro-batch holds what lm-eval's batch holds. A problem whose prompt
        cannot be built goes last (its chunk records the failure)."""
        def key(problem: Problem) -> tuple[int, int, str]:
            prompt = self.prompts[problem.id]
            if isinstance(prompt, Exception):
                return 1, 0, ""
            return 0, -len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"]), prompt

        return sorted(self.loaded.problems, key=key)

    @functools.cached_property
    def prompts(self) -> dict[str, str | Exception]:
        """Each problem's prompt, built once for ordering and generating (or what building it raised)."""
        built: dict[str, str | Exception] = {}
        for problem in self.loaded.problems:
            try:
                built[problem.id] = self.prompt(problem)
            except Exception as exc:  # noqa: BLE001 - a prompt that cannot be built fails its row only
                built[problem.id] = exc
        return built

    def prompt(self, problem: Problem) -> str:
        if self.loglik:
            return mc_request(self.bench, problem).context
        return render(self.template, self.bench, problem, self.tokenizer, self.chat)

    def missing(self, problem: Problem) -> list[int]:
        return [s for s in range(self.sampling.n) if not self.store.has(problem.id, s)]

    def my_chunks(self) -> list[tuple[int, list[Problem]]]:
        """(chunk index, problems) of the chunks this rank generates: every ``world``-th from ``rank``."""
        problems, size = self.ordered, self.config.problems_per_chunk()
        starts = range(self.rank * size, len(problems), self.world * size)
        return [(start // size, problems[start : start + size]) for start in starts]

    def run(self) -> None:
        chunks = self.my_chunks()
        total = sum(len(chunk) for _, chunk in chunks) * self.sampling.n
        done = sum(self.sampling.n - len(self.missing(p)) for _, chunk in chunks for p in chunk)
        with tqdm(total=total, initial=done, unit="sample", desc=self.name, dynamic_ncols=True,
                  disable=not self.config.progress or self.rank != 0) as bar:
            for index, chunk in chunks:
                bar.update(self.run_chunk(chunk, index))

    def finish(self, timings: list[dict]) -> None:
        """Rank 0, once every rank has finished ``run``: fold the ranks' shards into the samples file and add up
        the ranks' generation and grading times (``timings``: each rank's ``timing``). Rows are put in the benchmark's
        problem order (chunks are cut longest prompt first; exports and readers expect the data's order); rows of
        problems not loaded this time go last."""
        position = {p.id: i for i, p in enumerate(self.loaded.problems)}
        self.store.merge(lambda key: position.get(key[0], len(position)))
        self.timing = {k: sum(t[k] for t in timings) for k in self.timing}

    def _error_rows(self, problem: Problem, samples: list[int], error: str, prompt: str = "") -> list[dict]:
        return [{"problem_id": problem.id, "sample": s, "prompt": prompt, "completion": None, "answer": None,
                 "status": "error", "detail": error, "subset": self.bench.subset(problem)} for s in samples]

    def run_chunk(self, chunk: list[Problem], chunk_index: int) -> int:
        rows: list[dict] = []
        todo: list[tuple[Problem, str, list[int]]] = []
        for problem in chunk:
            samples = self.missing(problem)
            if not samples:
                continue
            if problem.error:
                rows += self._error_rows(problem, samples, problem.error)
                continue
            prompt = self.prompts[problem.id]
            if isinstance(prompt, Exception):
                rows += self._error_rows(problem, samples, f"prompt failed: {type(prompt).__name__}: {prompt}")
            else:
                todo.append((problem, prompt, samples))
        if todo and self.loglik:
            rows += self.score_choices([problem for problem, _, _ in todo])
        elif todo:
            rows += self.generate_and_grade(todo, chunk_seed(self.config.seed, self.name, chunk_index))
        self.store.append(rows)
        return len(rows)

    def generate_and_grade(self, todo: list[tuple[Problem, str, list[int]]], seed: int) -> list[dict]:
        started = time.perf_counter()
        outputs = self.backend.generate([p for _, p, _ in todo], [len(s) for _, _, s in todo], self.sampling, seed)
        gen_s = time.perf_counter() - started
        flat = [(problem, prompt, s, g) for (problem, prompt, samples), gens in zip(todo, outputs, strict=True)
                for s, g in zip(samples, gens, strict=True)]
        started = time.perf_counter()
        grades = grade(self.bench, [f[0] for f in flat], [f[3].text for f in flat], grading_settings(self.config))
        grade_s = time.perf_counter() - started
        self.timing["generation_s"] += gen_s
        self.timing["grading_s"] += grade_s
        share = 1 / max(1, len(flat))
        rows = []
        for (problem, prompt, sample, gen), result in zip(flat, grades, strict=True):
            rows.append({
                "problem_id": problem.id, "sample": sample, "prompt": prompt, "completion": gen.text,
                "answer": result.answer, "gold": problem.gold if self.bench.task != "code" else None,
                "status": result.status, "detail": result.detail, "subset": self.bench.subset(problem),
                "tokens": gen.tokens, "finish_reason": gen.finish_reason,
                "gen_s": round(gen_s * share, 4), "grade_s": round(grade_s * share, 4), **result.extra,
                **({"lmeval": self.parity.verdicts(problem, gen.text)} if self.parity else {}),
            })
        return rows

    def score_choices(self, problems: list[Problem]) -> list[dict]:
        """``--mc_scoring loglik``: one row per problem with each choice's loglikelihood, ``acc`` and ``acc_norm``
        (:func:`prift.eval.lmeval.mc_verdicts`). A batch that fails is rescored one problem at a time, so a problem
        that cannot be scored (too long for the model, ...) becomes an error row and the others are kept."""
        try:
            return self._score_choices(problems)
        except Exception as exc:  # noqa: BLE001 - find the problem that fails, keep the rest
            if len(problems) > 1:
                return [row for p in problems for row in self.score_choices([p])]
            return self._error_rows(problems[0], [0], f"scoring failed: {type(exc).__name__}: {exc}"[:500],
                                    self.prompt(problems[0]))

    def _score_choices(self, problems: list[Problem]) -> list[dict]:
        started = time.perf_counter()
        requests = [mc_request(self.bench, p) for p in problems]
        flat = iter(self.backend.loglikelihood([(r.context, c) for r in requests for c in r.continuations]))
        logliks = [[next(flat) for _ in r.choices] for r in requests]
        seconds = time.perf_counter() - started
        self.timing["generation_s"] += seconds
        rows = []
        for problem, request, lls in zip(problems, requests, logliks, strict=True):
            verdict = mc_verdicts(request, lls)
            rows.append({
                "problem_id": problem.id, "sample": 0, "prompt": request.context, "choices": list(request.choices),
                "logliks": lls, "answer": self.bench.letters[verdict["pred"]],
                "answer_norm": self.bench.letters[verdict["pred_norm"]], "gold": problem.gold,
                "status": "correct" if verdict["acc"] else "wrong", "detail": "", "subset": self.bench.subset(problem),
                "acc": verdict["acc"], "acc_norm": verdict["acc_norm"], "score_s": round(seconds / len(problems), 4),
            })
        return rows

    def extra_metrics(self, rows: dict[str, list[dict | None]]) -> dict:
        """Per-problem means over samples, then mean and stderr over problems (a missing or error row scores 0):
        ``acc`` / ``acc_norm`` of loglik scoring, and each lm-eval filter's verdict under ``lmeval``."""
        def score(value) -> dict:
            mean, stderr = mean_stderr([sum(map(value, rs)) / len(rs) for rs in rows.values()])
            return {"value": mean, "stderr": stderr}

        out: dict = {}
        if self.loglik:
            out["mc_metrics"] = {m: score(lambda r, m=m: (r or {}).get(m, 0.0)) for m in ("acc", "acc_norm")}
        if self.parity:
            names = next((list(r["lmeval"]) for rs in rows.values() for r in rs if r and "lmeval" in r), [])
            out["lmeval"] = {"task": self.parity.task, **{
                f: score(lambda r, f=f: float(((r or {}).get("lmeval") or {}).get(f, {}).get("correct", False)))
                for f in names}}
        return out

    def results(self, wall_s: float) -> dict:
        n = self.sampling.n
        rows = {p.id: [self.store.get(p.id, s) for s in range(n)] for p in self.loaded.problems}

        majority = self.bench.task != "code"
        votes = majority_votes(self.bench, [[r.get("answer") for r in rows[p.id]] for p in self.loaded.problems],
                               grading_settings(self.config)) if majority and n > 1 else None

        def graded(status) -> list[ProblemSamples]:
            return [ProblemSamples(p.id, [status(p, r) for r in rows[p.id]],
                                   votes[i] if votes else [r.get("answer") for r in rows[p.id]], self.bench.subset(p))
                    for i, p in enumerate(self.loaded.problems)]

        overall = graded(lambda p, r: r["status"])
        # e.g. evalplus's base-tests score beside its base + plus one
        views = {view: summarize(graded(functools.partial(self.bench.view_status, view)), n, majority=majority)
                 for view in self.bench.views}
        isolation = next((r.get("isolation") for r in self.store.rows.values() if r.get("isolation")), None)
        samples = [r for rs in rows.values() for r in rs if r is not None]
        truncated = sum(r.get("finish_reason") == "length" for r in samples)
        truncation = {"samples": truncated, "fraction": round(truncated / max(len(samples), 1), 4),
                      "max_tokens": self.sampling.max_tokens}
        if truncation["fraction"] > TRUNCATION_WARNING:  # graded anyway, on whatever the cut text holds
            print(f"[prift] {self.name}: {truncated} of {len(samples)} samples ({truncation['fraction']:.0%}) stopped "
                  f"at max_tokens={self.sampling.max_tokens} and were graded cut; raise --max_tokens",
                  file=sys.stderr, flush=True)
        extra = self.extra_metrics(rows)
        summary = summarize(overall, n, majority=majority)
        summary["metrics"].update(extra.pop("mc_metrics", {}))  # acc, acc_norm beside avg@1 (= acc)
        return {
            "benchmark": self.name, "task": self.bench.task, "split": self.bench.split,
            "rows_documented": self.bench.rows, "rows_loaded": self.loaded.total_rows, "limit": self.config.max_samples,
            "template": self.template.name, "chat_template": self.chat, "sampling": asdict(self.sampling),
            "stops": {**self.stops, "strings": list(self.sampling.stop)},
            "generation_defaults": self.bench.generation,
            "benchmark_settings": self.bench.settings, "data": self.loaded.sources,
            "bad_rows": [{"id": p.id, "error": p.error} for p in self.loaded.problems if p.error],
            **summary, **summarize_subsets(overall, n, majority=majority), **extra,
            **({"views": views} if views else {}),
            "truncation": truncation, "sandbox_isolation": isolation, "samples_file": f"samples/{self.name}.jsonl",
            "wall_time_s": round(wall_s, 3), **{k: round(v, 3) for k, v in self.timing.items()},
        }


def backend_settings(config: EvalConfig, state) -> dict:
    """``config``'s backend settings; under a launch the HF backend loads on this rank's device (unless ``device``
    names one). Only the HF backend runs data-parallel: vLLM splits one model across GPUs itself."""
    settings = config.backend_settings()
    if state.num_processes > 1:
        if config.backend != "hf":
            raise ValueError(f"backend {config.backend!r} cannot run under a {state.num_processes}-process launch; "
                             "launch one process (vLLM uses the visible GPUs itself: vllm_tensor_parallel_size), "
                             "or use --backend hf")
        settings["device"] = config.device or ("cpu" if state.device.type == "cpu" else str(state.device))
    return settings


def evaluate(config: EvalConfig, backend: Backend | None = None) -> Path:
    """Run every benchmark of ``config`` (resuming from ``config.output_dir``); return the results.json path.

    ``backend`` overrides the one ``config.backend`` names (any object with ``generate`` and ``describe``). Under
    ``accelerate launch`` every rank calls this; each returns the path once rank 0 has written results.json.
    """
    from accelerate.utils import gather_object

    out = ensure_writable(config.output_dir)
    quiet_libraries(verbose_default())  # prift's own progress bar stays (--progress); $PRIFT_VERBOSE restores theirs
    state = launch_state()
    record = RunRecord("eval", config, seed=config.seed)
    backend = backend or make_backend(config.backend, config.model_name_or_path, **backend_settings(config, state))
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is None:
        from prift.models.loading import load_tokenizer

        tokenizer = load_tokenizer(config.model_name_or_path)
    record.extra["model"] = {"name": config.model_name_or_path, **backend.describe()}
    if state.num_processes > 1:
        record.extra["processes"] = state.num_processes  # generation_s and grading_s add up all ranks
    results: dict[str, dict] = {}
    failed: dict[str, str] = {}
    path = out / "results.json"

    def save() -> None:
        if state.is_main_process:
            write_json_atomic(path, record.payload(results=results, failed=failed))

    if not config.resume:  # before any rank reads the samples already there
        if state.is_main_process:
            for name in config.benchmark_items():
                discard_samples(samples_path(out, name))
        state.wait_for_everyone()
    for name, item in config.benchmark_items().items():
        started = time.perf_counter()
        try:
            run = BenchmarkRun(name, item, config, backend, tokenizer, out, state.process_index, state.num_processes)
        except Exception as err:  # noqa: BLE001 - data that cannot be loaded (offline hub, bad file): the others run
            failed[name] = f"{type(err).__name__}: {err}"  # the same on every rank: all skip it, in step
            if state.is_main_process:
                print(f"[prift] {name}: not evaluated ({failed[name]})", file=sys.stderr, flush=True)
            save()
            continue
        for source in run.loaded.sources:
            if "sha256" in source:
                record.fingerprints[f"{name}:{Path(source['path']).name}"] = source["sha256"]
        run.run()
        timings = gather_object([run.timing])  # also a barrier: every rank's samples are on disk
        if state.is_main_process:
            run.finish(timings)
            results[name] = run.results(time.perf_counter() - started)
            save()
    if config.perplexity and state.is_main_process:
        from prift.eval.perplexity import perplexity_from_config

        results[f"ppl:{config.perplexity}"] = perplexity_from_config(config, backend)
    save()
    state.wait_for_everyone()  # the other ranks return once results.json is complete
    if failed:
        raise BenchmarkUnavailable(f"not evaluated: {'; '.join(f'{n}: {e}' for n, e in failed.items())}; the other "
                                   f"benchmarks' results are in {path}")
    return path
