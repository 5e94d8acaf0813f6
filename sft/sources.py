"""Signal sources: where a rule's signals come from — the online model, a frozen reference, or an EMA.

All sources return signals aligned with TRL's fused outputs: shape [B, T-1], position t scoring `labels[:, t+1]`.

- `online`: the model being trained (its target log-prob comes free with the training forward).
- `reference`: a frozen model, either read from the reference-signal cache (columns `ref_<signal>` riding in the
  batch, no second model in memory) or computed on the fly by a no-grad forward of a second model.
- `ema`: a no-grad copy of the online model updated after every optimizer step, theta_ema <- rho * theta_ema +
  (1 - rho) * theta. rho = 0 tracks the online model (DFT's weights), rho = 1 stays at the start (PriFT's).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import torch

from prift.sft.signals import signals_from_hidden, signals_from_logits

SOURCES = ("online", "reference", "ema")
REFERENCE_MODES = ("cache", "live")
CACHE_COLUMN_PREFIX = "ref_"
EMA_STATE_FILE = "ema_model.safetensors"  # written into every checkpoint-* folder of an EMA run


def _projects_plainly(model) -> bool:
    """True when the logits are exactly `lm_head(hidden)` (no softcapping or logit scaling), so signals can be
    computed from hidden states one token chunk at a time."""
    config = model.config.get_text_config()
    scaled = any(getattr(config, name, None) not in (None, 1.0) for name in
                 ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling"))
    return not scaled


@torch.no_grad()
def model_signals(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor,
                  names: Iterable[str], vocab_chunk: int | None = None) -> dict[str, torch.Tensor]:
    """No-grad signals of `model` on a batch: [B, T-1], position t scoring `labels[:, t+1]`.

    Runs the backbone once and projects hidden states through the LM head in token chunks, so the [B, T, V]
    logits are never built (falls back to full logits for models with logit softcapping or scaling).
    """
    names = tuple(names)
    shifted = labels[:, 1:]
    if not names:
        return {}
    if _projects_plainly(model):
        hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        head = model.get_output_embeddings()
        return signals_from_hidden(hidden[:, :-1], head, head.weight.shape[0], shifted, names, vocab_chunk)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    return signals_from_logits(logits[:, :-1], shifted, names, vocab_chunk)


class CachedReference:
    """Reference signals read from the batch's `ref_<signal>` columns (per-token, aligned with `labels`)."""

    kind = "reference/cache"

    def signals(self, inputs: dict, names: Iterable[str], **_) -> dict[str, torch.Tensor]:
        out = {}
        for name in names:
            column = CACHE_COLUMN_PREFIX + name
            if column not in inputs:
                raise KeyError(f"the batch has no cached reference column {column!r}; rebuild the reference cache")
            out[name] = inputs[column][:, 1:].float()
        return out


class LiveModelSource:
    """Signals from a frozen second model kept in memory and run no-grad on every batch."""

    kind = "reference/live"

    def __init__(self, model, vocab_chunk: int | None = None):
        self.model = model.eval().requires_grad_(False)
        self.vocab_chunk = vocab_chunk

    def signals(self, inputs: dict, names: Iterable[str], **_) -> dict[str, torch.Tensor]:
        return model_signals(self.model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"], names,
                             self.vocab_chunk)


class EmaSource(LiveModelSource):
    """An EMA of the online model, initialised at the start checkpoint; call `update(model)` after each step."""

    kind = "ema"

    def __init__(self, model, rho: float, vocab_chunk: int | None = None):
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"ema_rho must lie in [0, 1], got {rho}")
        super().__init__(copy.deepcopy(model), vocab_chunk)
        self.rho = rho

    @torch.no_grad()
    def update(self, online) -> None:
        """theta_ema <- rho * theta_ema + (1 - rho) * theta_online."""
        for ema_param, param in zip(self.model.parameters(), online.parameters(), strict=True):
            ema_param.lerp_(param.detach().to(ema_param.dtype), 1.0 - self.rho)

    def save(self, checkpoint: str | Path) -> Path:
        """Write the EMA weights into a checkpoint folder, so that resuming from it continues this EMA."""
        from safetensors.torch import save_model

        path = Path(checkpoint) / EMA_STATE_FILE
        save_model(self.model, str(path))
        return path

    def load(self, checkpoint: str | Path) -> None:
        """Restore the EMA weights saved in a checkpoint folder (resuming an EMA run)."""
        from safetensors.torch import load_model

        path = Path(checkpoint) / EMA_STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume the EMA source from {checkpoint}: it has no {EMA_STATE_FILE} "
                                    "(written by a run without source=ema?); use another output_dir or resume=false")
        load_model(self.model, str(path))


class OnlineSource:
    """Signals of the model being trained, from the training forward (`logp` from the fused head, or any signal
    from full logits when the trainer had to build them)."""

    kind = "online"

    def signals(self, inputs: dict, names: Iterable[str], *, online: dict[str, torch.Tensor], **_):
        missing = set(names) - set(online)
        if missing:
            raise KeyError(f"online signals {sorted(missing)} were not computed by the training forward")
        return {name: online[name].detach() for name in names}
