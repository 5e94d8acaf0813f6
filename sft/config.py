"""`PriftSFTConfig`: TRL's `SFTConfig` plus the token-priority settings; the same dataclass is CLI flags and YAML.

Every TrainingArguments/SFTConfig field keeps its meaning; prift changes three defaults so a recipe runs well on
whatever machine it lands on: `bf16` and `activation_checkpointing` default to "on when a CUDA GPU is present" (on a
CPU both make training ~15x slower), and `report_to` defaults to `none`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from trl import SFTConfig

from prift.core.console import ConsoleArguments
from prift.core.datasets import DataArguments
from prift.models.arguments import ModelArguments
from prift.models.hardware import HardwareDefaults, parse_mapping
from prift.sft.data import MessagesLoss
from prift.sft.loss import DIVISORS
from prift.sft.methods import METHODS, resolve_method
from prift.sft.priorities import RULES, get_rule
from prift.sft.sources import REFERENCE_MODES, ReferenceMode


@dataclass
class PriftSFTConfig(HardwareDefaults, ConsoleArguments, ModelArguments, DataArguments, SFTConfig):
    r"""Configuration of the token-priority SFT stage (`prift sft`).

    A *method* is a priority rule fed by a signal source (see `prift.sft.methods`):
    `L = sum_t m_t * CE_t * mask_t / D`, with m_t detached.
    """

    renamed_options = {**ModelArguments.renamed_options, **DataArguments.renamed_options}  # docs/options.md

    messages_loss: MessagesLoss = field(
        default="completion",
        metadata={"help": "Rows in TRL's messages format: completion (loss on the final assistant turn only; every "
                          "earlier turn is the prompt, as the official PriFT code trains) or all (every token of the "
                          "conversation, TRL's own default for messages rows)."})
    method: str = field(
        default="prift_prob",
        metadata={"help": f"Method preset: {', '.join(METHODS)}. A comma-separated list runs each in turn into <output_dir>/<method>, sharing one reference "
                          "cache."})
    rule: str | None = field(
        default=None,
        metadata={"help": f"Override the preset's priority rule: {', '.join(RULES)}."})
    source: str | None = field(
        default=None,
        metadata={"help": "Override the preset's signal source: online (the model being trained), reference (a "
                          "frozen model) or ema (an EMA of the online model, see --ema_rho)."})
    rule_params: str | None = field(
        default=None,
        metadata={"help": "Rule parameters as a JSON/YAML mapping merged over the preset's, e.g. "
                          "'{\"threshold\": 0.4}' (mass, profit), '{\"alpha\": 0.5}' (power, eaft), '{\"tau\": 1.0}' "
                          "(talr), '{\"ratio\": 0.6}' (rho1), '{\"direction\": \"lower\"}' (profit)."})
    loss_terms: str | None = field(
        default=None,
        metadata={"help": "Loss terms on the reference's top-k distribution merged over the preset's, as a JSON/YAML "
                          "mapping term -> parameters (null removes one): kl_anchor {coef, direction: forward = "
                          "KL(ref||online) | reverse}, gift {beta}; e.g. '{\"kl_anchor\": {\"coef\": 0.1}}' turns "
                          "any method into an anchored one. Needs top_k."})
    top_k: int | None = field(
        default=None,
        metadata={"help": "Keep the reference's top-k token ids and log-probs (plus the tail mass) per token, in the "
                          "reference cache or from the live reference: needed by the asft, gift and eksft presets and "
                          "by loss_terms; 20-64 is typical. Set it once per recipe so every variant shares one cache."})
    top_k_dtype: str = field(
        default="bfloat16",
        metadata={"help": "On-disk dtype of the cached top-k log-probs: bfloat16 or float16 (the tail mass stays "
                          "float32)."})
    divisor: str = field(
        default="response",
        metadata={"help": "Loss divisor D: response (all response tokens; PriFT's default) or kept (tokens with "
                          "m_t != 0 only)."})
    reference_model: str | None = field(
        default=None,
        metadata={"help": "Frozen reference for source=reference and rho1: hub id or local path. Default: the start "
                          "checkpoint (model_name_or_path)."})
    reference_mode: ReferenceMode = field(
        default="cache",
        metadata={"help": "cache: score the data once with the reference and store the signals on disk (no second "
                          "model while training); live: keep the reference in memory and run it on every batch."})
    reference_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where reference-signal caches live; default <cache root>/reference-signals "
                          "($PRIFT_CACHE_DIR or ~/.cache/prift)."})
    reference_batch_size: int = field(
        default=8, metadata={"help": "Rows per no-grad reference forward when building the cache."})
    reference_shard_rows: int = field(
        default=256,
        metadata={"help": "Rows per reference-cache shard: the unit a killed build resumes from and that "
                          "processes split among themselves under `accelerate launch`."})
    ema_rho: float = field(
        default=0.99,
        metadata={"help": "EMA source decay: theta_ema <- rho*theta_ema + (1-rho)*theta after every optimizer step. "
                          "0 tracks the online model (DFT), 1 stays at the start checkpoint (PriFT)."})
    vocab_chunk: int | None = field(
        default=None,
        metadata={"help": "Stream full-vocabulary signals (mass, ent20) over vocabulary slices of this size; bounds "
                          "memory for large vocabularies. Default: whole vocabulary per token chunk."})
    resume: bool = field(
        default=True,
        metadata={"help": "Continue from the last checkpoint-* folder in output_dir when one exists."})
    # prift's defaults for inherited fields (bf16, activation checkpointing, report_to: see HardwareDefaults)
    output_dir: str | None = field(default="outputs/sft", metadata={"help": "Where checkpoints and run.json go."})

    def __post_init__(self):
        self.resolve_hardware()
        if isinstance(self.rule_params, str):
            self.rule_params = parse_mapping("rule_params", self.rule_params, '{"threshold": 0.5}')
        if isinstance(self.loss_terms, str):
            self.loss_terms = parse_mapping("loss_terms", self.loss_terms, '{"kl_anchor": {"coef": 0.05}}')
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k: must be a positive number of tokens, got {self.top_k}")
        if self.divisor not in DIVISORS:
            raise ValueError(f"divisor: unknown value {self.divisor!r}; valid: {', '.join(DIVISORS)}")
        if self.reference_mode not in REFERENCE_MODES:
            raise ValueError(f"reference_mode: unknown value {self.reference_mode!r}; valid: "
                             f"{', '.join(REFERENCE_MODES)}")
        for name in self.methods:
            method = self.resolved_method(name)
            if method.needs_topk and self.top_k is None:
                raise ValueError(f"method {name!r} reads the reference's top-k distribution (rule {method.rule!r}, "
                                 f"loss terms {sorted(method.terms)}): set top_k (e.g. 64)")
            if get_rule(method.rule).distinct_reference and _same_model(self.reference_model, self.model_name_or_path):
                raise ValueError(f"method {name!r}: rule {method.rule!r} keeps the tokens with the largest excess loss "
                                 "over a reference trained on good data (Rho-1), but the reference is the start "
                                 "checkpoint, whose excess loss is 0 on every token at step 0; set reference_model "
                                 "to such a trained reference")
        super().__post_init__()

    @property
    def methods(self) -> list[str]:
        return [m.strip() for m in self.method.split(",") if m.strip()]

    def resolved_method(self, name: str | None = None):
        """The Method (rule, source, params) this config trains with."""
        return resolve_method(name or self.methods[0], self.rule, self.source, self.rule_params or None,
                              self.loss_terms or None)


def _same_model(reference: str | None, start: str) -> bool:
    """Whether ``reference`` (None: the default) names the start checkpoint ``start``."""
    if reference is None or reference == start:
        return True
    paths = [os.path.realpath(os.path.expanduser(p)) for p in (reference, start)]
    return all(os.path.exists(p) for p in paths) and paths[0] == paths[1]
