"""Medical multiple-choice benchmarks: MedQA-USMLE 4 options (test 1273), MedMCQA (validation 4183),
MMLU medical subsets (test 1089, per subject and averaged), PubMedQA PQA-L (test 500).

Answers are graded by ``prift.rewards.choice.extract_choice`` (``\\boxed{X}``, "answer is X" / "Answer: X", a
final standalone letter) against the gold letter. PubMedQA's yes/no/maybe become options A/B/C.

Base-model prompts follow lm-evaluation-harness: MMLU = "The following are multiple choice questions (with
answers) about {subject}." + the 5 dev questions of the subject + ``Answer: X`` lines; MedQA / MedMCQA =
``Question: ...`` + options + ``Answer:`` (0-shot); PubMedQA = ``Abstract: ...\\nQuestion: ...`` (0-shot).
Gold conventions (SOURCE.md): MedMCQA ``cop`` is 0-based in the shared data (and on the hub); MMLU ``answer``
is an index 0-3; MedQA ``answer_idx`` is a letter (``option_E`` is always "nan" and dropped).
"""

from __future__ import annotations

from pathlib import Path

from prift.core.datasets import DATASETS, MEDMCQA_OPTIONS, format_choices, letter_of, mc_instruction
from prift.eval.benchmarks import BENCHMARKS, Benchmark, Problem, read_csv, read_json_array, spec_files


def raw(stem: str, options: list) -> dict:
    """The question and options as the data has them (unstripped): ``--mc_scoring loglik`` builds lm-eval's
    contexts from these (``prift.eval.lmeval.mc_request``)."""
    return {"stem": stem, "options": [str(o) for o in options]}


class ChoiceBenchmark(Benchmark):
    """Multiple-choice benchmarks (MedQA, MedMCQA, MMLU-medical, PubMedQA: lm-evaluation-harness tasks in the papers
    that report them). Generation defaults: lm-evaluation-harness's ``generate_until`` (``HFLM(max_gen_toks=256)`` in
    ``lm_eval/models/huggingface.py``, used when a task sets no ``max_gen_toks``; greedy)."""

    generation = {"max_tokens": 256, "temperature": 0.0}
    task = "choice"
    default_template = "chat"
    base_stop = ("\n\n",)

    def instruction(self, problem: Problem) -> str:
        return f"{problem.question}\n\n{mc_instruction(self.letters)}"  # the medmcqa spec's prompt layout

    def base_prompt(self, problem: Problem) -> str:
        return f"Question: {problem.question}\nAnswer:"

    def reference(self, problem: Problem) -> str:
        return f"Answer: {problem.gold}"


@BENCHMARKS.register("medqa")
class MedQA(ChoiceBenchmark):
    name, split, rows = "medqa", "test", 1273
    files = ("medqa/medqa_usmle_4options_test.json",)
    hub = ("GBaker/MedQA-USMLE-4-options", None, "test")

    def read_local(self, root: Path) -> list[dict]:
        return read_json_array(root / self.files[0], unwrap="data")

    def to_problem(self, row: dict, index: int) -> Problem:
        options = row.get("options") or {k: row[f"option_{k}"] for k in "ABCD"}
        gold = row["answer_idx"].strip()
        if gold not in self.letters:
            raise ValueError(f"answer_idx {gold!r} is not one of {self.letters}")
        choices = [options[k] for k in "ABCD"]
        return Problem(f"medqa/{index}", format_choices(row["question"], choices), gold, raw(row["question"], choices))


@BENCHMARKS.register("medmcqa")
class MedMCQA(ChoiceBenchmark):
    name, split, rows = "medmcqa", "validation", 4183
    dataset = DATASETS.get("medmcqa")
    files, hub = spec_files(dataset, split)

    def read_local(self, root: Path) -> list[dict]:
        return read_json_array(root / self.files[0], unwrap=self.dataset.unwrap)

    def to_problem(self, row: dict, index: int) -> Problem:
        options = [row[key] for key in MEDMCQA_OPTIONS]
        return Problem(str(row.get("id", f"medmcqa/{index}")), self.dataset.question(row), self.dataset.gold(row),
                       {"subject": row.get("subject_name"), **raw(row["question"], options)})


MMLU_MEDICAL_SUBJECTS = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
                         "professional_medicine")


@BENCHMARKS.register("mmlu_medical")
class MMLUMedical(ChoiceBenchmark):
    """The MultiMedQA / Med-PaLM selection of MMLU subjects; metrics per subject and averaged."""

    name, split, rows = "mmlu_medical", "test", 1089
    files = tuple(f"mmlu_medical/test/{s}_test.csv" for s in MMLU_MEDICAL_SUBJECTS)
    hub = ("cais/mmlu", None, "test")

    def read_local(self, root: Path) -> list[dict]:
        return [{**row, "subject": s} for s in MMLU_MEDICAL_SUBJECTS
                for row in read_csv(root / f"mmlu_medical/test/{s}_test.csv")]

    def hub_sources(self) -> list[tuple[str, str | None, str]]:
        return [("cais/mmlu", s, split) for split in ("test", "dev") for s in MMLU_MEDICAL_SUBJECTS]

    def read_hub(self) -> list[dict]:
        from datasets import load_dataset

        return [{**dict(row), "subject": config} for hub_id, config, split in self.hub_sources() if split == "test"
                for row in load_dataset(hub_id, config, split=split)]

    def to_problem(self, row: dict, index: int) -> Problem:
        options = row.get("choices") or [row[f"choice{i}"] for i in range(4)]
        return Problem(f"mmlu_medical/{row['subject']}/{index}", format_choices(row["question"], list(options)),
                       letter_of(row["answer"], self.letters), {"subject": row["subject"], **raw(row["question"], options)})

    def subset(self, problem: Problem) -> str | None:
        return problem.meta.get("subject")

    def base_prompt(self, problem: Problem) -> str:
        subject = problem.meta["subject"]
        shots = getattr(self, "_shots", {})
        if subject not in shots:
            rows = self.read_extra(f"mmlu_medical/dev/{subject}_dev.csv", ("cais/mmlu", subject, "dev"))[:5]
            shots[subject] = "".join(f"{self.to_problem({**r, 'subject': subject}, i).question}\nAnswer: "
                                     f"{letter_of(r['answer'])}\n\n" for i, r in enumerate(rows))
            self._shots = shots
        header = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
        return f"{header}{shots[subject]}{problem.question}\nAnswer:"


PUBMEDQA_OPTIONS = ("yes", "no", "maybe")


@BENCHMARKS.register("pubmedqa")
class PubMedQA(ChoiceBenchmark):
    name, split, rows = "pubmedqa", "test", 500
    files = ("pubmedqa/pubmedqa_pqal_test.json",)
    hub = ("bigbio/pubmed_qa", "pubmed_qa_labeled_fold0_source", "test")
    letters = "ABC"
    answer_words = PUBMEDQA_OPTIONS  # a bare " yes" / "No." grades as its letter

    def read_local(self, root: Path) -> list[dict]:
        return read_json_array(root / self.files[0], unwrap="data")

    def to_problem(self, row: dict, index: int) -> Problem:
        context = row.get("context") or " ".join(row.get("CONTEXTS") or [])
        question = row.get("question") or row["QUESTION"]
        decision = (row.get("yes_no") or row.get("final_decision") or "").strip().lower()
        if decision not in PUBMEDQA_OPTIONS:
            raise ValueError(f"label {decision!r} is not yes/no/maybe")
        stem = f"Abstract: {context}\nQuestion: {question}"
        return Problem(str(row.get("id", f"pubmedqa/{index}")), format_choices(stem, list(PUBMEDQA_OPTIONS)),
                       letter_of(PUBMEDQA_OPTIONS.index(decision)), raw(stem, list(PUBMEDQA_OPTIONS)))

    def base_prompt(self, problem: Problem) -> str:
        return f"{problem.question}\nAnswer:"
