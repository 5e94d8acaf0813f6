"""Evaluation throughput, measured side by side in one run (issue 5).

1. CPU (always): SmolLM2-135M-Instruct, greedy, on the first ``--problems`` GSM8K test problems (``qwen-boxed``
   prompt, chat template on, ``--max_tokens`` new tokens): HF ``generate`` batched (``--batch_size`` sequences,
   left-padded) vs one prompt at a time. Reports samples/s and tokens/s of each and their ratio, how many
   completions agree exactly, and the time ``prift.eval.grading.grade`` takes as a fraction of generation plus
   grading.
2. GPU (when CUDA is present): HF batched generation on the GPU, and vLLM on the same prompts when vLLM is
   installed: tokens/s of each and the ratio.

Run: ``.venv/bin/python benchmarks/eval_throughput.py`` (the issue's setting: 64 problems; on a busy 2-core CPU
``--problems 16 --max_tokens 48`` takes a few minutes). Prints the load average at start and end, since
concurrent work skews the ratios.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from prift.eval.backend_hf import HFBackend
from prift.eval.backends import Sampling
from prift.eval.benchmarks import get_benchmark
from prift.eval.grading import grade
from prift.eval.templates import TEMPLATES, render


def timed_generate(backend, prompts: list[str], sampling: Sampling, one_at_a_time: bool) -> tuple[list, float]:
    started = time.perf_counter()
    if one_at_a_time:
        outputs = [backend.generate([p], [1], sampling, seed=0)[0] for p in prompts]
    else:
        outputs = backend.generate(prompts, [1] * len(prompts), sampling, seed=0)
    return [o[0] for o in outputs], time.perf_counter() - started


def rates(label: str, gens: list, seconds: float) -> float:
    tokens = sum(g.tokens for g in gens)
    print(f"  {label:<28} {len(gens) / seconds:7.3f} samples/s  {tokens / seconds:8.1f} tokens/s  ({seconds:.1f} s, "
          f"{tokens} tokens)")
    return len(gens) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}; torch threads: {torch.get_num_threads()}")
    bench = get_benchmark("gsm8k")
    problems = bench.load(limit=args.problems).problems
    sampling = Sampling(n=1, temperature=0.0, max_tokens=args.max_tokens)

    backend = HFBackend(args.model, device="cpu", dtype="float32", batch_size=args.batch_size)
    prompts = [render(TEMPLATES.get("qwen-boxed"), bench, p, backend.tokenizer, chat=True) for p in problems]
    print(f"\n1. CPU, {args.model}, greedy, {len(prompts)} GSM8K problems, max_tokens={args.max_tokens}")
    batched, batched_s = timed_generate(backend, prompts, sampling, one_at_a_time=False)
    single, single_s = timed_generate(backend, prompts, sampling, one_at_a_time=True)
    rate_b = rates(f"HF batched (batch {args.batch_size})", batched, batched_s)
    rate_1 = rates("HF one at a time", single, single_s)
    print(f"  batched / one-at-a-time samples/s ratio: {rate_b / rate_1:.2f}x")
    same = sum(a.text == b.text for a, b in zip(batched, single, strict=True))
    print(f"  identical completions batched vs single: {same}/{len(prompts)}")
    started = time.perf_counter()
    grades = grade(bench, problems, [g.text for g in batched])
    grade_s = time.perf_counter() - started
    print(f"  grading {len(grades)} completions: {grade_s:.3f} s = {grade_s / (grade_s + batched_s):.2%} of "
          f"batched generation + grading ({sum(g.status == 'correct' for g in grades)} correct)")

    if torch.cuda.is_available():
        print("\n2. GPU")
        gpu = HFBackend(args.model, device="cuda", batch_size=len(prompts))
        gens, seconds = timed_generate(gpu, prompts, sampling, one_at_a_time=False)
        hf_rate = sum(g.tokens for g in gens) / seconds
        rates("HF batched on GPU", gens, seconds)
        try:
            from prift.eval.backend_vllm import VLLMBackend

            vllm = VLLMBackend(args.model)
            gens, seconds = timed_generate(vllm, prompts, sampling, one_at_a_time=False)
            rates("vLLM", gens, seconds)
            print(f"  vLLM / HF tokens/s ratio: {sum(g.tokens for g in gens) / seconds / hf_rate:.2f}x")
        except ImportError as exc:
            print(f"  vLLM not measured: {exc}")
    else:
        print("\n2. GPU: no CUDA device here; vLLM vs HF not measured")
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
