"""`PriorityTrainer`: TRL's `SFTTrainer` with the token-priority loss `sum_t m_t * CE_t * mask_t / D`.

Only `compute_loss` changes; the training loop, checkpointing, logging and distribution are TRL's. When the rule
needs nothing but the target log-prob of the online model, or its signals come from the reference cache, the loss
rides on TRL's fused LM head (per-token log-probs without building [B, T, V] logits), so PriFT costs what plain
SFT costs. Rules that read full-vocabulary signals of the *online* model (mass, eaft on source=online) build the
logits once and reuse them for both the loss and the signals.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
from trl.trainer.utils import pad

from prift.sft.lengths import TruncationReport, measure_truncation
from prift.sft.loss import priority_loss
from prift.sft.methods import Method
from prift.sft.objectives import TopK, online_logp_at, term_losses
from prift.sft.priorities import adaptive_tau, apply_rule, get_rule, segment_ids
from prift.sft.signals import SIGNAL_NAMES, signals_from_logits
from prift.sft.sources import CACHE_COLUMN_PREFIX, EmaSource, LiveModelSource, zero_stage
from prift.sft.topk import TOPK_FIELDS

TOKEN_LABELS = "token_labels"
EXTRA_COLUMNS = tuple(CACHE_COLUMN_PREFIX + name for name in SIGNAL_NAMES + TOPK_FIELDS) + (TOKEN_LABELS,)
INTEGER_COLUMNS = (CACHE_COLUMN_PREFIX + "topk_ids",)


class PriorityCollator(DataCollatorForLanguageModeling):
    """TRL's collator, also carrying the per-token columns (`ref_<signal>`, `token_labels`, and the top-k ones, a
    vector per token) exactly like `input_ids`: right-padded with 0, or under padding-free (packed) batches
    concatenated into the one row. Float32, but `ref_topk_ids` int64."""

    @classmethod
    def like(cls, collator: DataCollatorForLanguageModeling) -> PriorityCollator:
        """This collator with every setting of TRL's `collator` (pad token, padding-free, pad multiple, ...)."""
        return cls(**{f.name: getattr(collator, f.name) for f in dataclasses.fields(collator)})

    def torch_call(self, examples):
        extras = [c for c in EXTRA_COLUMNS if c in examples[0]]
        batch = super().torch_call([{k: v for k, v in ex.items() if k not in extras} for ex in examples])
        for column in extras:
            dtype = torch.long if column in INTEGER_COLUMNS else torch.float32
            values = [torch.tensor(ex[column], dtype=dtype) for ex in examples]
            if self.padding_free:
                values = [torch.cat(values)]
            batch[column] = pad(values, padding_value=0.0, padding_side="right",
                                pad_to_multiple_of=self.pad_to_multiple_of)
        return batch


class EmaCallback(TrainerCallback):
    """Moves the EMA source toward the online model after every optimizer step."""

    def __init__(self, source: EmaSource):
        self.source = source

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.source.update(model)

    def on_save(self, args, state, control, **kwargs):
        """Store the EMA in the checkpoint just written: the EMA is training state, like the optimizer's."""
        if state.is_world_process_zero:
            self.source.save(Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")


class PriorityTrainer(SFTTrainer):
    """SFTTrainer whose loss weighs each response token by a priority m_t from a rule fed by a signal source.

    `method`: the rule and its parameters; `source`: where the rule's signals come from (`OnlineSource`,
    `CachedReference`, `LiveModelSource`, `EmaSource`); `reference`: where rho1-style rules read reference signals;
    `divisor`: `response` or `kept` (see `prift.sft.loss`). The trainer builds its collator itself: TRL's, with
    every setting TRL chose (padding-free when packing), upgraded to a `PriorityCollator`.

    Packing (`packing=True`) is deferred to `get_train_dataloader`, so that per-token columns attached to the
    prepared rows after `__init__` (reference-cache signals, token labels) are packed along with their tokens.
    """

    # compute_loss scales for gradient accumulation itself: by the accumulated batch's token count (num_items_in_batch,
    # divisor=response) or by the accumulation steps (divisor=kept)
    loss_is_scaled_for_ga = True

    def __init__(self, *args, method: Method, source, reference=None, divisor: str = "response",
                 vocab_chunk: int | None = None, **kwargs):
        self.method = method
        self.rule = get_rule(method.rule)
        self.divisor = divisor
        self.vocab_chunk = vocab_chunk
        self.truncation: dict[str, TruncationReport] = {}
        self.packing: dict | None = None  # rows in, sequences out, once the training rows are packed
        self._packed = None
        super().__init__(*args, data_collator=None, **kwargs)
        self.data_collator = PriorityCollator.like(self.data_collator)
        self.set_sources(source, reference)

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        """TRL's preparation in two passes: tokenize without truncating, measure the rows longer than `max_length`
        into `self.truncation[dataset_name]`, then let TRL truncate, drop emptied rows and shuffle as it would have.

        Training rows to be packed are prepared unpacked and unshuffled (`pack` shuffles and packs them later):
        truncated to `max_length` for the `bfd` strategy, which would cut them there anyway, and kept whole for
        `bfd_split` / `wrapped`, which split them. Pre-tokenized or streamed data and `max_length=None` go through
        TRL's single pass unmeasured."""
        from datasets import Dataset

        if packing and dataset_name == "train" and isinstance(dataset, Dataset):
            if args.max_length is None:
                raise ValueError("packing=True needs max_length: it is the length of the packed sequences")
            unpacked = copy.copy(args)
            unpacked.shuffle_dataset = False
            if args.packing_strategy != "bfd":
                unpacked.max_length = None
            return self._prepare_dataset(dataset, processing_class, unpacked, False, formatting_func, dataset_name)
        if (packing or args.max_length is None or not isinstance(dataset, Dataset)
                or "input_ids" in dataset.column_names):
            return super()._prepare_dataset(dataset, processing_class, args, packing, formatting_func, dataset_name)
        untruncated = copy.copy(args)
        untruncated.max_length, untruncated.shuffle_dataset = None, False
        tokenized = super()._prepare_dataset(dataset, processing_class, untruncated, packing, formatting_func,
                                             dataset_name)
        self.truncation[dataset_name] = measure_truncation(tokenized, args.max_length, args.truncation_mode)
        return super()._prepare_dataset(tokenized, processing_class, args, packing, None, dataset_name)

    def pack(self, dataset):
        """`dataset`'s prepared rows packed into `max_length` sequences as TRL packs them (`trl.pack_dataset` with
        `packing_strategy`, shuffled before and after when `shuffle_dataset`), every per-token column (`input_ids`,
        `labels`, `ref_<signal>`, `token_labels`) cut and joined at the same places.

        The cached reference scored each row whole, so under `bfd` every value is the one the reference gives that
        token in its own row; a row that `bfd_split` or `wrapped` cuts keeps the values of its whole-row context.
        """
        from trl.data_utils import pack_dataset

        args = self.args
        dataset = dataset.select_columns(["input_ids", "labels", *(c for c in EXTRA_COLUMNS
                                                                   if c in dataset.column_names)])
        if args.shuffle_dataset:
            dataset = dataset.shuffle(seed=args.seed)
        map_kwargs = {"desc": "Packing train dataset", "num_proc": args.dataset_num_proc}
        packed = pack_dataset(dataset, args.max_length, args.packing_strategy, map_kwargs)
        return packed.shuffle(seed=args.seed) if args.shuffle_dataset else packed

    def get_train_dataloader(self):
        """TRL's dataloader over the packed training rows when `packing` (packed once per assigned dataset)."""
        if self.args.packing and self.train_dataset is not self._packed:
            rows = len(self.train_dataset)
            self.train_dataset = self._packed = self.pack(self.train_dataset)
            self.packing = {"strategy": self.args.packing_strategy, "max_length": self.args.max_length,
                            "rows": rows, "sequences": len(self._packed)}
        return super().get_train_dataloader()

    def set_sources(self, source, reference=None) -> None:
        """Install the signal sources (they may need the tokenized dataset, which exists only after __init__); a live
        reference is placed per `args.reference_placement` (see `prift.sft.sources.place_frozen`)."""
        self.signal_source, self.reference_source = source, reference
        if isinstance(source, EmaSource):
            if zero_stage(self.accelerator) == 3:
                raise ValueError("source=ema under DeepSpeed ZeRO-3: the EMA copies and updates whole "
                                 "parameters, which ZeRO-3 partitions; use ZeRO-2, DDP or one process")
            self.add_callback(EmaCallback(source))
        live = {id(s): s for s in (source, reference) if isinstance(s, LiveModelSource) and s.engine is None}
        for frozen in live.values():
            frozen.place(self.accelerator, self.args.reference_placement)

    def create_optimizer(self, *args, **kwargs):
        """TRL's optimizer, whose `step` skips (and counts) an update when any gradient is NaN or inf.

        The gradients are checked after DDP's all-reduce, so every rank takes the same decision; a skipped step leaves
        the weights and optimizer state untouched, like fp16 loss scaling does.
        """
        optimizer = super().create_optimizer(*args, **kwargs)
        if getattr(optimizer, "_prift_guarded", False):
            return optimizer
        step = optimizer.step
        self.skipped_steps = 0

        def guarded_step(*step_args, **step_kwargs):
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if grads and not torch.isfinite(torch.stack(torch._foreach_norm(grads))).all():
                self.skipped_steps += 1
                self._metrics["train"]["skipped_nonfinite_steps"].append(float(self.skipped_steps))
                print(f"[prift] non-finite gradient at step {self.state.global_step + 1}: update skipped "
                      f"({self.skipped_steps} so far)", flush=True)
                return None
            return step(*step_args, **step_kwargs)

        optimizer.step = guarded_step
        optimizer._prift_guarded = True
        return optimizer

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        self._signature_columns = list(dict.fromkeys([*self._signature_columns, *EXTRA_COLUMNS]))

    def _online_needs(self) -> set[str]:
        """Signals of the online model this rule reads."""
        needs = set(self.rule.signals) if self.signal_source.kind == "online" else set()
        return needs | ({"logp"} if self.rule.reference_signals else set())

    def _forward(self, model, inputs: dict, mask: torch.Tensor):
        """Per-token log-probs (with grad) [B, T-1], online signals, and fused outputs (None on the logits path).

        When the method reads the reference's top-k, the backbone's last hidden states are kept (with grad) in
        `self._hidden` for `_topk`."""
        full_vocab = self._online_needs() - {"logp"}
        if not full_vocab:
            hook = None
            if self.method.needs_topk:
                captured = []
                backbone = self.accelerator.unwrap_model(model).base_model
                hook = backbone.register_forward_hook(lambda m, a, out: captured.append(out.last_hidden_state))
            try:
                outputs = model(**inputs, fused_lm_head=True)
            finally:
                if hook is not None:
                    hook.remove()
                    self._hidden = captured[-1][:, :-1]
            return outputs.log_probs, {"logp": outputs.log_probs.detach()}, outputs
        if self.method.needs_topk:
            raise ValueError(f"rule {self.rule.name!r} on source=online builds full logits; the top-k loss terms and "
                             "rules ride on TRL's fused head only: use another rule or source")
        labels = inputs["labels"][:, 1:]
        logits = model(**{k: v for k, v in inputs.items() if k != "labels"}).logits[:, :-1]
        logp = logits.float().log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1) * mask
        online = signals_from_logits(logits.detach(), labels, full_vocab, self.vocab_chunk)
        return logp, {"logp": logp.detach(), **online}, None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise NotImplementedError("PriorityTrainer computes per-token log-probs, not logits; use "
                                      "prediction_loss_only=True for evaluation")
        mode = "train" if self.model.training else "eval"
        extras = {k: inputs.pop(k) for k in EXTRA_COLUMNS if k in inputs}
        inputs["use_cache"] = False
        mask = inputs["labels"][:, 1:] != -100
        token_logp, online, outputs = self._forward(model, inputs, mask)
        batch = {**inputs, **extras}
        names = self.rule.signals if self.signal_source.kind == "online" else (*dict.fromkeys([*self.rule.signals,
                                                                                                 "logp"]),)
        signals = self.signal_source.signals(batch, names, online=online)  # + the source's logp, for diagnostics
        if self.rule.reference_signals:
            if self.reference_source is None:
                raise ValueError(f"rule {self.rule.name!r} reads reference signals but no reference was configured")
            ref = self.reference_source.signals(batch, self.rule.reference_signals)
            signals.update({f"ref_{name}": value for name, value in ref.items()} | {"logp": online["logp"]})
        if self.rule.data:
            signals.update({name: batch[name][:, 1:] for name in self.rule.data})
        if "position_ids" in inputs:  # sequences of a packed row, for rules that aggregate per sequence (TALR)
            signals["segments"] = segment_ids(inputs["position_ids"])[:, 1:]
        token_loss, extra = -token_logp, None
        if self.method.needs_topk:
            topk = self._topk(model, batch, token_logp, mask)
            if self.rule.topk:
                signals.update(entropy=outputs.entropy.detach(), topk_kl=topk.kl("reverse").detach())
            replaced, extra = term_losses(self.method.terms, topk)
            token_loss = token_loss if replaced is None else replaced
            self._log_topk_metrics(mode, topk, mask)
        weights = apply_rule(self.rule, signals, mask, **self.method.params)
        loss = priority_loss(token_loss, weights, mask, self.divisor, num_items_in_batch, extra)
        if self.divisor == "kept" or num_items_in_batch is None:
            # A mean over this micro-batch (kept tokens have no count across the accumulated batch): average it over
            # the accumulation steps here, since `loss_is_scaled_for_ga` tells the Trainer not to; DDP's gradient
            # averaging then averages it across ranks.
            if self.model.training:
                loss = loss / self.current_gradient_accumulation_steps
        elif self.args.average_tokens_across_devices:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        self._log_priority_metrics(mode, token_logp.detach(), weights, mask, outputs, inputs)
        self._log_diagnostics(mode, token_logp.detach(), signals, mask)
        return loss

    def _topk(self, model, batch: dict, token_logp: torch.Tensor, mask: torch.Tensor) -> TopK:
        """The reference's top-k (cached or live) beside the online log-probs at its ids, with gradient, from the
        hidden states `_forward` kept (`prift.sft.objectives.online_logp_at`)."""
        if self.reference_source is None:
            raise ValueError(f"method {self.method} reads the reference's top-k but no reference was configured")
        ref = self.reference_source.topk(batch)
        ref_target = self.reference_source.signals(batch, ("logp",))["logp"]
        head = self.accelerator.unwrap_model(model).get_output_embeddings()
        labels = batch["labels"][:, 1:]
        hidden, self._hidden = self._hidden, None
        online = online_logp_at(hidden, head.weight, getattr(head, "bias", None), ref["topk_ids"].long(), token_logp,
                                labels, mask)
        return TopK(ref["topk_ids"].long(), ref["topk_logp"].float() * mask[..., None],
                    ref["topk_tail"].float() * mask, ref_target * mask, labels.clamp(min=0), online, token_logp)

    def _log_topk_metrics(self, mode, topk: TopK, mask) -> None:
        """KL_k(reference || online) and the reference's tail mass beyond its top-k, means over response tokens."""
        maskf = mask.float()
        count = max(float(maskf.sum()), 1.0)
        self._metrics[mode]["topk_kl_ref_online"].append(float((topk.kl("forward").detach() * maskf).sum()) / count)
        self._metrics[mode]["topk_ref_tail"].append(float((topk.ref_tail * maskf).sum()) / count)

    def _log_diagnostics(self, mode, token_logp, signals, mask) -> None:
        """The PriFT paper's training-time diagnostics on this batch's response tokens, averaged over each logging
        window like the other metrics: Pearson r of the online vs the source's target log-probs (Fig 1a as a curve;
        ``online_<reference|ema>_pearson``), TALR's adaptive tau and the EMA's relative distance from the start
        checkpoint (``ema_distance_from_start``, see :meth:`EmaSource.distance_from_start`)."""
        kind = self.signal_source.kind.split("/")[0]
        source_logp = signals.get("ref_logp", signals.get("logp")) if kind != "online" else signals.get("ref_logp")
        if source_logp is not None:
            name = "online_ema_pearson" if kind == "ema" else "online_reference_pearson"
            pair = torch.stack([token_logp[mask].double(), source_logp[mask].double()])
            if pair.shape[1] > 1:
                self._metrics[mode][name].append(torch.corrcoef(pair)[0, 1].item())
        if isinstance(self.signal_source, EmaSource) and mode == "train":
            self._metrics[mode]["ema_distance_from_start"].append(self.signal_source.distance_from_start())
        if self.rule.name == "talr" and self.method.params.get("tau") is None:
            tau = adaptive_tau(signals["logp"], mask.float(), signals.get("segments"))
            self._metrics[mode]["talr_tau"].append(float(tau))

    def _log_priority_metrics(self, mode, token_logp, weights, mask, outputs, inputs) -> None:
        """Unweighted NLL, mean weight and kept fraction over response tokens, the fraction of near-deterministic
        ones (online p > 0.9, the paper's Fig 1b) (plus TRL's entropy/accuracy), and the tokens seen (attended
        tokens; every position of a padding-free row, as TRL counts them)."""
        gather = self.accelerator.gather_for_metrics
        maskf = mask.float()
        sums = {
            "nll": -(token_logp * maskf).sum(),
            "mean_weight": (weights * maskf).sum(),
            "kept_fraction": ((weights != 0).float() * maskf).sum(),
            "near_deterministic": ((token_logp > math.log(0.9)).float() * maskf).sum(),
        }
        if outputs is not None:
            sums["entropy"] = outputs.entropy.detach().sum()
            sums["mean_token_accuracy"] = outputs.is_top1.float().sum()
        count = gather(maskf.sum()).sum()
        for name, value in sums.items():
            total = gather(value.detach()).sum()
            self._metrics[mode][name].append((total / count).item() if count > 0 else 0.0)
        if mode == "train":
            attention_mask = inputs.get("attention_mask")
            seen = attention_mask.sum() if attention_mask is not None else torch.tensor(
                inputs["input_ids"].numel(), device=inputs["input_ids"].device)
            self._total_train_tokens += int(gather(seen).sum().item())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
