"""lm-evaluation-harness parity (issue 18): lm-eval's prompts, shots, stops and verdicts inside ``prift eval``.

The facts below are read from lm-eval 0.4.13 (``lm_eval/api/task.py``, ``api/samplers.py``, ``api/metrics.py``,
``filters/extraction.py`` and the task YAMLs named per task); ``benchmarks/crosscheck_lmeval.py`` runs lm-eval
itself beside this module and ``tests/test_eval_lmeval_cpu.py`` holds prompts lm-eval rendered.

Generation (``--template lm-eval``; chat template off, as lm-eval's default):

- a prompt is lm-eval's ``fewshot_context``: each shot is ``doc_to_text(shot) + " " + doc_to_target(shot) +
  "\\n\\n"`` (``target_delimiter``, ``fewshot_delimiter``), then ``doc_to_text(doc)``;
- ``gsm8k`` (``tasks/gsm8k/gsm8k.yaml``): ``Question: {question}\\nAnswer:``, target the full ``answer``, 5 shots
  from the train split drawn by the ``default`` sampler: one ``random.Random(1234)`` (``simple_evaluate``'s
  ``fewshot_random_seed``) draws ``rnd.sample(train, 5)`` for each test doc in order, so doc ``i`` gets draw ``i``
  (:func:`sampled_shots`); stop at ``Question:``, ``</s>``, ``<|im_end|>``. Verdicts of both of its filters:
  ``strict-match`` (regex ``#### (\\-?[0-9\\.\\,]+)``, first match) and ``flexible-extract`` (regex
  ``(-?[$0-9.,]{2,})|(-?[0-9]+)``, last match), each then ``exact_match`` against the reference ``answer`` with
  ``ignore_case`` and ``regexes_to_ignore`` ``,`` ``\\$`` ``(?s).*#### `` ``\\.$`` applied to both sides
  (:func:`gsm8k_verdicts`); an unmatched completion extracts ``[invalid]``;
- ``math`` (lm-eval's ``minerva_math`` group, ``tasks/minerva_math``): ``Problem:\\n{problem}\\n\\nSolution:``,
  the 4 fixed Minerva exemplars (``first_n`` sampler over ``list_fewshot_samples``) with their ``solution`` as
  target, stop at ``Problem:``. Verdict: ``math_verify`` = ``verify(parse(solution), parse(completion))`` (its
  ``process_results``). Its ``exact_match`` (Minerva normalisation, then sympy's ``parse_latex``, which needs
  antlr4 4.11 while math-verify runs on 4.13) is not reproduced.

Log-likelihood multiple choice (``--mc_scoring loglik``): per problem, the loglikelihood of each continuation
``" " + choice`` (``target_delimiter`` + ``doc_to_choice``) after lm-eval's context (:func:`mc_request`);
``acc`` = [argmax_i ll_i == gold], ``acc_norm`` = [argmax_i ll_i / len(choice_i) == gold], ``len`` in characters
of the choice string as ``process_results`` computes it (its bytes-normalised ``acc_bytes`` coincides for these
ASCII choices). Contexts (0-shot, lm-eval's defaults): ``medqa_4options`` ``Question: {q}\\nA. {a}\\n...D. {d}\\n
Answer:``; ``medmcqa`` ``Question: {q}\\nChoices:\\nA. {a}\\n...D. {d}\\nAnswer:``; ``mmlu_{subject}`` ``The
following are multiple choice questions (with answers) about {subject}.\\n\\n{q.strip()}\\nA. {a}\\n...D. {d}\\n
Answer:`` (choices ``A``-``D`` for these three); ``pubmedqa`` ``Abstract: {contexts}\\nQuestion: {q}\\nAnswer:``
with choices ``yes``/``no``/``maybe`` (the shared data holds the abstract as one string: lm-eval joins the hub's
``CONTEXTS`` with newlines).
"""

from __future__ import annotations

import random
import re
import weakref
from dataclasses import dataclass

from prift.eval.benchmarks import Benchmark, Problem
from prift.eval.templates import Template, template

FEWSHOT_SEED = 1234  # lm_eval.evaluator.simple_evaluate(fewshot_random_seed=1234)
INVALID = "[invalid]"  # RegexFilter's fallback
GSM8K_STOP = ("Question:", "</s>", "<|im_end|>")
GSM8K_FILTERS = {"strict-match": (r"#### (\-?[0-9\.\,]+)", 0), "flexible-extract": (r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1)}
GSM8K_IGNORE = (",", r"\$", "(?s).*#### ", r"\.$")
MINERVA_STOP = ("Problem:",)
# lm-eval tasks/minerva_math/utils.py list_fewshot_samples(): the 4-shot prompt of Lewkowycz et al. (2022), app. D
MINERVA_SHOTS = (
    ("Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
     "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and $5 - x "
     "\\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$. Therefore, "
     "the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I hope it is "
     "correct."),
    ("If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
     "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = "
     "\\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct."),
    ("Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many times "
     "must Terrell lift them in order to lift the same total weight?",
     "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of weight.  "
     "If he lifts two 15-pound weights instead for $n$ times, he will lift a total of $2\\cdot15\\cdot n=30n$ pounds "
     "of weight.  Equating this to 480 pounds, we can solve for $n$:\n\\begin{align*}\n30n&=480\\\\\n\\Rightarrow"
     "\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: The final answer is $16$. I hope it is correct."),
    ("If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution $(x, y)$ "
     "where $x$ and $y$ are both nonzero,\nfind $\\frac{a}{b},$ assuming $b$ is nonzero.",
     "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we also know "
     "that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\nFinal Answer: "
     "The final answer is $-\\frac{2}{3}$. I hope it is correct."),
)


def sampled_shots(pool_size: int, k: int, count: int, seed: int = FEWSHOT_SEED) -> list[list[int]]:
    """The pool indices lm-eval's ``default`` ``ContextSampler`` gives the first ``count`` eval docs: one
    ``random.Random(seed)``, ``rnd.sample(pool, k)`` per doc in order (the eval doc is not excluded: the pool is
    another split). ``random.sample`` picks by position only, so sampling ``range(pool_size)`` gives its indices."""
    rnd = random.Random(seed)
    return [rnd.sample(range(pool_size), k) for _ in range(count)]


def fewshot_context(shots: list[tuple[str, str]], text: str) -> str:
    """lm-eval's plain-text ``fewshot_context``: ``q + " " + a + "\\n\\n"`` per shot, then the doc's text."""
    return "".join(f"{q} {a}\n\n" for q, a in shots) + text


def regex_extract(text: str, pattern: str, group_select: int) -> str:
    """lm-eval's ``RegexFilter`` + ``take_first``: ``findall``'s ``group_select``-th match; of a tuple of groups the
    first non-empty one; stripped; ``[invalid]`` when nothing matches."""
    found = re.findall(pattern, text)
    if not found:
        return INVALID
    match = found[group_select]
    if isinstance(match, tuple):
        match = next((m for m in match if m), INVALID)
    return match.strip()


def gsm8k_exact_match(prediction: str, reference: str) -> bool:
    """lm-eval's ``exact_match`` as gsm8k.yaml configures it: every ``regexes_to_ignore`` pattern removed (in order)
    from both strings, both lower-cased, then compared."""
    for pattern in GSM8K_IGNORE:
        prediction, reference = re.sub(pattern, "", prediction), re.sub(pattern, "", reference)
    return prediction.lower() == reference.lower()


class ParityTask:
    """One benchmark's lm-eval task: ``prompt(problem)``, ``stop`` and ``verdicts(problem, completion)`` =
    ``{filter or metric: {"answer": extracted or None, "correct": bool}}``."""

    task = ""
    stop: tuple[str, ...] = ()

    def __init__(self, benchmark: Benchmark) -> None:
        self.benchmark = benchmark

    def prompt(self, problem: Problem) -> str:
        raise NotImplementedError

    def verdicts(self, problem: Problem, completion: str) -> dict[str, dict]:
        raise NotImplementedError


class GSM8KTask(ParityTask):
    task, stop = "gsm8k", GSM8K_STOP

    def __init__(self, benchmark: Benchmark) -> None:
        super().__init__(benchmark)
        from prift.eval.bench_math import GSM8K_TRAIN

        self.pool = [(f"Question: {r['question']}\nAnswer:", r["answer"]) for r in benchmark.read_extra(*GSM8K_TRAIN)]
        self.draws: list[list[int]] = []

    def shots(self, row: int) -> list[tuple[str, str]]:
        if row >= len(self.draws):  # draws depend on the row only, so every chunk and resume sees the same ones
            self.draws = sampled_shots(len(self.pool), 5, max(row + 1, 2 * len(self.draws)))
        return [self.pool[i] for i in self.draws[row]]

    def prompt(self, problem: Problem) -> str:
        return fewshot_context(self.shots(problem.meta["row"]), f"Question: {problem.question}\nAnswer:")

    def verdicts(self, problem: Problem, completion: str) -> dict[str, dict]:
        out = {}
        for name, (pattern, group) in GSM8K_FILTERS.items():
            answer = regex_extract(completion, pattern, group)
            out[name] = {"answer": answer, "correct": gsm8k_exact_match(answer, problem.meta["answer"])}
        return out


class MinervaMathTask(ParityTask):
    task, stop = "minerva_math", MINERVA_STOP

    def prompt(self, problem: Problem) -> str:
        shots = [(f"Problem:\n{q}\n\nSolution:", a) for q, a in MINERVA_SHOTS]
        return fewshot_context(shots, f"Problem:\n{problem.question}\n\nSolution:")

    def verdicts(self, problem: Problem, completion: str) -> dict[str, dict]:
        from math_verify import parse, verify

        try:
            correct = bool(verify(gold=parse(problem.meta["solution"]), target=parse(completion)))
        except Exception:  # noqa: BLE001 - lm-eval lets a crash through; here it is this sample's wrong verdict
            correct = False
        return {"math_verify": {"answer": None, "correct": correct}}


PARITY_TASKS: dict[str, type[ParityTask]] = {"gsm8k": GSM8KTask, "math": MinervaMathTask}
_TASKS: weakref.WeakKeyDictionary[Benchmark, ParityTask] = weakref.WeakKeyDictionary()


def parity_task(benchmark: Benchmark) -> ParityTask:
    """The (cached) lm-eval task of ``benchmark``; ``ValueError`` for a benchmark without one."""
    if benchmark not in _TASKS:
        if benchmark.name not in PARITY_TASKS:
            raise ValueError(f"template lm-eval: no lm-eval parity for {benchmark.name!r}; "
                             f"supported: {', '.join(PARITY_TASKS)}")
        _TASKS[benchmark] = PARITY_TASKS[benchmark.name](benchmark)
    return _TASKS[benchmark]


@template("lm-eval", chat_default=False)
def lm_eval_prompt(benchmark: Benchmark, problem: Problem) -> list[dict[str, str]]:
    return [{"role": "user", "content": parity_task(benchmark).prompt(problem)}]


def is_parity(tmpl: Template) -> bool:
    return tmpl.name == "lm-eval"


# --- log-likelihood multiple choice -------------------------------------------------------------------------
@dataclass(frozen=True)
class MCRequest:
    """One problem's loglikelihood request: ``context``, the ``choices`` (continuations are ``" " + choice``)
    and the gold index."""

    context: str
    choices: tuple[str, ...]
    gold: int

    @property
    def continuations(self) -> list[str]:
        return [f" {c}" for c in self.choices]


def _options(problem: Problem) -> str:
    return "".join(f"{letter}. {option}\n" for letter, option in zip("ABCD", problem.meta["options"], strict=False))


def mc_request(benchmark: Benchmark, problem: Problem) -> MCRequest:
    """lm-eval's context and choices for ``problem`` of medqa / medmcqa / mmlu_medical / pubmedqa (module doc)."""
    stem, gold = problem.meta["stem"], benchmark.letters.index(problem.gold)
    if benchmark.name == "medqa":
        return MCRequest(f"Question: {stem}\n{_options(problem)}Answer:", tuple("ABCD"), gold)
    if benchmark.name == "medmcqa":
        return MCRequest(f"Question: {stem}\nChoices:\n{_options(problem)}Answer:", tuple("ABCD"), gold)
    if benchmark.name == "mmlu_medical":
        subject = problem.meta["subject"].replace("_", " ")
        header = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
        return MCRequest(f"{header}{stem.strip()}\n{_options(problem)}Answer:", tuple("ABCD"), gold)
    if benchmark.name == "pubmedqa":
        return MCRequest(f"{stem}\nAnswer:", ("yes", "no", "maybe"), gold)
    raise ValueError(f"mc_scoring loglik: no lm-eval multiple-choice task for {benchmark.name!r}")


def mc_verdicts(request: MCRequest, logliks: list[float]) -> dict:
    """``acc`` and ``acc_norm`` of one problem from its choices' loglikelihoods (first maximum wins, as argmax)."""
    norm = [ll / len(c) for ll, c in zip(logliks, request.choices, strict=True)]
    pred = max(range(len(logliks)), key=logliks.__getitem__)
    pred_norm = max(range(len(norm)), key=norm.__getitem__)
    return {"pred": pred, "pred_norm": pred_norm, "acc": float(pred == request.gold),
            "acc_norm": float(pred_norm == request.gold)}
