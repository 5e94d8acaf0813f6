"""Dataset specs: each dataset's files, hub fallbacks, question, gold, SFT target and instruction, in one place.

SFT adapters (:mod:`prift.sft.data`), RL sources (:mod:`prift.rl.data`) and the evaluation benchmarks of the same
data (:mod:`prift.eval.bench_math`, ``bench_code``, ``bench_medical``) are views of these specs, so the prompt a
model is trained on, rewarded on and evaluated on is one string (``tests/test_datasets_cpu.py`` checks it):

    prompt(row) = question(row) + separator + instruction

| spec | question | gold | SFT target |
|---|---|---|---|
| ``gsm8k`` | ``question`` | text after the last ``####``, commas removed | the worked solution (no ``<<calc>>``), then ``The answer is \\boxed{N}.`` |
| ``math`` | ``problem`` | the last ``\\boxed{}`` of ``solution`` | ``solution`` |
| ``medmcqa`` | ``question`` + ``X. option`` lines | the letter of the 0-based ``cop`` | ``exp`` then ``Answer: X`` |
| ``mbpp`` | the MBPP paper's task text with its asserts | ``test_setup_code`` + asserts | the reference code, fenced |

Adding a dataset that is both training data and a benchmark touches one spec here, one benchmark class and one test.
A spec's hub fallback names the id, config and split of each split it serves; ``tests/fixtures/hub_configs.json``
records the configs and splits those hub datasets have, and a test checks every fallback against it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prift.core.boxed import last_boxed
from prift.core.registry import Registry

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CODE_INSTRUCTION = "Write the function in a ```python code block."
LETTERS = "ABCDEFGHIJ"


def mc_instruction(letters: str) -> str:
    """The zero-shot multiple-choice answer-format instruction (simple-evals' layout) for options ``letters``."""
    return ("Answer the multiple choice question above. The last line of your response should be of the form "
            f"'Answer: X' where X is one of {', '.join(letters)}.")


@dataclass(frozen=True)
class HubSource:
    """Where users without the local file get one split: ``load_dataset(id, config, split=split)``."""

    id: str
    config: str | None
    split: str


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset. ``files`` / ``hub`` map each split prift serves to its file under the data root and its hub
    fallback; ``fields`` are required in every raw row; ``keep(row, split)`` picks a split's rows out of a file
    holding several (MBPP's task-id ranges); ``unwrap`` names the key a file nests each row under (the MultiMedQA
    mirrors' ``{"data": {...}}``); ``gold_column`` is the RL column its reward reads."""

    name: str
    fields: tuple[str, ...]
    question: Callable[[dict], str]
    gold: Callable[[dict], str]
    instruction: str
    separator: str = "\n"
    target: Callable[[dict], str] | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    hub: Mapping[str, HubSource] = field(default_factory=dict)
    keep: Callable[[dict, str], bool] | None = None
    unwrap: str | None = None
    gold_column: str = "answer"

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.files, *self.hub]))

    def prompt_text(self, question: str, instruction: str | None = None) -> str:
        """The zero-shot user message: ``question``, the separator, the instruction (``instruction`` overrides it;
        an empty one leaves the question alone)."""
        instruction = self.instruction if instruction is None else instruction
        return f"{question}{self.separator}{instruction}" if instruction else question

    def prompt(self, row: dict) -> str:
        return self.prompt_text(self.question(row))

    def rows_of(self, rows: list[dict], split: str) -> list[dict]:
        """``rows`` of a file, unwrapped and filtered to ``split``."""
        if self.unwrap:
            rows = [row.get(self.unwrap, row) if isinstance(row, dict) else row for row in rows]
        return [row for row in rows if self.keep is None or self.keep(row, split)]


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    DATASETS.add(spec.name, spec)
    return spec


# --- shared formatting and gold rules ---------------------------------------------------------------------
def letter_of(index: int | str, letters: str = LETTERS) -> str:
    """``0 -> "A"``; accepts ints and digit strings (a bad index raises ``ValueError``)."""
    i = int(index)
    if not 0 <= i < len(letters):
        raise ValueError(f"{index!r} is not an option index 0-{len(letters) - 1}")
    return letters[i]


def format_choices(question: str, options: list[str], letters: str = LETTERS) -> str:
    """``question`` then one ``X. option`` line per option (the lm-evaluation-harness MMLU/MedQA layout)."""
    lines = [str(question).strip()] + [f"{letters[i]}. {str(option).strip()}" for i, option in enumerate(options)]
    return "\n".join(lines)


def gsm8k_gold(answer: str) -> str:
    """GSM8K gold: text after the last ``####``, stripped, thousands commas removed (``1,000`` -> ``1000``)."""
    if "####" not in answer:
        raise ValueError("answer has no '####' line")
    return answer.rpartition("####")[2].strip().replace(",", "")


def boxed_gold(solution: str) -> str:
    """MATH gold: the last ``\\boxed{}`` of the solution (``ValueError`` when there is none)."""
    gold = last_boxed(solution)
    if not gold:
        raise ValueError("solution has no \\boxed{} answer")
    return gold


def mbpp_task(text: str, asserts: str) -> str:
    """The MBPP paper's (and lm-evaluation-harness's) task text: description, then the asserts to pass."""
    return f"You are an expert Python programmer, and here is your task: {text} Your code should pass these " \
           f"tests:\n\n{asserts}\n"


# --- the specs ---------------------------------------------------------------------------------------------
_CALCULATOR = re.compile(r"<<[^>]*>>")


def _gsm8k_target(row: dict) -> str:
    reasoning = row["answer"].rpartition("####")[0]
    return f"{_CALCULATOR.sub('', reasoning).strip()}\nThe answer is \\boxed{{{gsm8k_gold(row['answer'])}}}."


register_dataset(DatasetSpec(
    "gsm8k", fields=("question", "answer"), question=lambda row: row["question"],
    gold=lambda row: gsm8k_gold(row["answer"]), target=_gsm8k_target, instruction=BOXED_INSTRUCTION,
    files={split: f"gsm8k/{split}.jsonl" for split in ("train", "test")},
    hub={split: HubSource("openai/gsm8k", "main", split) for split in ("train", "test")}))

register_dataset(DatasetSpec(
    "math", fields=("problem", "solution"), question=lambda row: row["problem"],
    gold=lambda row: boxed_gold(row["solution"]), target=lambda row: row["solution"], instruction=BOXED_INSTRUCTION,
    files={split: f"math/{split}.jsonl" for split in ("train", "test")},
    hub={split: HubSource("DigitalLearningGmbH/MATH-lighteval", "default", split) for split in ("train", "test")}))

MEDMCQA_OPTIONS = ("opa", "opb", "opc", "opd")


def _medmcqa_target(row: dict) -> str:
    """``{exp}\\nAnswer: X``, or ``Answer: X`` alone when the explanation is empty or "nan"."""
    answer = f"Answer: {letter_of(row['cop'], 'ABCD')}"
    explanation = str(row.get("exp") or "").strip()
    return answer if explanation.lower() in ("", "nan", "none") else f"{explanation}\n{answer}"


register_dataset(DatasetSpec(
    "medmcqa", fields=("question", *MEDMCQA_OPTIONS, "cop"),
    question=lambda row: format_choices(row["question"], [row[key] for key in MEDMCQA_OPTIONS]),
    gold=lambda row: letter_of(row["cop"], "ABCD"), target=_medmcqa_target, instruction=mc_instruction("ABCD"),
    separator="\n\n", files={"validation": "medmcqa/medmcqa_validation.json"}, unwrap="data",
    hub={split: HubSource("openlifescienceai/medmcqa", None, split) for split in ("train", "validation")}))

# MBPP's standard split by task_id (google-research mbpp README)
MBPP_SPLITS = {"train": range(601, 975), "validation": range(511, 601), "test": range(11, 511), "prompt": range(1, 11)}


def _mbpp_tests(row: dict) -> str:
    return f"{row.get('test_setup_code') or ''}\n{chr(10).join(row['test_list'])}".strip()


register_dataset(DatasetSpec(
    "mbpp", fields=("text", "test_list"),
    question=lambda row: mbpp_task(row["text"], "\n".join(row["test_list"])), gold=_mbpp_tests,
    target=lambda row: f"```python\n{row['code'].rstrip()}\n```", instruction=CODE_INSTRUCTION, separator="",
    files=dict.fromkeys(MBPP_SPLITS, "mbpp/mbpp.jsonl"),
    hub={split: HubSource("google-research-datasets/mbpp", "full", split) for split in MBPP_SPLITS},
    keep=lambda row, split: int(row["task_id"]) in MBPP_SPLITS[split], gold_column="tests"))


@dataclass
class DataArguments:
    """The data options `prift sft` and `prift rl` share (one name, type and help each; docs/options.md), a dataclass
    mixin like TRL's dataset arguments. What a row must hold differs by stage: SFT needs a response, RL a gold field."""

    renamed_options = {"dataset_adapter": "dataset_format"}  # core.config reads it: the old name still works

    dataset: str = field(
        default="gsm8k",
        metadata={"help": f"The data: a built-in dataset ({', '.join(DATASETS.names())}; SFT, RL and eval ask its "
                          "rows the same prompt), a local .jsonl/.json/.parquet/.csv file, or (sft) a hub dataset id. "
                          "sft rows: TRL's prompt/completion or messages format; rl rows: a `prompt` column plus the "
                          "gold columns its rewards read (`answer`, `tests`, ...)."})
    dataset_split: str = field(default="train", metadata={"help": "Split to load (built-in datasets, hub ids)."})
    dataset_format: str = field(
        default="auto",
        metadata={"help": "How a file's rows are read: auto (by the dataset's name or the file's columns), a built-in "
                          "dataset's layout ("
                          + ", ".join(f"{name}: {'/'.join(DATASETS.get(name).fields)}" for name in DATASETS.names())
                          + "), or sft prompt_completion (plain-text prompt/completion rows) / rl prompt (a prompt "
                            "column + gold columns)."})
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of local benchmark data (<data_dir>/gsm8k/train.jsonl, ...); default "
                          "$PRIFT_DATA_DIR, else ../shared/data of the checkout when present, else the hub."})
    max_samples: int | None = field(default=None, metadata={"help": "Use only the first N rows of the dataset."})
    use_chat_template: bool = field(
        default=True,
        metadata={"help": "Render prompts (and SFT completions) as chat messages with the tokenizer's chat template "
                          "(false: plain text, for base models without a template)."})
