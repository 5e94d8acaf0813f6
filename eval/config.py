"""`EvalConfig`: the evaluation stage's settings; the same dataclass is `prift eval` flags and YAML keys.

The PriFT paper's protocol: `--template qwen-boxed --n 16 --temperature 1.0 --top_p 1.0` (Avg@16 and Pass@16).
Unset `temperature`, `top_p` and `max_tokens` take each benchmark's own generation defaults (its harness's; see
`Benchmark.generation`), recorded in results.json as `generation_defaults` beside the `sampling` actually used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prift.eval.benchmarks import benchmark_names
from prift.eval.templates import TEMPLATES
from prift.models.arguments import ModelArguments

SAMPLING_FALLBACK = {"temperature": 0.0, "top_p": 1.0}  # where neither the user nor the benchmark sets them
CHAT_SETTINGS = {"on": "true", "off": "false", "yes": "true", "no": "false", "1": "true", "0": "false"}


@dataclass
class EvalConfig(ModelArguments):
    """Configuration of `prift eval` (the model group, `ModelArguments`, is the one sft and rl share)."""

    # the names every subcommand shares (docs/options.md); the old ones still work, with a note
    renamed_options = {**ModelArguments.renamed_options, "limit": "max_samples", "chat_template": "use_chat_template",
                       "vllm_max_model_len": "vllm_max_model_length"}
    negated_options = {"overwrite": "resume"}

    benchmarks: str = field(
        default="gsm8k",
        metadata={"help": f"Comma-separated benchmarks: {', '.join(benchmark_names())}; or `all` (every built-in one). NAME=PATH adds a math benchmark NAME from a local "
                          "jsonl/json file of your own: rows with `question` (or `problem`) and `answer`; a row's "
                          "`prompt`, if any, is the user message verbatim under `--template chat`. E.g. "
                          "`gsm8k,arith=data/arith.jsonl` (no commas in PATH); results and samples are keyed by NAME."})
    output_dir: str = field(
        default="outputs/eval",
        metadata={"help": "Run folder: results.json, samples/<benchmark>.jsonl. Rerunning into it resumes."})
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of benchmark data (<data_dir>/gsm8k/test.jsonl, ...); default $PRIFT_DATA_DIR, "
                          "else ../shared/data of the checkout when present, else each benchmark's hub id."})
    max_samples: int | None = field(default=None, metadata={"help": "Evaluate only the first N problems of each benchmark."})
    template: str = field(
        default="default",
        metadata={"help": f"Prompt template: {', '.join(n for n in TEMPLATES.names() if n != 'default')}, or default (each "
                          "benchmark's own: qwen-boxed for math, chat otherwise). Per benchmark: "
                          "`gsm8k=fewshot,humaneval=chat` (others keep the default), or `NAME,gsm8k=fewshot`. "
                          "lm-eval (gsm8k, math): lm-evaluation-harness 0.4.13's gsm8k 5-shot / minerva_math 4-shot "
                          "prompts, shots (seed 1234, a set per problem) and stops; results.json adds its filters' "
                          "verdicts under `lmeval` (gsm8k strict-match, flexible-extract; math math_verify). Use "
                          "--max_tokens 256 for lm-eval's default generation length."})
    use_chat_template: str = field(
        default="auto",
        metadata={"help": "Render prompts with the tokenizer's chat template: true, false, or auto (true when the "
                          "tokenizer has one, except for the fewshot template). on/off are read as true/false."})
    mc_scoring: Literal["generate", "loglik"] = field(
        default="generate",
        metadata={"help": "Multiple-choice benchmarks (medqa, medmcqa, mmlu_medical, pubmedqa): generate (a completion, "
                          "graded by its answer letter) or loglik (lm-eval's 0-shot context, the choice with the "
                          "highest log-likelihood; results.json metrics acc and acc_norm, norm = per character of "
                          "the choice; HF backend only)."})
    n: int = field(default=1, metadata={"help": "Samples per problem (k of avg@k, pass@k, maj@k)."})
    temperature: float | None = field(
        default=None, metadata={"help": "Sampling temperature; 0 = greedy. Default: each benchmark's harness's (greedy "
                                        "unless it samples, e.g. LiveCodeBench 0.2)."})
    top_p: float | None = field(default=None, metadata={"help": "Nucleus sampling top_p. Default: each benchmark's "
                                                                "harness's, else 1."})
    max_tokens: int | None = field(
        default=None, metadata={"help": "Maximum new tokens per sample. Default: each benchmark's own, from the harness "
                                        "its papers cite (math 2048, code 768, LiveCodeBench 1200, multiple choice 256)."})
    stop: list[str] = field(
        default_factory=list,
        metadata={"help": "Extra stop strings (the fewshot template adds its benchmark's own)."})
    seed: int = field(default=0, metadata={"help": "Sampling seed (each batch is seeded from it and its index)."})
    backend: Literal["hf", "vllm"] = field(default="hf", metadata={"help": "Generation backend: hf (transformers, CPU-capable) or "
                                                         "vllm (needs the vllm extra and a GPU)."})
    device: str | None = field(default=None, metadata={"help": "HF backend device; default cuda when present (under "
                                                                  "`accelerate launch`: each rank's own GPU)."})
    batch_size: int = field(default=8, metadata={"help": "HF backend: sequences per generate call."})
    chunk_size: int | None = field(
        default=None,
        metadata={"help": "Problems generated, graded and written per step (the resume granularity); default "
                          "batch_size // n for hf, 256 for vllm."})
    lcb_release: str | None = field(
        default=None,
        metadata={"help": "LiveCodeBench release, as lcb_runner's --release_version: release_v1 .. release_v6, "
                          "release_latest (test.jsonl .. test6.jsonl), v1 .. v6 (one file), vM_vN. Default: "
                          "release_latest when --lcb_data_path is given, else the 8-problem sample of the shared data."})
    lcb_data_path: str | None = field(
        default=None,
        metadata={"help": "LiveCodeBench: folder holding test.jsonl .. test6.jsonl of the hub dataset "
                          "livecodebench/code_generation_lite (default <data_dir>/livecodebench/code_generation_lite), "
                          "or one such jsonl file."})
    lcb_start_date: str | None = field(
        default=None, metadata={"help": "LiveCodeBench: first contest date (YYYY-MM-DD, inclusive)."})
    lcb_end_date: str | None = field(
        default=None, metadata={"help": "LiveCodeBench: last contest date (YYYY-MM-DD; contests up to its midnight, "
                                        "as lcb_runner compares)."})
    lcb_timeout: float = field(
        default=6.0, metadata={"help": "LiveCodeBench: seconds per test (and for compiling the program), lcb_runner's "
                                       "--timeout. The whole run is still bounded by --sandbox_timeout_s."})
    mbpp_plus_version: str = field(
        default="v0.2.0",
        metadata={"help": "MBPP+ data release: v0.2.0 (378 tasks, evalplus 0.3.1's default) or v0.1.0 (399 tasks, "
                          "the set of tables made with evalplus 0.2.x)."})
    evalplus_time_limit_factor: float = field(
        default=4.0, metadata={"help": "HumanEval+/MBPP+: an input's time limit is max(evalplus_min_time_limit, "
                                       "this x the canonical solution's time on it), evalplus's --gt-time-limit-factor."})
    evalplus_min_time_limit: float = field(
        default=1.0, metadata={"help": "HumanEval+/MBPP+: the least seconds an input may take, evalplus's "
                                       "--min-time-limit."})
    humaneval_plus_find_zero_fix: bool = field(
        default=False,
        metadata={"help": "HumanEval+: judge HumanEval/32 by its find_zero oracle, as evalplus's main branch does; "
                          "the default is evalplus 0.3.1 as released, which fails every HumanEval/32 program."})
    math_timeout_s: float = field(default=10.0, metadata={"help": "Hard timeout per math-verify comparison."})
    sandbox_timeout_s: float = field(default=10.0, metadata={"help": "Wall-clock limit per program run."})
    sandbox_memory_mb: int = field(default=1024, metadata={"help": "Address-space limit per program run."})
    sandbox_workers: int | None = field(default=None, metadata={"help": "Programs run at once; default CPU count."})
    vllm_tensor_parallel_size: int | None = field(
        default=None, metadata={"help": "vLLM: GPUs one model is split across; default all visible GPUs."})
    vllm_gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vLLM: fraction of GPU memory."})
    vllm_max_model_length: int | None = field(default=None, metadata={"help": "vLLM: context length limit."})
    perplexity: str | None = field(
        default=None,
        metadata={"help": "Also measure perplexity on a text dataset: a local .txt/.jsonl/.json file (`text` field) "
                          "or a hub id with optional config, e.g. `wikitext:wikitext-2-raw-v1`."})
    perplexity_split: str = field(default="test", metadata={"help": "Split of a hub perplexity dataset."})
    perplexity_window: int = field(default=1024, metadata={"help": "Tokens per perplexity forward window."})
    perplexity_stride: int = field(
        default=512, metadata={"help": "Window step; each token is scored once, with up to window-stride tokens of "
                                       "extra left context."})
    perplexity_max_tokens: int | None = field(
        default=None, metadata={"help": "Score only the first N tokens of the perplexity text."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars (samples/s)."})
    resume: bool = field(
        default=True,
        metadata={"help": "Keep the samples already in output_dir and generate only the missing ones (false: discard "
                          "them and start over)."})

    def __post_init__(self) -> None:
        from prift.eval.backends import BACKENDS
        from prift.eval.benchmarks import get_benchmark
        from prift.eval.templates import TEMPLATES

        for name, item in self.benchmark_items().items():  # validates every item, its settings and its sampling
            self.sampling(defaults=get_benchmark(item, self.data_dir, **self.benchmark_settings(name)).generation)
        for name in self.template_map().values():
            if name != "default" and name not in TEMPLATES:
                raise ValueError(f"template: unknown template {name!r}; valid: {', '.join(TEMPLATES.names())}")
        setting = str(self.use_chat_template).lower()  # a recipe's YAML bool arrives as a bool
        self.use_chat_template = CHAT_SETTINGS.get(setting, setting)
        if self.use_chat_template not in ("auto", "true", "false"):
            raise ValueError(f"use_chat_template: expected auto, true or false, got {self.use_chat_template!r}")
        if self.mc_scoring not in ("generate", "loglik"):
            raise ValueError(f"mc_scoring: expected generate or loglik, got {self.mc_scoring!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: unknown backend {self.backend!r}; valid: {', '.join(BACKENDS.names())}")
        if self.perplexity_stride < 1 or self.perplexity_stride > self.perplexity_window:
            raise ValueError("perplexity_stride must be in [1, perplexity_window]")

    @property
    def benchmark_list(self) -> list[str]:
        """The `benchmarks` items in order (`all` expanded): built-in names and `NAME=PATH` items."""
        from prift.eval.benchmarks import benchmark_names

        names = [b.strip() for b in self.benchmarks.split(",") if b.strip()]
        return benchmark_names() if names == ["all"] else names

    def benchmark_items(self) -> dict[str, str]:
        """{benchmark name: its item} in order; the name keys results, samples and per-benchmark settings.
        `ValueError` for a bad item (see `prift.eval.benchmarks.parse_benchmark`) or a name given twice."""
        from prift.eval.benchmarks import parse_benchmark

        items: dict[str, str] = {}
        for item in self.benchmark_list:
            try:
                name, _ = parse_benchmark(item)
            except ValueError as err:
                raise ValueError(f"benchmarks: {err}") from err
            if name in items:
                raise ValueError(f"benchmarks: {name!r} is given twice ({items[name]!r} and {item!r})")
            items[name] = item
        return items

    def template_map(self) -> dict[str, str]:
        """{benchmark or "*": template name} from `NAME` / `bench=NAME` items."""
        mapping = {"*": "default"}
        for item in (i.strip() for i in self.template.split(",") if i.strip()):
            bench, _, name = item.rpartition("=")
            mapping[bench.strip() or "*"] = name.strip()
        return mapping

    def template_for(self, benchmark: str) -> str:
        mapping = self.template_map()
        return mapping.get(benchmark, mapping["*"])

    def benchmark_settings(self, benchmark: str) -> dict:
        if benchmark == "livecodebench":
            return {"release": self.lcb_release, "data_path": self.lcb_data_path, "start_date": self.lcb_start_date,
                    "end_date": self.lcb_end_date, "timeout": self.lcb_timeout}
        if benchmark in ("humaneval_plus", "mbpp_plus"):
            limits = {"time_limit_factor": self.evalplus_time_limit_factor, "min_time_limit": self.evalplus_min_time_limit}
            if benchmark == "mbpp_plus":
                return {"version": self.mbpp_plus_version, **limits}
            return {"find_zero_fix": self.humaneval_plus_find_zero_fix, **limits}
        return {}

    def sampling(self, extra_stop: tuple[str, ...] = (), defaults: dict | None = None):
        """The sampling of one benchmark: each of temperature, top_p, max_tokens is this config's value when set,
        else the benchmark's ``defaults`` (``Benchmark.generation``), else greedy / top_p 1; ``ValueError`` when
        neither sets max_tokens."""
        from prift.eval.backends import Sampling

        chosen = {**SAMPLING_FALLBACK, **(defaults or {})}
        chosen.update({k: getattr(self, k) for k in ("temperature", "top_p", "max_tokens") if getattr(self, k) is not None})
        if chosen.get("max_tokens") is None:
            raise ValueError("max_tokens: this benchmark sets no default (Benchmark.generation); pass --max_tokens")
        return Sampling(n=self.n, **chosen, stop=tuple(dict.fromkeys([*self.stop, *extra_stop])))

    def backend_settings(self) -> dict:
        if self.backend == "vllm":
            return {"dtype": self.dtype, "tensor_parallel_size": self.vllm_tensor_parallel_size, "seed": self.seed,
                    "gpu_memory_utilization": self.vllm_gpu_memory_utilization,
                    "max_model_len": self.vllm_max_model_length}
        return {"dtype": self.dtype, "device": self.device, "batch_size": self.batch_size,
                "attn_implementation": self.attn_implementation}

    def problems_per_chunk(self) -> int:
        if self.chunk_size:
            return self.chunk_size
        return 256 if self.backend == "vllm" else max(1, self.batch_size // self.n)
