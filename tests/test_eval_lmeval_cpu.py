"""lm-eval parity (``prift.eval.lmeval``): prompts identical to lm-eval's rendered ones (fixture), its filters'
verdicts, and ``--mc_scoring loglik`` against a naive per-pair forward on a tiny model, resumable.

``fixtures/lmeval_prompts.json`` holds the contexts lm-eval 0.4.13 built itself for the first 8 docs of ``gsm8k``
(5-shot, default sampler, seed 1234) and ``minerva_math_algebra`` (4 Minerva shots), from the shared data; it was
made by the command in its ``made_by`` field (``benchmarks/crosscheck_lmeval.py --prompts_only``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prift.core.paths import data_root
from prift.eval.backend_hf import HFBackend
from prift.eval.backends import Generation
from prift.eval.benchmarks import get_benchmark
from prift.eval.config import EvalConfig
from prift.eval.lmeval import gsm8k_exact_match, mc_request, parity_task, regex_extract
from prift.eval.runner import evaluate
from prift.eval.templates import TEMPLATES, render
from prift.models.tiny import save_tiny_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "lmeval_prompts.json"
needs_data = pytest.mark.skipif(data_root() is None, reason="benchmark data dir ($PRIFT_DATA_DIR or ../shared/data) absent")


@needs_data
@pytest.mark.parametrize(("task", "bench"), [("gsm8k", "gsm8k"), ("minerva_math", "math")])
def test_prompts_are_lm_evals_own_in_any_order(task, bench):
    expected = json.loads(FIXTURE.read_text())["prompts"][task]
    benchmark = get_benchmark(bench)
    problems = benchmark.load(limit=len(expected)).problems
    lm_eval = TEMPLATES.get("lm-eval")
    # rendered last-first: a problem's shots depend on its row only, so chunks and resumes see lm-eval's prompts
    ours = {p.id: render(lm_eval, benchmark, p) for p in reversed(problems)}
    assert [ours[p.id] for p in problems] == expected
    if task == "gsm8k":  # lm-eval samples a different shot set per problem
        assert len({prompt.split("\n\n")[0] for prompt in expected}) > 1


def test_gsm8k_filters_follow_lm_eval():
    reference = "She sells 16 - 3 - 4 = 9 eggs.\n#### 1,018"
    assert regex_extract("so #### 1,018\n\nQuestion: x", r"#### (\-?[0-9\.\,]+)", 0) == "1,018"
    assert gsm8k_exact_match("1,018", reference)
    flexible = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
    assert regex_extract("Pay $12, then 7 more: $1018.", flexible, -1) == "$1018."  # last match, first group
    assert regex_extract("it is 7", flexible, -1) == "7"  # second group when the first is empty
    assert gsm8k_exact_match("$1018.", reference)
    assert regex_extract("no number", flexible, -1) == "[invalid]"
    assert not gsm8k_exact_match("[invalid]", reference)
    assert not gsm8k_exact_match("1017", reference)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("lmeval-tiny") / "qwen2", arch="qwen2", seed=0)


@pytest.fixture(scope="module")
def backend(tiny):
    return HFBackend(str(tiny), device="cpu", dtype="float32", batch_size=3)


def naive_loglik(backend: HFBackend, context: str, continuation: str) -> float:
    """One unpadded forward of the whole text; the continuation's tokens are those past tokenize(context) once
    the context's trailing spaces are moved over (lm-eval's split)."""
    tok = backend.tokenizer
    stripped = context.rstrip()
    whole = tok(context + continuation)["input_ids"]
    split = len(tok(stripped)["input_ids"])
    with torch.no_grad():
        logits = backend.model(input_ids=torch.tensor([whole])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(logprobs[i - 1, whole[i]].item() for i in range(split, len(whole)))


def test_loglikelihood_matches_a_naive_forward_per_pair(backend):
    pairs = [("Question: what?\nAnswer:", " A"), ("Question: what?\nAnswer:", " maybe so"),
             ("short", " yes"), ("A much longer context, with several more words than the others, ends:", " no"),
             ("Answer: ", "B")]  # trailing space: moved to the continuation
    got = backend.loglikelihood(pairs)
    for (context, continuation), value in zip(pairs, got, strict=True):
        assert value == pytest.approx(naive_loglik(backend, context, continuation), abs=1e-4)
    assert got[4] == pytest.approx(backend.loglikelihood([("Answer:", " B")])[0], abs=1e-5)


def test_one_token_choices_of_a_context_share_one_forward_row(backend):
    contexts = ["Question: which letter?\nAnswer:", "A second, longer question with more words in it?\nAnswer:"]
    pairs = [(c, letter) for c in contexts for letter in "ABCD"]
    assert all(len(backend.encode_pair(c, x)[1]) == 1 for c, x in pairs)  # else they could not share a forward
    rows = []
    hook = backend.model.register_forward_pre_hook(lambda _m, _a, kw: rows.append(kw["input_ids"].shape[0]),
                                                   with_kwargs=True)
    try:
        got = backend.loglikelihood(pairs)
    finally:
        hook.remove()
    assert sum(rows) == len(contexts)
    for (context, continuation), value in zip(pairs, got, strict=True):
        assert value == pytest.approx(naive_loglik(backend, context, continuation), abs=1e-4)


class CountingScorer:
    """The real backend, counting loglikelihood calls; contexts holding ``fail_on`` raise (a bad problem)."""

    def __init__(self, inner, fail_on: str | None = None) -> None:
        self.inner, self.fail_on, self.calls, self.tokenizer = inner, fail_on, 0, inner.tokenizer

    def loglikelihood(self, pairs):
        if self.fail_on and any(self.fail_on in c for c, _ in pairs):
            raise RuntimeError("context too long")
        self.calls += 1
        return self.inner.loglikelihood(pairs)

    def describe(self):
        return self.inner.describe()


@needs_data
def test_loglik_scoring_is_naive_acc_resumable_and_a_bad_problem_is_one_error_row(tiny, backend, tmp_path):
    bench = get_benchmark("pubmedqa")
    problems = bench.load(limit=4).problems
    bad = problems[2]
    config = EvalConfig(model_name_or_path=str(tiny), benchmarks="pubmedqa", mc_scoring="loglik", max_samples=4, batch_size=3,
                        chunk_size=2, output_dir=str(tmp_path), progress=False)
    scorer = CountingScorer(backend, fail_on=mc_request(bench, bad).context[-60:])
    results = json.loads(evaluate(config, scorer).read_text())["results"]["pubmedqa"]
    rows = {r["problem_id"]: r for r in map(json.loads, (tmp_path / "samples/pubmedqa.jsonl").read_text().splitlines())}
    acc, acc_norm = [], []
    for p in problems:
        if p is bad:
            assert rows[p.id]["status"] == "error" and "context too long" in rows[p.id]["detail"]
            acc.append(0.0), acc_norm.append(0.0)
            continue
        request = mc_request(bench, p)
        lls = [naive_loglik(backend, request.context, c) for c in request.continuations]
        assert rows[p.id]["logliks"] == pytest.approx(lls, abs=1e-4)
        acc.append(float(max(range(3), key=lls.__getitem__) == request.gold))
        norm = [ll / len(c) for ll, c in zip(lls, ("yes", "no", "maybe"), strict=True)]
        acc_norm.append(float(max(range(3), key=norm.__getitem__) == request.gold))
    assert results["metrics"]["acc"]["value"] == pytest.approx(sum(acc) / 4)
    assert results["metrics"]["acc_norm"]["value"] == pytest.approx(sum(acc_norm) / 4)
    assert rows[problems[0].id]["prompt"].startswith("Abstract: ") and rows[problems[0].id]["prompt"].endswith(
        "\nAnswer:")
    again = CountingScorer(backend)
    evaluate(config, again)
    assert again.calls == 0  # every problem was on disk (the error row too: it is a recorded verdict)


class CannedBackend:
    """Returns a fixed completion per prompt (by the problem's question) and the tiny model's tokenizer."""

    def __init__(self, tokenizer, answers: dict[str, str]) -> None:
        self.tokenizer, self.answers, self.stops = tokenizer, answers, []

    def generate(self, prompts, counts, sampling, seed):
        self.stops.append(sampling.stop)
        return [[Generation(next(a for q, a in self.answers.items() if q in p.rsplit("Question:", 1)[-1]), 5,
                            "stop")] * c for p, c in zip(prompts, counts, strict=True)]

    def describe(self):
        return {"backend": "canned"}


@needs_data
def test_gsm8k_parity_run_reports_both_filters_beside_prifts_grade(backend, tmp_path):
    problems = get_benchmark("gsm8k").load(limit=3).problems
    answers = {problems[0].question: f"so #### {problems[0].gold}",  # both filters right
               problems[1].question: f"\\boxed{{{problems[1].gold}}}. Step 2.",  # flexible takes "2.": prift boxed
               problems[2].question: "no idea"}
    canned = CannedBackend(backend.tokenizer, answers)
    config = EvalConfig(model_name_or_path="tiny", benchmarks="gsm8k", template="lm-eval", max_samples=3, output_dir=str(tmp_path),
                        progress=False)
    result = json.loads(evaluate(config, canned).read_text())["results"]["gsm8k"]
    assert set(canned.stops[0]) >= {"Question:", "</s>", "<|im_end|>"}
    assert result["template"] == "lm-eval" and result["lmeval"]["task"] == "gsm8k"
    assert result["lmeval"]["strict-match"]["value"] == pytest.approx(1 / 3)
    assert result["lmeval"]["flexible-extract"]["value"] == pytest.approx(1 / 3)
    assert result["metrics"]["avg@1"]["value"] == pytest.approx(2 / 3)


def test_parity_template_refuses_a_benchmark_without_an_lm_eval_task():
    with pytest.raises(ValueError, match="no lm-eval parity for 'humaneval'"):
        parity_task(get_benchmark("humaneval"))
