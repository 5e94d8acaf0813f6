"""Signal sources: where a rule's signals come from — the online model, a frozen reference, or an EMA.

All sources return signals aligned with TRL's fused outputs: shape [B, T-1], position t scoring `labels[:, t+1]`.

- `online`: the model being trained (its target log-prob comes free with the training forward).
- `reference`: a frozen model, either read from the reference-signal cache (columns `ref_<signal>` riding in the
  batch, no second model in memory) or computed on the fly by a no-grad forward of a second model.
- `ema`: a no-grad copy of the online model updated after every optimizer step, theta_ema <- rho * theta_ema +
  (1 - rho) * theta. rho = 0 tracks the online model (DFT's weights), rho = 1 stays at the start (PriFT's).

A live reference is placed for the way training is distributed (`place_frozen`): a whole copy per process, or under
DeepSpeed ZeRO-3 partitioned across the processes like the policy.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, get_args

import torch

from prift.models.hardware import REFERENCE_PLACEMENTS
from prift.sft.signals import signals_from_hidden, signals_from_logits

SOURCES = ("online", "reference", "ema")
ReferenceMode = Literal["cache", "live"]
REFERENCE_MODES = get_args(ReferenceMode)
CACHE_COLUMN_PREFIX = "ref_"
EMA_STATE_FILE = "ema_model.safetensors"  # written into every checkpoint-* folder of an EMA run
DISTANCE_SAMPLE = 1 << 16  # start values kept per tensor for EmaSource.distance_from_start
START_PREFIX = "start_sample."  # their keys in EMA_STATE_FILE (a resumed run measures from the same start)


def _projects_plainly(model) -> bool:
    """True when the logits are exactly `lm_head(hidden)` (no softcapping or logit scaling), so signals can be
    computed from hidden states one token chunk at a time."""
    config = model.config.get_text_config()
    scaled = any(getattr(config, name, None) not in (None, 1.0) for name in
                 ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling"))
    return not scaled


def _gathered(*params: torch.nn.Parameter):
    """Context in which ZeRO-3-partitioned `params` are whole on every process (a collective: all processes must
    enter it alike); a no-op for ordinary parameters."""
    partitioned = [p for p in params if hasattr(p, "ds_id")]
    if not partitioned:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(partitioned)


def _last_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                 position_ids: torch.Tensor | None, sharded: bool) -> torch.Tensor:
    """The backbone's last hidden states [B, T, H]. A ZeRO-3 sharded model runs whole, projecting only the last
    position (`logits_to_keep=1`), because its engine resets its parameter trace in the root module's forward hook;
    others run only the backbone (the root `forward` of a copied policy may be TRL's fused head, bound to the
    original). `position_ids` restarting at 0 mark the rows of a packed (padding-free) sequence: attention stays
    inside each row."""
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
              "use_cache": False}
    if not sharded:
        return model.base_model(**inputs).last_hidden_state
    captured = []
    hook = model.base_model.register_forward_hook(lambda module, args, out: captured.append(out.last_hidden_state))
    try:
        model(**inputs, logits_to_keep=1)
    finally:
        hook.remove()
    return captured[0]


@torch.no_grad()
def model_signals(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor,
                  names: Iterable[str], vocab_chunk: int | None = None,
                  position_ids: torch.Tensor | None = None, top_k: int | None = None) -> dict[str, torch.Tensor]:
    """No-grad signals of `model` on a batch: [B, T-1], position t scoring `labels[:, t+1]`.

    Runs the backbone once and projects hidden states through the LM head in token chunks, so the [B, T, V]
    logits are never built (falls back to full logits for models with logit softcapping or scaling). A ZeRO-3
    sharded model's LM head is gathered once per batch, so every process runs the same collectives however many
    tokens it scores. Padding-free batches pass their `position_ids` (and no attention mask). `top_k` adds the
    reference's top-k summary (`topk_ids`, `topk_logp`, `topk_tail`; see `prift.sft.topk`).
    """
    names = tuple(names)
    shifted = labels[:, 1:]
    if not names and not top_k:
        return {}
    if _projects_plainly(model):
        head = model.get_output_embeddings()
        hidden = _last_hidden(model, input_ids, attention_mask, position_ids, sharded=hasattr(head.weight, "ds_id"))
        with _gathered(head.weight):
            weight, bias = head.weight, getattr(head, "bias", None)
            return signals_from_hidden(hidden[:, :-1], lambda h: torch.nn.functional.linear(h, weight, bias),
                                       weight.shape[0], shifted, names, vocab_chunk, top_k)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                   use_cache=False).logits
    return signals_from_logits(logits[:, :-1], shifted, names, vocab_chunk, top_k)


def zero_stage(accelerator) -> int | None:
    """The DeepSpeed ZeRO stage `accelerator` trains with (None without DeepSpeed)."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return plugin.zero_stage if plugin is not None else None


def unsharded(model):
    """`model` with whole parameters: a plain copy, gathered one parameter at a time, of a model that ZeRO-3
    partitioned when it was loaded (transformers loads under `deepspeed.zero.Init` whenever ZeRO-3 is on; a
    collective); any other model as it is."""
    if not any(hasattr(p, "ds_id") for p in model.parameters()):
        return model
    plain = type(model)(model.config).to(model.dtype)
    whole = dict(plain.named_parameters())
    for name, param in model.named_parameters():
        with _gathered(param):
            whole[name].data.copy_(param.data)
    return plain


def place_frozen(model, accelerator, placement: str = "auto"):
    """Place a frozen model that runs no-grad during training; return `(model to call, DeepSpeed engine or None)`.

    - `per_rank`: a whole copy on this process's device (`unsharded`), the placement under DDP and ZeRO-0/1/2; no
      communication in its forward.
    - `sharded` (ZeRO-3 only): partitioned across the processes and gathered layer by layer in each forward by a
      DeepSpeed inference engine, the one TRL builds for its reference models (`trl.models.utils.prepare_deepspeed`);
      ~1/P of the memory, an all-gather per layer. Every process must run it equally often.
    - `auto`: `sharded` under ZeRO-3, else `per_rank`.
    """
    if placement not in REFERENCE_PLACEMENTS:
        raise ValueError(f"reference_placement: unknown value {placement!r}; valid: {', '.join(REFERENCE_PLACEMENTS)}")
    stage = zero_stage(accelerator)
    if placement == "auto":
        placement = "sharded" if stage == 3 else "per_rank"
    if placement == "per_rank":
        return unsharded(model).to(accelerator.device).eval().requires_grad_(False), None
    if stage != 3:
        raise ValueError(f"reference_placement=sharded needs DeepSpeed ZeRO-3 (training runs with "
                         f"{'no DeepSpeed' if stage is None else f'ZeRO-{stage}'}); use per_rank or auto")
    from trl.models.utils import prepare_deepspeed

    engine = prepare_deepspeed(model, accelerator)
    return engine.module, engine


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

    def topk(self, inputs: dict) -> dict[str, torch.Tensor]:
        """The cached top-k summary (`topk_ids` [B, T-1, k], `topk_logp`, `topk_tail`), aligned like `signals`."""
        from prift.sft.topk import TOPK_FIELDS

        missing = [CACHE_COLUMN_PREFIX + name for name in TOPK_FIELDS if CACHE_COLUMN_PREFIX + name not in inputs]
        if missing:
            raise KeyError(f"the batch has no cached reference columns {missing}; build the reference cache with top_k")
        return {name: inputs[CACHE_COLUMN_PREFIX + name][:, 1:] for name in TOPK_FIELDS}


class LiveModelSource:
    """Signals from a frozen second model kept in memory and run no-grad on every batch."""

    kind = "reference/live"

    def __init__(self, model, vocab_chunk: int | None = None, top_k: int | None = None):
        self.model = model.eval().requires_grad_(False)
        self.vocab_chunk = vocab_chunk
        self.top_k = top_k  # k of the top-k summary `topk` returns
        self.engine = None  # the DeepSpeed engine of a sharded model

    def place(self, accelerator, placement: str = "auto") -> None:
        """Move the model where training's distribution wants it (see `place_frozen`) and say where it went."""
        self.model, self.engine = place_frozen(self.model, accelerator, placement)
        where = (f"sharded across {accelerator.num_processes} processes (ZeRO-3)" if self.engine is not None
                 else f"per rank, on {accelerator.device}")
        accelerator.print(f"[prift] {self.kind}: {where}", flush=True)

    def signals(self, inputs: dict, names: Iterable[str], **_) -> dict[str, torch.Tensor]:
        return model_signals(self.model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"], names,
                             self.vocab_chunk, inputs.get("position_ids"))

    def topk(self, inputs: dict) -> dict[str, torch.Tensor]:
        """The model's top-k summary on the batch (`prift.sft.topk`), computed like the cache computes it."""
        if not self.top_k:
            raise ValueError(f"{self.kind}: no top_k was set, so it gives no top-k distribution")
        return model_signals(self.model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"], (),
                             self.vocab_chunk, inputs.get("position_ids"), top_k=self.top_k)


def unpatched_copy(model):
    """A deep copy of ``model`` running its class's own forward. TRL's fused-head patch (and accelerate's autocast
    wrapper) close over the *original* model: a copied patched forward would score with the online model."""
    clone = copy.deepcopy(model)
    for name in ("forward", "_original_forward"):
        clone.__dict__.pop(name, None)
    return clone


class EmaSource(LiveModelSource):
    """An EMA of the online model, initialised at the start checkpoint; call `update(model)` after each step.

    The average lives in fp32 shadow weights whatever the policy's dtype (a bf16 EMA updated in place drops updates
    below half a bf16 ulp: at rho 0.99 it moves about half as far as the exact one); the scoring copy, in the policy's
    dtype, is refreshed from them after each update. Built from an unpatched copy (:func:`unpatched_copy`)."""

    kind = "ema"

    def __init__(self, model, rho: float, vocab_chunk: int | None = None):
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"ema_rho must lie in [0, 1], got {rho}")
        super().__init__(unpatched_copy(model), vocab_chunk)
        self.rho = rho
        self.shadow = self._shadow({name: p.detach().float() for name, p in self.model.named_parameters()})
        self._start = self._start_sample()

    def _start_sample(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """A fixed random sample of each tensor's start values (at most ``DISTANCE_SAMPLE`` entries: a second copy
        of the model would be too much memory), for :meth:`distance_from_start`."""
        size = DISTANCE_SAMPLE
        generator = torch.Generator().manual_seed(0)
        sample = {}
        for name, shadow in self.shadow.items():
            count = shadow.numel()
            index = torch.randperm(count, generator=generator)[:size] if count > size else torch.arange(count)
            index = index.to(shadow.device)
            sample[name] = (index, shadow.reshape(-1)[index].clone())
        return sample

    @torch.no_grad()
    def distance_from_start(self) -> float:
        """||theta_ema - theta_0|| / ||theta_0||, each tensor's squared sums estimated from its fixed sample and
        scaled by numel / sample size (exact for tensors no larger than the sample)."""
        moved = total = 0.0
        for name, (index, start) in self._start.items():
            shadow = self.shadow[name]
            scale = shadow.numel() / index.numel()
            moved += scale * (shadow.reshape(-1)[index] - start).double().square().sum().item()
            total += scale * start.double().square().sum().item()
        return math.sqrt(moved / total) if total > 0 else 0.0

    def _shadow(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """fp32 shadow weights beside the scoring copy's parameters: an fp32 parameter is its own shadow (no second
        copy), any other dtype gets ``values[name]`` on the parameter's device."""
        return {name: p.detach() if p.dtype == torch.float32 else values[name].to(p.device, torch.float32).clone()
                for name, p in self.model.named_parameters()}

    def place(self, accelerator, placement: str = "auto") -> None:
        """The EMA and its shadow on this process's device (a whole copy per rank: ZeRO-3 is refused upstream)."""
        super().place(accelerator, "per_rank")
        self.shadow = self._shadow(self.shadow)
        self._start = {name: (index.to(self.shadow[name].device), start.to(self.shadow[name].device))
                       for name, (index, start) in self._start.items()}

    @torch.no_grad()
    def update(self, online) -> None:
        """theta_ema <- rho * theta_ema + (1 - rho) * theta_online, in fp32."""
        params = dict(self.model.named_parameters())
        for (name, shadow), param in zip(self.shadow.items(), online.parameters(), strict=True):
            shadow.lerp_(param.detach().to(shadow.device, torch.float32), 1.0 - self.rho)
            if params[name].data_ptr() != shadow.data_ptr():
                params[name].copy_(shadow)

    def save(self, checkpoint: str | Path) -> Path:
        """Write the fp32 EMA weights into a checkpoint folder, so that resuming from it continues this EMA."""
        from safetensors.torch import save_file

        path = Path(checkpoint) / EMA_STATE_FILE
        tensors = {name: value.contiguous().cpu() for name, value in self.shadow.items()}
        tensors |= {START_PREFIX + name: start.cpu() for name, (_, start) in self._start.items()}
        save_file(tensors, str(path))
        return path

    @torch.no_grad()
    def load(self, checkpoint: str | Path) -> None:
        """Restore the EMA weights saved in a checkpoint folder (resuming an EMA run)."""
        from safetensors.torch import load_file

        path = Path(checkpoint) / EMA_STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume the EMA source from {checkpoint}: it has no {EMA_STATE_FILE} "
                                    "(written by a run without source=ema?); use another output_dir or resume=false")
        saved = load_file(str(path))
        missing = set(self.shadow) - set(saved)
        if missing:
            raise ValueError(f"{path} lacks EMA weights {sorted(missing)[:3]}: written for another model?")
        params = dict(self.model.named_parameters())
        for name, shadow in self.shadow.items():
            shadow.copy_(saved[name])
            if params[name].data_ptr() != shadow.data_ptr():
                params[name].copy_(shadow)
            if START_PREFIX + name in saved:
                self._start[name][1].copy_(saved[START_PREFIX + name])


class OnlineSource:
    """Signals of the model being trained, from the training forward (`logp` from the fused head, or any signal
    from full logits when the trainer had to build them)."""

    kind = "online"

    def signals(self, inputs: dict, names: Iterable[str], *, online: dict[str, torch.Tensor], **_):
        missing = set(names) - set(online)
        if missing:
            raise KeyError(f"online signals {sorted(missing)} were not computed by the training forward")
        return {name: online[name].detach() for name in names}
