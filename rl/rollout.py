"""Rollout backends: who generates the completions of a GRPO step.

Both go through TRL's own generation code; prift only picks one and records the choice in run.json.

| name | generation | available when |
|---|---|---|
| ``vllm`` | TRL's vLLM integration (``use_vllm``; ``vllm_mode`` colocate or server) | ``vllm`` importable and CUDA present |
| ``hf`` | ``model.generate`` inside the trainer | always |

``auto`` takes the first available backend of that table.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch


def _vllm_missing() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "the vllm package is not installed (pip install 'prift[vllm]')"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return None


# backend name -> a check returning why the backend cannot run here (None = available), in `auto` preference order
BACKENDS: dict[str, Callable[[], str | None]] = {"vllm": _vllm_missing, "hf": lambda: None}


def resolve_backend(requested: str) -> str:
    """The backend to use for ``requested`` (``auto``, ``vllm`` or ``hf``); an unavailable explicit choice raises."""
    if requested == "auto":
        return next(name for name, missing in BACKENDS.items() if missing() is None)
    if requested not in BACKENDS:
        raise ValueError(f"backend: unknown value {requested!r}; valid: auto, {', '.join(BACKENDS)}")
    reason = BACKENDS[requested]()
    if reason is not None:
        raise ValueError(f"backend={requested!r} cannot run here: {reason}")
    return requested
