"""Generation backends behind one interface, in a registry: ``hf`` (transformers ``generate``, CPU-capable) and
``vllm`` (optional extra, imported only when used).

``backend.generate(prompts, counts, sampling, seed)`` returns, for each prompt, ``counts[i]`` :class:`Generation`
objects. ``sampling.stop`` strings end a sample and are cut from its text (vLLM's convention);
``sampling.stop_token_ids``, when given, are the tokens that end a sample in place of the model's own EOS (eval sets
them to the chat template's turn end and the EOS tokens, :func:`prift.eval.templates.generation_stops`);
``finish_reason`` is ``stop`` (a stop token or string) or ``length`` (``max_tokens`` reached). ``describe()``
returns the settings and package versions the results json records; a backend's ``generation_config`` attribute,
when it has one, is the checkpoint's (its ``eos_token_id`` joins the stop tokens). Temperature 0 is greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prift.core.registry import Registry


@dataclass(frozen=True)
class Sampling:
    """Sampling settings shared by every backend (``n`` samples per problem; ``temperature=0`` is greedy)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = field(kw_only=True)  # no global default: each benchmark has its own (EvalConfig.sampling)
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()  # empty: the model's own EOS

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_tokens < 1:
            raise ValueError(f"n and max_tokens must be >= 1, got n={self.n}, max_tokens={self.max_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Generation:
    text: str
    tokens: int
    finish_reason: str


class Backend(Protocol):
    def generate(self, prompts: Sequence[str], counts: Sequence[int], sampling: Sampling,
                 seed: int) -> list[list[Generation]]: ...

    def describe(self) -> dict: ...


BACKENDS: Registry = Registry("generation backend", builtins=("prift.eval.backend_hf", "prift.eval.backend_vllm"))


def make_backend(name: str, model: str, **settings) -> Backend:
    """Construct the backend registered as ``name`` for ``model`` (a hub id, a local path or the embedded alias)."""
    return BACKENDS.get(name)(model, **settings)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string (excluded), and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)
