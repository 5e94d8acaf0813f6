"""The PriFT paper's diagnostics of SFT checkpoints, computed on held-out rows (plots: `prift.recipes.plots`).

On `samples` held-out prompt/completion rows, for the reference and every SFT checkpoint, per completion token t
(target y_t, teacher-forced, temperature-1 softmax in fp32 via `prift.sft.signals`):

- Fig 1a: p_theta(y_t) of each checkpoint against the reference's p_ref(y_t); Pearson and Spearman correlation
  over all tokens. Reference-fed methods stay close to the reference; online methods drift.
- Fig 3a: the token entropy H_t = -sum_v p(v) log p(v) of each checkpoint (full vocabulary), as a distribution.
- RL-readiness (per checkpoint, over all scored tokens): held-out NLL = mean_t -log p_theta(y_t), and the KL to the
  base model KL_t = sum_v p_theta(v) (log p_theta(v) - log p_base(v)) of the next-token distributions at the same
  teacher-forced positions (the held-out prompts and completions), averaged over t.
- Fig 5: one example's tokens with p_ref(y_t), each checkpoint's p_theta(y_t) and each variant's weight m_t from
  `prift.sft.priorities.token_weights` (its rule on its source's logits: the reference for reference-fed methods,
  the trained checkpoint itself for online/EMA ones; rules fed by data labels have no weight row); and, where a
  variant's SFT run saved intermediate ``checkpoint-<step>`` folders, the same example's p_theta(y_t) and m_t at
  each of them and at the end (``example.trajectory``: the paper's Fig 5 is one example across checkpoints).

`run_diagnostics(config)` writes `<output_dir>/diagnostics.json` and returns the folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from prift.core.provenance import RunRecord, write_json_atomic
from prift.models.loading import load_causal_lm, load_tokenizer
from prift.recipes.recipe import Diagnostics
from prift.sft.data import load_sft_dataset
from prift.sft.methods import resolve_method
from prift.sft.priorities import get_rule, token_weights
from prift.sft.signals import signals_from_logits


@dataclass
class DiagnosticsRun:
    """What the diagnostics stage reads: held-out rows, the reference, the SFT checkpoints and their presets."""

    spec: Diagnostics
    reference: str
    checkpoints: dict[str, str]  # variant -> checkpoint folder
    methods: dict[str, str]  # variant -> method preset
    output_dir: str
    base: str | None = None  # the base model the SFT started from (KL to base; default: the reference)


def _split(row: dict) -> tuple[list | str, list | str]:
    if "messages" in row:
        return row["messages"][:-1], row["messages"][-1:]
    return row["prompt"], row["completion"]


def encode(tokenizer, row: dict, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids [1, T], labels [1, T] with -100 on the prompt): the chat-rendered row, completion tokens scored."""
    prompt, completion = _split(row)
    if isinstance(prompt, str):
        prompt_text, full_text = prompt, prompt + completion
    else:
        prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full_text = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ValueError("the chat template renders the prompt differently with and without the completion")
    ids = tokenizer(full_text, add_special_tokens=False).input_ids[:max_length]
    prompt_len = len(tokenizer(prompt_text, add_special_tokens=False).input_ids)
    labels = [-100] * min(prompt_len, len(ids)) + ids[prompt_len:]
    return torch.tensor([ids]), torch.tensor([labels])


@torch.no_grad()
def aligned_logits(model, ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [1, T-1, V] fp32, labels [1, T-1]): position t scores labels[t + 1]."""
    logits = model(input_ids=ids.to(model.device)).logits[:, :-1].float().cpu()
    return logits, labels[:, 1:]


def token_stats(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, list[float]]:
    """Target probability p(y_t), full-vocabulary entropy and NLL -log p(y_t) at every scored position."""
    mask = labels != -100
    logp = signals_from_logits(logits, labels, ("logp",))["logp"]
    logq = logits.log_softmax(-1)
    entropy = -(logq.exp() * logq).sum(-1)
    return {"p": logp.exp()[mask].tolist(), "entropy": entropy[mask].tolist(), "nll": (-logp)[mask].tolist()}


def kl_to_base(logits: torch.Tensor, base_logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """KL(p_theta || p_base) = sum_v p_theta(v) (log p_theta(v) - log p_base(v)) at every scored position."""
    logq, logb = logits.log_softmax(-1), base_logits.log_softmax(-1)
    return (logq.exp() * (logq - logb)).sum(-1)[labels != -100].tolist()


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """0-based average ranks: tied values share the mean of the ranks they span (scipy's ``rankdata`` - 1), so the
    result does not depend on the values' order."""
    _, inverse, counts = torch.unique(values, sorted=True, return_inverse=True, return_counts=True)
    starts = counts.cumsum(0) - counts
    return (starts + (counts - 1) / 2).to(values.dtype)[inverse]


def correlation(x: list[float], y: list[float]) -> dict[str, float]:
    """Pearson and Spearman (Pearson of average ranks, ties counted as ties) correlation of two equal-length lists."""
    a, b = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    pearson = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    spearman = torch.corrcoef(torch.stack([_ranks(a), _ranks(b)]))[0, 1].item()
    return {"pearson": round(pearson, 5), "spearman": round(spearman, 5)}


def _weights(preset: str, own: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor) -> list[float] | None:
    method = resolve_method(preset)
    rule = get_rule(method.rule)
    if rule.data:
        return None
    logits = reference if method.source == "reference" else own
    extra = {"ref_logits": reference} if rule.reference_signals else {}
    weights = token_weights(method.rule, logits, labels, **extra, **method.params)
    return weights[labels != -100].tolist()


def run_diagnostics(config: DiagnosticsRun) -> Path:
    spec = config.spec
    out = Path(config.output_dir)
    record = RunRecord("diagnostics", config)
    tokenizer = load_tokenizer(config.reference)
    rows, provenance = load_sft_dataset(spec.dataset, split=spec.dataset_split, adapter=spec.dataset_format,
                                        max_samples=spec.samples)
    record.extra["data"] = provenance
    encoded = [encode(tokenizer, row, spec.max_length) for row in rows]
    example = spec.example % len(encoded)
    models = {"reference": config.reference, **config.checkpoints}
    base = load_causal_lm(config.base or config.reference, "float32").eval()
    stats, example_logits, kl = {}, {}, {}
    for name, path in models.items():
        model = load_causal_lm(path, "float32").eval()
        per_row = [aligned_logits(model, ids, labels) for ids, labels in encoded]
        rows_stats = [token_stats(logits, labels) for logits, labels in per_row]
        stats[name] = {key: [v for s in rows_stats for v in s[key]] for key in ("p", "entropy", "nll")}
        if name in config.checkpoints:
            kl[name] = [v for (logits, labels), (ids, _) in zip(per_row, encoded, strict=True)
                        for v in kl_to_base(logits, aligned_logits(base, ids, labels)[0], labels)]
        example_logits[name] = per_row[example]
        del model, per_row
    del base
    ref_logits, ex_labels = example_logits["reference"]
    tokens = [tokenizer.decode([t]) for t in ex_labels[ex_labels != -100].tolist()]
    heat = {"p_ref": stats_row(ref_logits, ex_labels)}
    for name in config.checkpoints:
        heat[f"p {name}"] = stats_row(example_logits[name][0], ex_labels)
    for name, preset in config.methods.items():
        weights = _weights(preset, example_logits[name][0], ref_logits, ex_labels)
        if weights is not None:
            heat[f"m_t {name}"] = weights
    trajectory = {name: example_trajectory(path, config.methods[name], encoded[example], ref_logits,
                                           example_logits[name][0])
                  for name, path in config.checkpoints.items() if saved_steps(path)}
    checkpoints = {name: {**correlation(stats[name]["p"], stats["reference"]["p"]), "method": config.methods[name],
                          "mean_entropy": _mean(stats[name]["entropy"]), "nll": _mean(stats[name]["nll"]),
                          "kl_to_base": _mean(kl[name])}
                   for name in config.checkpoints}
    write_json_atomic(out / "diagnostics.json", record.payload(
        checkpoints=checkpoints, tokens=len(stats["reference"]["p"]),
        values={name: {k: [round(s[k][i], 5) for i in range(len(s[k]))] for k in ("p", "entropy")}
                for name, s in stats.items()},
        example={"row": example, "tokens": tokens,
                 "rows": {k: [round(v, 5) for v in vals] for k, vals in heat.items()}, "trajectory": trajectory}))
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def saved_steps(folder: str | Path) -> list[tuple[int, Path]]:
    """The intermediate ``checkpoint-<step>`` folders an SFT run kept (those holding a model), by step."""
    found = []
    for path in Path(folder).glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        if step.isdigit() and (path / "config.json").is_file():
            found.append((int(step), path))
    return sorted(found)


def example_trajectory(folder: str, preset: str, encoded: tuple[torch.Tensor, torch.Tensor],
                       ref_logits: torch.Tensor, final_logits: torch.Tensor) -> dict:
    """One example's p_theta(y_t) (and m_t, for rules not fed by data) at every saved step and at the end
    (``final_logits``: the finished checkpoint's, already computed)."""
    ids, labels = encoded
    steps, per_step = [], []
    for step, path in saved_steps(folder):
        model = load_causal_lm(str(path), "float32").eval()
        steps.append(step)
        per_step.append(aligned_logits(model, ids, labels)[0])
        del model
    steps.append("final")
    per_step.append(final_logits)
    targets = labels[:, 1:]
    weights = [_weights(preset, logits, ref_logits, targets) for logits in per_step]
    return {"steps": steps, "p": [[round(v, 5) for v in stats_row(logits, targets)] for logits in per_step],
            "m_t": None if weights[0] is None else [[round(v, 5) for v in row] for row in weights]}


def stats_row(logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    return token_stats(logits, labels)["p"]
