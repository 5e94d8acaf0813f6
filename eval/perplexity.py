"""Perplexity of a causal LM on a text dataset, with a sliding window (the Token Priority paper's "semantic
fragmentation" check: did a priority-trained checkpoint keep general language modelling?).

The texts are joined with blank lines (the WikiText convention) and tokenized once into ``L`` tokens. Windows of
``window`` tokens start every ``stride`` tokens; each window scores only the tokens no earlier window scored, so
every token t >= 1 is scored at most once, with up to ``window - stride`` tokens of extra left context (with
``stride == window`` the first token of each window has no context and is skipped):

    NLL = - sum_t log p(x_t | x_<t within its window) / (number of scored tokens),   ppl = exp(NLL)

(token-weighted; Hugging Face's "perplexity of fixed-length models" recipe, with exact token counts).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from prift.core.provenance import sha256_file


def load_texts(source: str, split: str = "test") -> tuple[list[str], dict]:
    """Texts of a local .txt (whole file) / .jsonl / .json (``text`` field) file, or of a hub dataset
    ``id[:config]`` (its ``text`` column); and where they came from."""
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix == ".txt":
            texts = [path.read_text(encoding="utf-8")]
        elif path.suffix == ".jsonl":
            texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif path.suffix == ".json":
            texts = [row["text"] for row in json.loads(path.read_text(encoding="utf-8"))]
        else:
            raise ValueError(f"perplexity: unsupported file type {path.suffix!r} (use .txt, .jsonl or .json)")
        return texts, {"path": str(path), "sha256": sha256_file(path)}
    from datasets import load_dataset

    hub_id, _, config = source.partition(":")
    dataset = load_dataset(hub_id, config or None, split=split)
    return list(dataset["text"]), {"hub": hub_id, "config": config or None, "split": split,
                                   "fingerprint": getattr(dataset, "_fingerprint", None)}


@torch.no_grad()
def perplexity(model, token_ids: list[int], window: int = 1024, stride: int = 512) -> dict:
    """Token-weighted NLL and perplexity of ``token_ids`` under ``model`` (see the module docstring)."""
    if not 1 <= stride <= window:
        raise ValueError("need 1 <= stride <= window")
    ids = torch.tensor(token_ids, dtype=torch.long)
    device = next(model.parameters()).device
    total_nll, scored, windows, prev_end = 0.0, 0, 0, 1  # token 0 has no context and is never scored
    for begin in range(0, max(1, len(ids) - 1), stride):
        end = min(begin + window, len(ids))
        if end <= prev_end:
            break
        chunk = ids[begin:end].to(device)[None]
        logits = model(chunk).logits[0, :-1].float()
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, chunk[0, 1:, None])[:, 0]
        first = max(0, prev_end - begin - 1)  # logprobs[j] scores token begin+j+1; skip tokens already scored
        total_nll -= logprobs[first:].double().sum().item()
        scored += len(logprobs) - first
        windows += 1
        prev_end = end
        if end == len(ids):
            break
    nll = total_nll / scored if scored else float("nan")
    return {"nll": nll, "ppl": math.exp(nll) if scored else float("nan"), "tokens": scored, "windows": windows,
            "window": window, "stride": stride}


def perplexity_from_config(config, backend=None) -> dict:
    """Perplexity of the evaluated model on ``config.perplexity`` (reuses the HF backend's model when given)."""
    model, tokenizer = getattr(backend, "model", None), getattr(backend, "tokenizer", None)
    if model is None or tokenizer is None:
        from prift.models.loading import load_causal_lm, load_tokenizer

        tokenizer = load_tokenizer(config.model_name_or_path)
        model = load_causal_lm(config.model_name_or_path, config.dtype, config.device or "cpu")
    texts, source = load_texts(config.perplexity, config.perplexity_split)
    ids = tokenizer("\n\n".join(texts), add_special_tokens=False)["input_ids"]
    if config.perplexity_max_tokens:
        ids = ids[: config.perplexity_max_tokens]
    was_training = model.training
    model.eval()
    try:
        result = perplexity(model, ids, config.perplexity_window, config.perplexity_stride)
    finally:
        model.train(was_training)
    return {"benchmark": f"ppl:{config.perplexity}", "task": "perplexity", "data": [source],
            "metrics": {"ppl": {"value": result["ppl"], "stderr": None},
                        "nll": {"value": result["nll"], "stderr": None}}, **result}
