"""Evaluation throughput, measured side by side in one run (issue 5).

1. CPU (always): SmolLM2-135M-Instruct, greedy, on the first ``--problems`` GSM8K test problems (``qwen-boxed``
   prompt, chat template on, ``--max_tokens`` new tokens): HF ``generate`` batched (``--batch_size`` sequences,
   left-padded) vs one prompt at a time. Reports samples/s and tokens/s of each and their ratio, how many
   completions agree exactly, and the time ``prift.eval.grading.grade`` takes as a fraction of generation plus
   grading.
2. GPU (when CUDA is present): HF batched generation on the GPU, and vLLM on the same prompts when vLLM is
   installed: tokens/s of each and the ratio.

3. prift vs lm-eval (issue 18; needs the ``crosscheck`` extra, skipped with ``--lmeval_problems 0``): the first
   ``--lmeval_problems`` GSM8K test problems, lm-eval's 5-shot prompts (prift ``--template lm-eval``), greedy,
   ``--lmeval_max_tokens`` new tokens, the HF backend on the CPU, one run of each through
   ``benchmarks/crosscheck_lmeval.py`` (``prift.eval.runner.evaluate`` vs ``lm_eval.simple_evaluate``, each wall
   time including its model load and data reading): samples/s of each, their ratio (issue target >= 1.5x) and
   identical per-filter verdicts; then MedQA log-likelihood multiple choice (``--mc_scoring loglik`` vs lm-eval's
   ``medqa_4options``) on the same number of problems: problems/s, ratio, identical acc/acc_norm verdicts.

Run: ``.venv/bin/python benchmarks/eval_throughput.py`` (the issue's setting: 64 problems; on a busy 2-core CPU
``--problems 16 --max_tokens 48`` takes a few minutes). Prints the load average at start and end, since
concurrent work skews the ratios.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

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


def versus_lmeval(args) -> None:
    """Part 3: one run each of lm-eval and prift on the same problems (see the module docstring)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from crosscheck_lmeval import compare, run_lmeval, run_prift

    from prift.core.paths import data_root
    from prift.models.loading import resolve_model_path

    model, n = resolve_model_path(args.model), args.lmeval_problems
    for task, unit in (("gsm8k", "samples"), ("medqa", "problems")):
        print(f"\n3. prift vs lm-eval, {task}, {n} problems, greedy, HF backend on the CPU, batch {args.batch_size}")
        theirs, their_s = run_lmeval(task, model, n, args.lmeval_max_tokens, args.batch_size, data_root(None))
        with tempfile.TemporaryDirectory() as out:
            ours, our_s = run_prift(task, model, n, args.lmeval_max_tokens, args.batch_size, Path(out))
        print(f"  lm-eval {n / their_s:.3f} {unit}/s ({their_s:.1f} s), prift {n / our_s:.3f} {unit}/s ({our_s:.1f} s): "
              f"prift / lm-eval = {their_s / our_s:.2f}x")
        compare(task, theirs, ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--lmeval_problems", type=int, default=50)
    parser.add_argument("--lmeval_max_tokens", type=int, default=256)
    parser.add_argument("--skip_local", action="store_true", help="skip parts 1 and 2 (batched vs single, GPU)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}; torch threads: {torch.get_num_threads()}")
    if args.lmeval_problems:
        versus_lmeval(args)
    if args.skip_local:
        return
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
