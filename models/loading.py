"""Model and tokenizer loading: a hub id, a local folder, or the embedded SmolLM2 default.

`resolve_model_path(name)` turns what a user wrote into something `from_pretrained` accepts and raises a
`FileNotFoundError` naming the input when it is neither a local checkpoint, nor the embedded alias, nor
plausibly a hub id. Loading never silently falls back to another model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from prift.models.embedded import EMBEDDED_ALIASES, embedded_checkpoint

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
if TYPE_CHECKING:
    import torch

# dtype names -> torch attribute (torch is imported only when a model loads: configs import this module for --help)
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


ATTENTION_HELP = ("Attention kernel the model runs: sdpa, eager, flash_attention_2, flash_attention_3 or a kernels-hub "
                  "id; unset: transformers' default for the checkpoint (sdpa where it is supported). The flash "
                  "kernels need a GPU and their package (e.g. flash-attn).")

# what a local folder must hold to be loaded as each kind
MARKER_FILES = {"model": "config.json", "tokenizer": "tokenizer_config.json"}


def resolve_model_path(name_or_path: str, kind: str = "model") -> str:
    """Map the embedded alias to its converted checkpoint, check local folders (a model folder needs config.json, a
    tokenizer folder tokenizer_config.json), pass hub ids through."""
    if name_or_path in EMBEDDED_ALIASES:
        return str(embedded_checkpoint())
    path = Path(name_or_path).expanduser()
    if path.exists():
        marker = MARKER_FILES[kind]
        if not (path / marker).is_file():
            raise FileNotFoundError(f"{kind} path {name_or_path!r} exists but has no {marker} (not an HF {kind} "
                                    "folder)")
        return str(path)
    if _HUB_ID.match(name_or_path):
        return name_or_path
    raise FileNotFoundError(
        f"model {name_or_path!r} is not a local checkpoint folder, not a hub id (owner/name), and not the embedded "
        f"default ({', '.join(EMBEDDED_ALIASES[:2])})"
    )


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """`auto` or None -> bf16 on a CUDA device that supports it, else fp32."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid: auto, {', '.join(DTYPES)}")
    return getattr(torch, DTYPES[dtype])


def _from_pretrained(loader, name_or_path: str, kind: str = "model", **kwargs):
    """`loader.from_pretrained` on the resolved path; a hub id that cannot be fetched (offline, misspelt, gated)
    raises `FileNotFoundError` naming it instead of transformers' OSError."""
    resolved = resolve_model_path(name_or_path, kind)
    try:
        return loader.from_pretrained(resolved, **kwargs)
    except OSError as err:
        if Path(resolved).exists():
            raise
        raise FileNotFoundError(f"model {name_or_path!r} is not a local folder and could not be loaded from the "
                                f"Hugging Face hub (offline, misspelt or gated?): {err}") from err


def load_tokenizer(name_or_path: str):
    """Load a tokenizer and make sure it has a pad token (eos when missing)."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, name_or_path, "tokenizer")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name_or_path: str, dtype: str | torch.dtype | None = "auto", device: str | None = None,
                   attn_implementation: str | None = None):
    """Load a causal LM for training or scoring; `device=None` leaves placement to the caller (Trainer/accelerate);
    `attn_implementation=None` keeps transformers' default kernel, any other value that transformers or the
    machine cannot run is a `ValueError` naming the setting."""
    from transformers import AutoModelForCausalLM

    torch_dtype = resolve_dtype(dtype)  # outside the try: a bad dtype is not a kernel error
    kernel = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        model = _from_pretrained(AutoModelForCausalLM, name_or_path, dtype=torch_dtype, **kernel)
    except (ImportError, ValueError) as err:
        if not kernel:
            raise
        raise ValueError(f"attn_implementation={attn_implementation!r} cannot be used: {err}") from err
    return model.to(device) if device is not None else model
