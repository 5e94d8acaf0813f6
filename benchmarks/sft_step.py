"""Token-priority SFT cost, measured side by side in one run (SmolLM2-135M; CPU, or GPU when present).

Prints, for each variant, the median train-step time (forward + backward + AdamW, TRL's own loop) and peak memory
as a ratio to plain NLL, plus the reference-cache build throughput as a ratio to a raw no-grad forward.

Targets (issue 3): cached PriFT step <= 1.03x NLL and peak memory <= 1.02x NLL; on-the-fly reference <= 1.30x NLL;
cache build >= 0.9x raw forward. Issue 20: the objectives on the top-k cache (asft, gift, eksft, pear) <= 1.10x NLL
time and <= 1.05x memory at k = 64; the top-k cache build >= 0.85x raw forward.

    python benchmarks/sft_step.py                     # full table (~10 min on 2 CPU cores)
    python benchmarks/sft_step.py --rounds 1 --steps 2 --rows 16 --skip-memory   # quick look
    python benchmarks/sft_step.py --packing           # the same ratios with packed, padding-free batches

Step times interleave the variants step by step on one shared model and optimizer, so whatever else the machine does
hits them alike; peak memory runs each variant in its own process (CPU: largest resident set sampled during training;
GPU: torch.cuda.max_memory_allocated).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "recipes" / "data" / "gsm8k_train_sample.jsonl"
VARIANTS = {  # name -> (method, reference_mode)
    "nll": ("nll", "cache"),
    "dft": ("dft", "cache"),
    "prift_prob (cached)": ("prift_prob", "cache"),
    "prift_mass (cached)": ("prift_mass", "cache"),
    "prift_prob (on-the-fly)": ("prift_prob", "live"),
    "prift_mass (on-the-fly)": ("prift_mass", "live"),
    "asft (top-k cache)": ("asft", "cache"),
    "gift (top-k cache)": ("gift", "cache"),
    "eksft (top-k cache)": ("eksft", "cache"),
    "pear (cached logp)": ("pear", "cache"),
}


def make_config(args, method: str, mode: str, out: str):
    from prift.sft.config import PriftSFTConfig
    from prift.sft.methods import resolve_method

    return PriftSFTConfig(
        top_k=args.top_k if resolve_method(method).needs_topk else None,
        model_name_or_path=args.model, dataset=str(DATA), dataset_format="gsm8k", max_samples=args.rows,
        method=method, reference_mode=mode, output_dir=out, max_steps=args.steps, max_length=args.max_length,
        per_device_train_batch_size=args.batch, logging_steps=1000, save_strategy="no", disable_tqdm=True,
        report_to="none", seed=0, reference_cache_dir=args.cache_dir, resume=False, dataloader_num_workers=0,
        packing=args.packing)


def build_trainer(config, policy=None):
    """The same set-up `run_sft` does, stopping short of train(); `policy` reuses an already loaded model."""
    from prift.core.provenance import RunRecord
    from prift.models.loading import load_causal_lm, load_tokenizer
    from prift.sft.data import load_sft_dataset
    from prift.sft.sources import OnlineSource
    from prift.sft.train import _Setup
    from prift.sft.trainer import PriorityTrainer

    method = config.resolved_method()
    tokenizer = load_tokenizer(config.model_name_or_path)
    policy = policy if policy is not None else load_causal_lm(config.model_name_or_path, config.dtype)
    dataset, _ = load_sft_dataset(config.dataset, adapter=config.dataset_format, max_samples=config.max_samples)
    trainer = PriorityTrainer(model=policy, args=config, train_dataset=dataset, processing_class=tokenizer,
                              method=method, source=OnlineSource())
    source, reference, tokenized = _Setup(config, trainer.model, tokenizer, RunRecord("bench", config)).sources(
        method, trainer.train_dataset)
    trainer.set_sources(source, reference)
    trainer.train_dataset = tokenized
    return trainer


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def interleaved_step_times(args, out: str) -> dict[str, list[float]]:
    """Train-step seconds per variant, the variants taking turns step by step on one shared model and AdamW.

    A step is TRL's `training_step` (forward through our `compute_loss`, backward) plus the optimizer step, on the
    same batches for every variant (same seed, same sampler). Taking turns step by step spreads whatever else the
    machine does evenly over the variants.
    """
    from prift.models.loading import load_causal_lm

    policy = load_causal_lm(args.model, "auto", "cuda" if torch.cuda.is_available() else None)
    trainers = {name: build_trainer(make_config(args, *VARIANTS[name], f"{out}/{i}"), policy)
                for i, name in enumerate(VARIANTS)}
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-7)
    batches = {name: [trainer._prepare_inputs(b) for b in trainer.get_train_dataloader()][: args.steps]
               for name, trainer in trainers.items()}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for step in range(args.steps * args.rounds):
        for name in names[step % len(names):] + names[: step % len(names)]:  # rotate who goes first
            batch = dict(batches[name][step % len(batches[name])])
            _sync()
            start = time.perf_counter()
            tokens = (batch["labels"][:, 1:] != -100).sum()  # what Trainer passes as num_items_in_batch
            trainers[name].training_step(policy, batch, tokens)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            _sync()
            if step > 0:  # the first step allocates AdamW state
                times[name].append(time.perf_counter() - start)
        print(f"  step {step + 1}/{args.steps * args.rounds}: " + ", ".join(
            f"{n} {times[n][-1]:.2f}s" for n in names if times[n]), flush=True)
    return times


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def peak_memory_worker(args, name: str) -> None:
    """Child process: train `steps` steps of one variant; print the peak memory *while training* in bytes.

    CPU: the largest resident set sampled every 5 ms during `train()` (the process-lifetime ru_maxrss is set by a
    start-up transient that is the same for every variant). GPU: torch.cuda.max_memory_allocated over training.
    """
    method, mode = VARIANTS[name]
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(make_config(args, method, mode, out))
        peak, done = [_rss_bytes()], threading.Event()

        def sample():
            while not done.wait(0.005):
                peak[0] = max(peak[0], _rss_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        sampler.start()
        trainer.train()
        done.set()
        sampler.join()
    print(json.dumps({"peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else peak[0]}))


def peak_memory(args, name: str) -> int:
    cmd = [sys.executable, __file__, "--worker", name, "--model", args.model, "--rows", str(args.rows),
           "--top-k", str(args.top_k),
           "--steps", str(args.steps), "--batch", str(args.batch), "--max-length", str(args.max_length),
           "--cache-dir", args.cache_dir, *(["--packing"] if args.packing else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]


@torch.no_grad()
def cache_vs_forward(args) -> tuple[float, float, float]:
    """(cache build tokens/s, top-k cache build tokens/s, raw no-grad forward tokens/s) over the same tokenized rows
    and batch size."""
    from prift.sft.reference_cache import CacheKey, ReferenceCache

    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer(make_config(args, "nll", "cache", out))
    model, dataset = trainer.model.eval(), trainer.train_dataset
    pad = trainer.processing_class.pad_token_id
    device = next(model.parameters()).device
    lengths = [len(ids) for ids in dataset["input_ids"]]
    tokens = sum(lengths)
    order = sorted(range(len(dataset)), key=lambda r: lengths[r])
    batches = [order[i:i + args.batch] for i in range(0, len(order), args.batch)]

    def raw_forward() -> float:
        start = time.perf_counter()
        for rows in batches:
            width = max(lengths[r] for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            att = torch.zeros_like(ids)
            for i, r in enumerate(rows):
                ids[i, :lengths[r]] = torch.tensor(dataset[r]["input_ids"])
                att[i, :lengths[r]] = 1
            model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float().log_softmax(-1)
        return time.perf_counter() - start

    def build(top_k: int | None) -> float:
        with tempfile.TemporaryDirectory() as cache_dir:
            key = CacheKey("bench", "x", "x", None, None, "x", top_k=top_k)
            cache = ReferenceCache(cache_dir, key, shard_rows=len(dataset))
            start = time.perf_counter()
            cache.build(model, dataset, batch_size=args.batch, pad_token_id=pad, progress=False)
            return time.perf_counter() - start

    build_times, topk_times, raw_times = [], [], []
    for _ in range(2):
        build_times.append(build(None))
        topk_times.append(build(args.top_k))
        raw_times.append(raw_forward())
    return tokens / min(build_times), tokens / min(topk_times), tokens / min(raw_times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="start checkpoint (hub id, path, embedded)")
    parser.add_argument("--rows", type=int, default=64, help="GSM8K sample rows to train on")
    parser.add_argument("--steps", type=int, default=4, help="distinct batches per variant (steps per round)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over those batches; the first step is dropped")
    parser.add_argument("--batch", type=int, default=4, help="per-device batch size")
    parser.add_argument("--max-length", type=int, default=256, help="max tokens per row")
    parser.add_argument("--cache-dir", default=None, help="reference cache folder (default: a temp dir)")
    parser.add_argument("--top-k", type=int, default=64, help="k of the top-k cache the asft/gift/eksft variants read")
    parser.add_argument("--packing", action="store_true",
                        help="train on packed rows (TRL's BFD packing, padding-free): a batch is --batch sequences "
                             "of --max-length tokens")
    parser.add_argument("--skip-memory", action="store_true", help="skip the per-variant peak-memory processes")
    parser.add_argument("--memory-only", action="store_true", help="only the per-variant peak-memory processes")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        peak_memory_worker(args, args.worker)
        return 0
    holder = tempfile.TemporaryDirectory() if args.cache_dir is None else None
    args.cache_dir = args.cache_dir or holder.name
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    print(f"# SFT step cost: {args.model} on {device}, batch {args.batch} x <= {args.max_length} tokens"
          f"{' (packed)' if args.packing else ''}, "
          f"{args.steps * args.rounds - 1} timed steps per variant, interleaved", flush=True)

    if args.memory_only:
        for name in VARIANTS:
            print(f"| {name} | {peak_memory(args, name) / 2**30:.3f} GiB |", flush=True)
        return 0
    build_tps, topk_tps, raw_tps = cache_vs_forward(args)
    with tempfile.TemporaryDirectory() as out:
        times = interleaved_step_times(args, out)
    memory = {} if args.skip_memory else {name: peak_memory(args, name) for name in VARIANTS}

    base_time = statistics.median(times["nll"])
    print("\n| variant | step time (s) | step / NLL | peak memory (GiB) | memory / NLL |")
    print("|---|---|---|---|---|")
    for name in VARIANTS:
        step = statistics.median(times[name])
        mem = memory.get(name)
        mem_cells = f"{mem / 2**30:.2f} | {mem / memory['nll']:.3f}" if mem else "- | -"
        print(f"| {name} | {step:.2f} | {step / base_time:.3f} | {mem_cells} |")
    print(f"\ncache build: {build_tps:,.0f} tokens/s vs raw no-grad forward {raw_tps:,.0f} tokens/s "
          f"-> ratio {build_tps / raw_tps:.3f}")
    print(f"top-{args.top_k} cache build: {topk_tps:,.0f} tokens/s -> ratio to raw forward {topk_tps / raw_tps:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
