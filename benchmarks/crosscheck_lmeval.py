"""prift's lm-eval parity mode (``--template lm-eval``, :mod:`prift.eval.lmeval`) beside lm-evaluation-harness
itself, problem by problem: identical prompts, identical greedy completions, identical per-filter verdicts.

lm-eval side: its own ``gsm8k`` task (and ``minerva_math_<subject>`` with ``--tasks minerva_math``), loaded from the
installed lm-eval's YAML through an ``include`` override that points ``dataset_path: json`` at the shared data
(``gsm8k/{train,test}.jsonl``; ``math/test.jsonl`` filtered to one subject by ``process_docs``), since this machine
has no hub. ``simple_evaluate(model="hf", ..., limit=N, log_samples=True)`` with lm-eval's default
``fewshot_random_seed`` 1234, greedy, ``max_gen_toks``, float32 on the CPU. Prompts = each logged sample's
``arguments`` context; completions = ``resps``; verdicts = each filter's ``exact_match`` (gsm8k) or
``math_verify`` (minerva_math).

minerva_math: lm-eval's ``tasks/minerva_math/utils.py`` refuses to import unless antlr4-python3-runtime is 4.11
(sympy's ``parse_latex``, for its ``exact_match``), while math-verify here runs on 4.13. This script makes that
version check pass (``importlib.metadata.version`` answers 4.11 for antlr4 while lm-eval's tasks load) so the
prompts and ``math_verify`` can be compared; lm-eval's ``exact_match`` may then fail on answers that differ from
the gold as strings, which the script reports as lm-eval's error for that problem.

``--tasks medqa``: lm-eval's ``medqa_4options`` (loglikelihood, acc / acc_norm) on the shared MedQA file, its rows
mapped to the hub layout (``sent1``, ``ending0..3``, ``label``) by ``process_docs``; prift's side is
``--mc_scoring loglik``; outputs compare each choice's loglikelihood within 1e-3.

prift side: ``prift.eval.runner.evaluate`` with ``--template lm-eval``, the same model, ``--max_tokens``, greedy,
the HF backend; prompts, completions and ``row["lmeval"]`` verdicts from its samples file.

``--prompts_only PATH`` builds lm-eval's prompts without a model (``build_all_requests`` after
``set_fewshot_seed(1234)``) and writes them as the fixture ``tests/test_eval_lmeval_cpu.py`` checks.

Run: ``.venv/bin/python benchmarks/crosscheck_lmeval.py [--tasks gsm8k,minerva_math] [--limit 5]
[--max_tokens 128] [--batch_size 8] [--model smollm2-135m-instruct] [--prompts_only tests/fixtures/...json]``
(needs ``pip install -e .[crosscheck]``: lm-eval[hf]).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from prift.core.paths import data_root  # noqa: E402
from prift.eval.config import EvalConfig  # noqa: E402
from prift.eval.runner import evaluate  # noqa: E402
from prift.models.embedded import EMBEDDED_NAME  # noqa: E402
from prift.models.loading import resolve_model_path  # noqa: E402

MINERVA_SUBJECT = "algebra"  # prift's MATH test file is sorted by subject: its first rows are algebra


def task_yaml(folder: Path, task: str, data: Path) -> str:
    """Write an lm-eval task YAML that includes the installed task and reads the shared data; return its name."""
    import lm_eval

    tasks = Path(lm_eval.__file__).parent / "tasks"
    if task == "gsm8k":
        name, body = "gsm8k_prift_local", (
            f"include: {tasks / 'gsm8k' / 'gsm8k.yaml'}\ntask: gsm8k_prift_local\ndataset_path: json\n"
            f"dataset_name: null\ndataset_kwargs:\n  data_files:\n    train: {data / 'gsm8k/train.jsonl'}\n"
            f"    test: {data / 'gsm8k/test.jsonl'}\n")
    elif task == "medqa":
        (folder / "local_medqa.py").write_text(
            "def process_docs(dataset):\n    return dataset.map(lambda d: {'sent1': d['data']['question'], "
            "'label': 'ABCD'.index(d['data']['answer_idx']), **{f'ending{i}': d['data'][f'option_{k}'] "
            "for i, k in enumerate('ABCD')}})\n")
        name, body = "medqa_prift_local", (
            f"include: {tasks / 'medqa' / 'medqa.yaml'}\ntask: medqa_prift_local\ndataset_path: json\n"
            f"dataset_name: null\ntraining_split: null\nvalidation_split: null\n"
            f"process_docs: !function local_medqa.process_docs\ndataset_kwargs:\n  data_files:\n"
            f"    test: {data / 'medqa/medqa_usmle_4options_test.json'}\n")
    else:
        (folder / "local_math.py").write_text(
            "from lm_eval.tasks.minerva_math.utils import process_docs as _minerva\n\n\n"
            f"def process_docs(dataset):\n    return _minerva(dataset.filter(lambda d: d['type'] == "
            f"{MINERVA_SUBJECT.capitalize()!r}))\n")
        name, body = "minerva_math_prift_local", (
            f"include: {tasks / 'minerva_math' / 'minerva_math_algebra.yaml'}\ntask: minerva_math_prift_local\n"
            f"dataset_path: json\ndataset_name: null\nprocess_docs: !function local_math.process_docs\n"
            f"dataset_kwargs:\n  data_files:\n    train: {data / 'math/train.jsonl'}\n"
            f"    test: {data / 'math/test.jsonl'}\n")
    (folder / f"{name}.yaml").write_text(body)
    return name


@contextmanager
def antlr_411():
    """Let lm-eval's minerva_math utils import (module docstring): antlr4's version reads 4.11 meanwhile."""
    real = importlib.metadata.version
    importlib.metadata.version = lambda dist: "4.11.0" if dist == "antlr4-python3-runtime" else real(dist)
    try:
        yield
    finally:
        importlib.metadata.version = real


def lmeval_prompts(task: str, limit: int, data: Path) -> list[str]:
    """lm-eval's contexts for the first ``limit`` docs of ``task`` (no model)."""
    from lm_eval.tasks import TaskManager, get_task_dict

    with tempfile.TemporaryDirectory() as folder, antlr_411():
        name = task_yaml(Path(folder), task, data)
        task_obj = get_task_dict([name], TaskManager(include_path=folder))[name]
        task_obj.set_fewshot_seed(1234)
        task_obj.build_all_requests(limit=limit)
        return [inst.arguments[0] for inst in sorted(task_obj.instances, key=lambda i: i.doc_id)]


def run_lmeval(task: str, model: str, limit: int, max_tokens: int, batch_size: int, data: Path) -> tuple[dict, float]:
    """{doc_id: {"prompt", "completion" (loglik tasks: "logliks"), "verdicts": {filter or metric: bool}}} of
    lm-eval's own run, and its seconds."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as folder, antlr_411():
        name = task_yaml(Path(folder), task, data)
        started = time.perf_counter()
        out = simple_evaluate(model="hf", model_args=f"pretrained={model},dtype=float32", tasks=[name],
                              task_manager=TaskManager(include_path=folder), limit=limit, device="cpu",
                              batch_size=batch_size, log_samples=True, gen_kwargs=f"max_gen_toks={max_tokens}",
                              fewshot_random_seed=1234)
        seconds = time.perf_counter() - started
    docs: dict[int, dict] = {}
    if task == "medqa":
        for sample in out["samples"][name]:
            docs[sample["doc_id"]] = {"prompt": sample["arguments"][0][0], "logliks": [r[0][0] for r in sample["resps"]],
                                      "verdicts": {m: bool(sample[m]) for m in ("acc", "acc_norm")}}
        return docs, seconds
    metric = "exact_match" if task == "gsm8k" else "math_verify"
    for sample in out["samples"][name]:
        doc = docs.setdefault(sample["doc_id"], {"prompt": sample["arguments"][0][0],
                                                 "completion": sample["resps"][0][0], "verdicts": {}})
        key = sample["filter"] if task == "gsm8k" else metric
        doc["verdicts"][key] = bool(sample[metric])
    return docs, seconds


def run_prift(task: str, model: str, limit: int, max_tokens: int, batch_size: int, out: Path) -> tuple[dict, float]:
    """{row index: {"prompt", "completion", "verdicts"}} of prift's parity mode, and its seconds."""
    bench = {"gsm8k": "gsm8k", "minerva_math": "math"}.get(task, task)
    started = time.perf_counter()
    evaluate(EvalConfig(model_name_or_path=model, benchmarks=bench, template="lm-eval" if bench != "medqa" else "default",
                        mc_scoring="loglik", max_samples=limit, max_tokens=max_tokens, batch_size=batch_size,
                        dtype="float32", device="cpu", output_dir=str(out), progress=False, resume=False))
    seconds = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "samples" / f"{bench}.jsonl").read_text().splitlines()]
    if bench == "medqa":
        return {i: {"prompt": r["prompt"], "logliks": r.get("logliks"),
                    "verdicts": {m: bool(r.get(m)) for m in ("acc", "acc_norm")}} for i, r in enumerate(rows)}, seconds
    return {i: {"prompt": r["prompt"], "completion": r["completion"],
                "verdicts": {k: v["correct"] for k, v in (r.get("lmeval") or {}).items()}}
            for i, r in enumerate(rows)}, seconds


def same_output(a: dict, b: dict) -> bool:
    """Identical completions; for loglik tasks every choice's loglikelihood within 1e-3 (batching noise)."""
    if "logliks" in a:
        return b.get("logliks") is not None and all(abs(x - y) < 1e-3 for x, y in zip(a["logliks"], b["logliks"],
                                                                                    strict=True))
    return a["completion"] == b.get("completion")


def compare(task: str, theirs: dict, ours: dict) -> dict:
    ids = sorted(theirs)
    same = {"prompt": sum(theirs[i]["prompt"] == ours.get(i, {}).get("prompt") for i in ids),
            "completion": sum(same_output(theirs[i], ours.get(i, {})) for i in ids),
            "verdicts": sum(theirs[i]["verdicts"] == ours.get(i, {}).get("verdicts") for i in ids)}
    output = "loglikelihoods (1e-3)" if task == "medqa" else "completions"
    print(f"{task}: identical prompts {same['prompt']}/{len(ids)}, identical {output} {same['completion']}/"
          f"{len(ids)}, identical per-filter verdicts {same['verdicts']}/{len(ids)}")
    for i in ids:
        if theirs[i]["verdicts"] != ours.get(i, {}).get("verdicts") or not same_output(theirs[i], ours.get(i, {})):
            their, our = (theirs[i].get("logliks") or theirs[i]["completion"][-80:],
                          ours.get(i, {}).get("logliks") or (ours.get(i, {}).get("completion") or "")[-80:])
            print(f"  doc {i}: lm-eval {theirs[i]['verdicts']} {their!r}\n         prift   "
                  f"{ours.get(i, {}).get('verdicts')} {our!r}")
    return {"task": task, "problems": len(ids), **{f"identical_{k}": v for k, v in same.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="gsm8k,minerva_math")
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--max_tokens", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--model", default=EMBEDDED_NAME)
    parser.add_argument("--prompts_only", type=Path, help="write lm-eval's prompts as a test fixture and stop")
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args()
    data = data_root(None)
    if data is None:
        sys.exit("no benchmark data: set $PRIFT_DATA_DIR or place ../shared/data")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if args.prompts_only:
        import lm_eval

        fixture = {"made_by": f"benchmarks/crosscheck_lmeval.py --tasks {args.tasks} --limit {args.limit} "
                              f"--prompts_only {args.prompts_only}", "lm_eval": lm_eval.__version__,
                   "minerva_subject": MINERVA_SUBJECT,
                   "prompts": {t: lmeval_prompts(t, args.limit, data) for t in tasks}}
        args.prompts_only.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.prompts_only}")
        return
    model = resolve_model_path(args.model)
    summary = []
    for task in tasks:
        theirs, their_s = run_lmeval(task, model, args.limit, args.max_tokens, args.batch_size, data)
        with tempfile.TemporaryDirectory() as out:
            ours, our_s = run_prift(task, model, args.limit, args.max_tokens, args.batch_size, Path(out))
        summary.append({**compare(task, theirs, ours), "lmeval_s": round(their_s, 1), "prift_s": round(our_s, 1)})
        print(f"  wall time: lm-eval {their_s:.1f} s, prift {our_s:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
