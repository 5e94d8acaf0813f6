"""`run_sft(config)`: one token-priority SFT run, start checkpoint in, HF checkpoint + run.json out.

Linear on purpose: load model and data, let TRL tokenize, attach the signal sources (building the reference cache
once when needed), train (resuming from the last checkpoint), save, record provenance. `build_reference_cache`
stops after the cache (`prift cache`: build it ahead of training, e.g. on another machine).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from accelerate import PartialState

from prift.core.checkpoints import last_complete_checkpoint
from prift.core.console import quiet_libraries, use_console
from prift.core.diskspace import check_checkpoint_space, disk_full_errors
from prift.core.paths import cache_root
from prift.core.provenance import RunRecord, ensure_writable
from prift.models.loading import load_causal_lm, load_tokenizer, resolve_dtype, resolve_model_path
from prift.sft.config import PriftSFTConfig
from prift.sft.data import DatasetError, load_sft_dataset
from prift.sft.methods import Method
from prift.sft.priorities import get_rule
from prift.sft.reference_cache import (
    CacheKey,
    ReferenceCache,
    checkpoint_fingerprint,
    dataset_fingerprint,
    tokenizer_fingerprint,
)
from prift.sft.signals import SIGNAL_NAMES
from prift.sft.sources import (
    EMA_STATE_FILE,
    CachedReference,
    EmaSource,
    LiveModelSource,
    OnlineSource,
    unsharded,
)
from prift.sft.trainer import TOKEN_LABELS, PriorityTrainer

logger = logging.getLogger(__name__)


def _vocab_size(model) -> int:
    return model.get_output_embeddings().weight.shape[0]


def check_reference(policy, policy_tokenizer, reference, reference_path: str) -> None:
    """The reference must score the policy's tokens: the same tokenizer and vocabulary size."""
    if tokenizer_fingerprint(load_tokenizer(reference_path)) != tokenizer_fingerprint(policy_tokenizer):
        raise ValueError(f"reference_model {reference_path!r} uses a different tokenizer than the policy; "
                         "token-level reference signals need the same tokenizer")
    if _vocab_size(reference) != _vocab_size(policy):
        raise ValueError(f"reference_model {reference_path!r} has vocabulary size {_vocab_size(reference)} but the "
                         f"policy has {_vocab_size(policy)}")


def reference_cache_for(config: PriftSFTConfig, tokenizer, dataset, reference_path: str) -> ReferenceCache:
    """The cache entry keyed by (reference, dtype, tokenizer, chat template, max length, tokenized data)."""
    key = CacheKey(
        reference=checkpoint_fingerprint(reference_path),
        dtype=str(resolve_dtype(config.dtype)),
        tokenizer=tokenizer_fingerprint(tokenizer),
        chat_template=getattr(tokenizer, "chat_template", None),
        max_length=config.max_length,
        data=dataset_fingerprint(dataset),
        signals=SIGNAL_NAMES,
        top_k=config.top_k,
        top_k_dtype=config.top_k_dtype,
    )
    return ReferenceCache(config.reference_cache_dir or cache_root() / "reference-signals", key,
                          shard_rows=config.reference_shard_rows)


class _Setup:
    """Builds the sources one run needs; the reference model is loaded at most once (and not at all when it is the
    start checkpoint the policy was just loaded from and the cache only needs a no-grad pass before training)."""

    def __init__(self, config: PriftSFTConfig, policy, tokenizer, record: RunRecord):
        self.config, self.policy, self.tokenizer, self.record = config, policy, tokenizer, record
        self.reference_path = resolve_model_path(config.reference_model or config.model_name_or_path)
        self.is_start = self.reference_path == resolve_model_path(config.model_name_or_path)

    def reference_model(self, allow_policy: bool):
        if allow_policy and self.is_start:
            return self.policy
        reference = load_causal_lm(self.reference_path, self.config.dtype, str(self.config.device),
                                   self.config.attn_implementation)
        check_reference(self.policy, self.tokenizer, reference, self.reference_path)
        return reference

    def cached_reference(self, dataset):
        self.cache = cache = reference_cache_for(self.config, self.tokenizer, dataset, self.reference_path)
        self.record.fingerprints["reference_cache"] = cache.key.digest
        if cache.is_complete():
            print(f"[prift] reusing reference cache {cache.dir}", flush=True)
        else:
            print(f"[prift] building reference cache {cache.dir} ({len(dataset)} rows)", flush=True)
            # a whole copy: under ZeRO-3 the start checkpoint was loaded partitioned, and each rank scores its own shards
            model = unsharded(self.reference_model(allow_policy=True)).to(self.config.device)
            state = PartialState()  # under `accelerate launch` the ranks split the shards
            self.record.extra["reference_cache_build"] = cache.build(
                model, dataset, batch_size=self.config.reference_batch_size,
                pad_token_id=self.tokenizer.pad_token_id, vocab_chunk=self.config.vocab_chunk,
                rank=state.process_index, world_size=state.num_processes, wait=state.wait_for_everyone)
        return CachedReference(), cache.attach(dataset)

    def sources(self, method: Method, dataset):
        """(source, reference, dataset) for `method`; the dataset gains `ref_<signal>` columns when cached."""
        reference = None
        if method.source == "reference" or get_rule(method.rule).reference_signals or method.needs_topk:
            self.record.fingerprints["reference_model"] = self.reference_path
            if self.config.reference_mode == "cache":
                reference, dataset = self.cached_reference(dataset)
            else:
                reference = LiveModelSource(self.reference_model(allow_policy=False), self.config.vocab_chunk,
                                            self.config.top_k)
        build = {"online": OnlineSource, "reference": lambda: reference,
                 "ema": lambda: EmaSource(self.policy, self.config.ema_rho, self.config.vocab_chunk)}
        return build[method.source](), reference, dataset


def _with_token_labels(dataset, source: str):
    """Broadcast a per-row `sign` (+1 keep / -1 unlearn) to a per-token `token_labels` column."""
    if "sign" not in dataset.column_names:
        raise DatasetError(f"{source}: the signed rule needs a per-row 'sign' column (+1 / -1)")
    return dataset.map(lambda row: {TOKEN_LABELS: [float(row["sign"])] * len(row["input_ids"])})


def check_chat_template(tokenizer, dataset, config: PriftSFTConfig, provenance: dict) -> None:
    """Chat-message rows need a chat template: fail before training, naming the tokenizer and the ways out."""
    from trl.data_utils import is_conversational

    if getattr(tokenizer, "chat_template", None) or config.chat_template_path or not is_conversational(dataset[0]):
        return
    source = provenance["source"]
    plain = ("set use_chat_template=false to train on plain prompt + completion text, or " if
             config.use_chat_template and not provenance.get("chat_rows") else "")  # rows that are text in the file
    raise ValueError(f"the tokenizer of {config.model_name_or_path!r} has no chat template, but the rows of {source} "
                     f"are chat messages; {plain}set chat_template_path to a .jinja template (or a checkpoint whose "
                     "tokenizer has one)")


@dataclass
class Prepared:
    """What both training and a cache-only build need: the trainer (TRL tokenized the data), its tokenized rows."""

    config: PriftSFTConfig
    method: Method
    record: RunRecord
    tokenizer: object
    trainer: PriorityTrainer
    tokenized: object
    provenance: dict


def prepare(config: PriftSFTConfig, training: bool = True) -> Prepared:
    """Load the start checkpoint and data, check the chat template (and, when `training`, the free space for a
    checkpoint), let TRL tokenize the rows and report truncation."""
    method = config.resolved_method()
    quiet_libraries(config.verbose)
    record = RunRecord("sft", config, seed=config.seed)
    record.extra["method"] = {"name": config.methods[0], "rule": method.rule, "source": method.source,
                              "params": method.params, "terms": method.terms}
    tokenizer = load_tokenizer(config.model_name_or_path)
    policy = load_causal_lm(config.model_name_or_path, config.dtype, attn_implementation=config.attn_implementation)
    record.extra["attn_implementation"] = policy.config._attn_implementation
    dataset, provenance = load_sft_dataset(
        config.dataset, split=config.dataset_split, adapter=config.dataset_format, data_dir=config.data_dir,
        max_samples=config.max_samples, chat_template=config.use_chat_template, messages_loss=config.messages_loss)
    record.extra["data"] = provenance
    check_chat_template(tokenizer, dataset, config, provenance)
    if training:
        check_checkpoint_space(config.output_dir, policy, config, ema=method.source == "ema")
    trainer = PriorityTrainer(model=policy, args=config, train_dataset=dataset, processing_class=tokenizer,
                              method=method, source=OnlineSource(), divisor=config.divisor,
                              vocab_chunk=config.vocab_chunk)
    use_console(trainer, f"sft {config.methods[0]}", config.verbose)
    tokenized = trainer.train_dataset
    if "train" in trainer.truncation:
        report = trainer.truncation["train"]
        provenance.update(report.record())
        if message := report.warning(provenance["source"]):
            logger.warning(message)
    if len(tokenized) and "labels" in tokenized.column_names:  # what the loss sees: the response tokens only
        labels = tokenized["labels"]
        provenance.update(tokens=sum(map(len, labels)), labelled_tokens=sum(t != -100 for row in labels for t in row))
    if len(tokenized) == 0:
        raise DatasetError(f"{provenance['source']}: no row has a response token left after tokenization and "
                           f"truncation to max_length={config.max_length}")
    return Prepared(config, method, record, tokenizer, trainer, tokenized, provenance)


def build_reference_cache(config: PriftSFTConfig) -> dict:
    """Build (or find complete) the reference-signal cache `prift sft` would use for `config`, without training:
    the cache depends on the reference, dtype, tokenizer, chat template, max_length and data, not on the method."""
    output = Path(config.output_dir)
    existed = output.exists()
    prep = prepare(config, training=False)
    setup = _Setup(config, prep.trainer.model, prep.tokenizer, prep.record)
    _, dataset = setup.cached_reference(prep.tokenized)
    if not existed and output.is_dir() and not any(output.iterdir()):
        output.rmdir()  # the Trainer made it; a cache-only build trains nothing
    return {"dir": str(setup.cache.dir), "key": setup.cache.key.digest, "rows": len(dataset),
            "reference": setup.reference_path, "data": prep.provenance,
            "build": prep.record.extra.get("reference_cache_build")}


def run_sft(config: PriftSFTConfig) -> Path:
    """Train one method; return the output folder holding the HF checkpoint and run.json."""
    ensure_writable(config.output_dir)
    prep = prepare(config)
    method, record, trainer = prep.method, prep.record, prep.trainer
    record.fingerprints["data"] = dataset_fingerprint(prep.tokenized)
    source, reference, tokenized = _Setup(config, trainer.model, prep.tokenizer, record).sources(method,
                                                                                                 prep.tokenized)
    if TOKEN_LABELS in get_rule(method.rule).data:
        tokenized = _with_token_labels(tokenized, prep.provenance["source"])
    trainer.set_sources(source, reference)
    trainer.train_dataset = tokenized
    required = (EMA_STATE_FILE,) if isinstance(source, EmaSource) else ()
    last = last_complete_checkpoint(config.output_dir, required) if config.resume else None
    if last:
        print(f"[prift] resuming from {last}", flush=True)
        if isinstance(source, EmaSource):
            source.load(last)
    with disk_full_errors(config.output_dir):
        result = trainer.train(resume_from_checkpoint=last)
        trainer.save_model(config.output_dir)
        if trainer.packing:
            record.extra["data"]["packing"] = trainer.packing
        if trainer.is_world_process_zero():
            record.write(config.output_dir, metrics=result.metrics, resumed_from=last,
                         log_history=trainer.state.log_history, world_size=trainer.accelerator.num_processes,
                         skipped_nonfinite_steps=getattr(trainer, "skipped_steps", 0))
    return Path(config.output_dir)
