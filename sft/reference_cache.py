"""Reference-signal cache: run the frozen reference once, no-grad, and store its per-token signals on disk.

Reference signals depend only on (reference model, tokenized data), so they are computed once and reused by every
variant and every rerun; PriFT then trains at plain-SFT cost with no second model in memory.

Layout: `<cache_dir>/<key>/meta.json` + `shard-00000.safetensors`, ... Each shard holds, for a contiguous range of
rows, every cached signal as one flat float32 array (rows concatenated) plus the row lengths. Values are aligned
with `labels`: entry t scores `labels[t]` given the tokens before it; entry 0 and ignored positions are 0.

With `top_k` set the shards also hold the reference's top-k distribution per token (`prift.sft.topk`): `topk_ids`
int32 [tokens x k], `topk_logp` in fp16 or bf16 (`top_k_dtype`, stored as its 16-bit pattern) and `topk_tail`
float32 [tokens]: 6k + 4 bytes per token on top of 4 per scalar signal (388 at k = 64).

The key is the sha256 of (reference fingerprint -- file hashes, or a hub id at its cached commit --, reference dtype,
tokenizer fingerprint, chat template, max length, data fingerprint, signal names, format version, a hash of the code
that computes the signals): any changed input gives a new key and so a fresh build. Shards
are written atomically, so a killed build resumes from its finished shards.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from prift.core.diskspace import DISK_FULL, DiskSpaceError, check_output_space
from prift.core.provenance import sha256_file, write_json_atomic
from prift.sft.signals import SIGNAL_NAMES
from prift.sft.sources import CACHE_COLUMN_PREFIX, model_signals
from prift.sft.topk import TOPK_DTYPES, TOPK_FIELDS

FORMAT_VERSION = 1
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json")


@functools.cache
def signal_code_version() -> str:
    """sha256 of the code that computes cached signals (the signals module and the reference's forward path), part
    of every key: a changed computation never reuses signals an older one stored."""
    from prift.sft import signals, sources, topk

    parts = [inspect.getsource(signals), inspect.getsource(topk)] + [inspect.getsource(fn) for fn in (
        sources._projects_plainly, sources._gathered, sources._last_hidden, sources.model_signals)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _sha256_json(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def dataset_fingerprint(dataset) -> str:
    """sha256 over every row's `input_ids` and `labels`, in order."""
    digest = hashlib.sha256()
    for row in dataset.select_columns(["input_ids", "labels"]):
        digest.update(np.asarray(row["input_ids"], dtype=np.int64).tobytes())
        digest.update(b"|")
        digest.update(np.asarray(row["labels"], dtype=np.int64).tobytes())
        digest.update(b"\n")
    return digest.hexdigest()


def hub_revision(model_id: str) -> str | None:
    """The commit of the hub snapshot of ``model_id`` in the local Hugging Face cache (what the loader reads offline
    and what a download resolves to), or None when none is cached."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True)).name  # .../snapshots/<commit>
    except Exception:  # noqa: BLE001 - not cached, no hub library, a malformed id: no revision known
        return None


def checkpoint_fingerprint(name_or_path: str) -> str:
    """sha256 of a local checkpoint's weight and config files; a hub id by id and the commit of its cached snapshot
    (``hub:<id>@<commit>``; ``@unknown`` when not cached yet), so a new upload never reuses an older one's cache."""
    path = Path(name_or_path)
    if not path.is_dir():
        return f"hub:{name_or_path}@{hub_revision(name_or_path) or 'unknown'}"
    files = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    return _sha256_json({p.name: sha256_file(p) for p in files})


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    reference: str
    dtype: str
    tokenizer: str
    chat_template: str | None
    max_length: int | None
    data: str
    signals: tuple[str, ...] = SIGNAL_NAMES
    top_k: int | None = None  # also store the reference's top-k ids / log-probs / tail mass per token
    top_k_dtype: str = "bfloat16"

    def __post_init__(self):
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k: must be a positive number of tokens, got {self.top_k}")
        if self.top_k_dtype not in TOPK_DTYPES:
            raise ValueError(f"top_k_dtype: unknown value {self.top_k_dtype!r}; valid: {', '.join(TOPK_DTYPES)}")

    @property
    def fields(self) -> tuple[str, ...]:
        """The per-token arrays each shard holds: the scalar signals, then the top-k ones when `top_k` is set."""
        return self.signals + (TOPK_FIELDS if self.top_k else ())

    @property
    def digest(self) -> str:
        fields = {**self.__dict__, "signals": list(self.signals), "format": FORMAT_VERSION,
                  "code": signal_code_version()}
        return _sha256_json(fields)[:24]


class ReferenceCache:
    """One cache entry: `build(model, dataset)` fills it (resumably), `attach(dataset)` adds `ref_<signal>` columns."""

    def __init__(self, cache_dir: str | Path, key: CacheKey, shard_rows: int = 256):
        self.key = key
        self.dir = Path(cache_dir) / key.digest
        self.shard_rows = shard_rows

    @property
    def meta_path(self) -> Path:
        return self.dir / "meta.json"

    def is_complete(self) -> bool:
        return self.meta_path.is_file() and json.loads(self.meta_path.read_text()).get("complete", False)

    def _shard_path(self, index: int) -> Path:
        return self.dir / f"shard-{index:05d}.safetensors"

    def build(self, model, dataset, *, batch_size: int = 8, pad_token_id: int = 0, vocab_chunk: int | None = None,
              progress: bool = True, rank: int = 0, world_size: int = 1, wait: Callable[[], None] = lambda: None
              ) -> dict:
        """Compute the missing shards with `model` (no-grad, eval mode) and return this process's build stats.

        Under several processes every rank calls `build` with its `rank`, the `world_size` and a barrier `wait`:
        rank r computes the missing shards i with i % world_size == r, then rank 0 marks the cache complete.
        Before any scoring the cache folder must have room for this rank's shards (`shard_bytes`); a disk that fills
        anyway is a `DiskSpaceError` that keeps the finished shards, from which a rerun resumes.
        """
        from safetensors.numpy import save_file
        from tqdm.auto import tqdm

        self.dir.mkdir(parents=True, exist_ok=True)
        n_rows = len(dataset)
        shards = [range(start, min(start + self.shard_rows, n_rows)) for start in range(0, n_rows, self.shard_rows)]
        todo = [i for i in range(len(shards)) if not self._shard_path(i).is_file() and i % world_size == rank]
        lengths = [len(ids) for ids in dataset["input_ids"]]
        total_tokens = sum(lengths[r] for i in todo for r in shards[i])
        check_output_space(self.dir, self.shard_bytes(total_tokens, sum(len(shards[i]) for i in todo)),
                           f"the reference cache ({len(todo)} shards, {total_tokens} tokens x "
                           f"{len(self.key.signals)} float32 signals)", setting="reference_cache_dir")
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        bar = tqdm(total=total_tokens, unit="tok", unit_scale=True, desc="reference signals",
                   disable=not progress or rank != 0)
        try:
            for index in todo:
                rows = list(shards[index])
                per_row = self._score_rows(model, dataset, rows, lengths, batch_size, pad_token_id, vocab_chunk,
                                           device, bar)
                arrays = {name: np.concatenate([per_row[r][name] for r in rows]) for name in self.key.fields}
                arrays["lengths"] = np.asarray([lengths[r] for r in rows], dtype=np.int64)
                self._write_shard(index, arrays, save_file)
        finally:
            bar.close()
            model.train(was_training)
        stats = {"rows": n_rows, "shards": len(shards), "built_shards": len(todo), "tokens_scored": total_tokens,
                 "elapsed_s": bar.format_dict.get("elapsed", 0.0), "rank": rank, "world_size": world_size}
        wait()  # every rank's shards are on disk
        if rank == 0:
            write_json_atomic(self.meta_path, {"key": self.key.__dict__, "digest": self.key.digest, "rows": n_rows,
                                               "shard_rows": self.shard_rows, "complete": True, "last_build": stats})
        wait()  # nobody reads the cache before it is marked complete
        return stats

    def shard_bytes(self, tokens: int, rows: int) -> int:
        """Bytes of shards holding `rows` rows of `tokens` tokens in all: a float32 per token and signal, with top-k
        an int32 id and a 16-bit log-prob per token and atom plus a float32 tail mass, and an int64 length per row."""
        per_token = 4 * len(self.key.signals) + (6 * self.key.top_k + 4 if self.key.top_k else 0)
        return tokens * per_token + rows * 8

    def _write_shard(self, index: int, arrays: dict, save_file) -> None:
        """Write one shard atomically (temp file, then rename); a full disk removes the temp file and says so."""
        tmp = self.dir / f".{self._shard_path(index).name}.{os.getpid()}.tmp"
        try:
            save_file(arrays, str(tmp))
        except OSError as err:
            tmp.unlink(missing_ok=True)
            if err.errno not in DISK_FULL:
                raise
            done = sum(1 for _ in self.dir.glob("shard-*.safetensors"))
            raise DiskSpaceError(f"the disk holding reference cache {str(self.dir)!r} is full ({err.strerror} while "
                                 f"writing shard {index}); the finished shards ({done}) are kept: free some space (or "
                                 "choose another reference_cache_dir) and rerun, which resumes from them") from err
        os.replace(tmp, self._shard_path(index))

    @torch.no_grad()
    def _score_rows(self, model, dataset, rows, lengths, batch_size, pad_token_id, vocab_chunk, device, bar):
        """Signals per row (numpy, aligned with labels), batching rows of similar length together."""
        out = {}
        ordered = sorted(rows, key=lambda r: lengths[r])
        for start in range(0, len(ordered), batch_size):
            batch_rows = ordered[start:start + batch_size]
            width = max(lengths[r] for r in batch_rows)
            input_ids = torch.full((len(batch_rows), width), pad_token_id, dtype=torch.long)
            labels = torch.full((len(batch_rows), width), -100, dtype=torch.long)
            attention = torch.zeros((len(batch_rows), width), dtype=torch.long)
            for i, r in enumerate(batch_rows):
                item = dataset[r]
                input_ids[i, :lengths[r]] = torch.tensor(item["input_ids"])
                labels[i, :lengths[r]] = torch.tensor(item["labels"])
                attention[i, :lengths[r]] = 1
            signals = model_signals(model, input_ids.to(device), attention.to(device), labels.to(device),
                                    self.key.signals, vocab_chunk, top_k=self.key.top_k)
            for i, r in enumerate(batch_rows):
                out[r] = {name: self._to_disk(name, value[i, :lengths[r] - 1]) for name, value in signals.items()}
            bar.update(sum(lengths[r] for r in batch_rows))
        return out

    def _to_disk(self, name: str, value: torch.Tensor) -> np.ndarray:
        """One row's values (positions 1..T-1) as stored: a zero entry prepended for position 0, flattened; top-k
        ids as int32, top-k log-probs as the 16-bit pattern of `top_k_dtype`, everything else float32."""
        value = torch.cat([value.new_zeros((1, *value.shape[1:])), value.cpu()])
        if name == "topk_ids":
            return value.to(torch.int32).reshape(-1).numpy()
        if name == "topk_logp":
            return value.to(TOPK_DTYPES[self.key.top_k_dtype]).view(torch.uint16).reshape(-1).numpy()
        return value.float().reshape(-1).numpy()

    def _from_disk(self, name: str, flat: np.ndarray) -> np.ndarray:
        """Inverse of `_to_disk` for one row: top-k fields back to [T, k] (log-probs as float32)."""
        if name == "topk_logp":
            flat = torch.from_numpy(flat.copy()).view(TOPK_DTYPES[self.key.top_k_dtype]).float().numpy()
        return flat.reshape(-1, self.key.top_k) if name in ("topk_ids", "topk_logp") else flat

    def load(self) -> dict[str, list[np.ndarray]]:
        """Per-signal lists of per-row arrays, in dataset order."""
        from safetensors.numpy import load_file

        if not self.is_complete():
            raise FileNotFoundError(f"reference cache {self.dir} is not complete; build it first")
        n_shards = json.loads(self.meta_path.read_text())["last_build"]["shards"]
        rows: dict[str, list[np.ndarray]] = {name: [] for name in self.key.fields}
        for index in range(n_shards):
            shard = load_file(str(self._shard_path(index)))
            bounds = np.cumsum(np.concatenate([[0], shard["lengths"]]))
            for name in self.key.fields:
                width = self.key.top_k if name in ("topk_ids", "topk_logp") else 1
                rows[name] += [self._from_disk(name, shard[name][a * width:b * width])
                               for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        return rows

    def attach(self, dataset):
        """`dataset` with one `ref_<field>` column per cached field (lengths checked against input_ids): float32 per
        token for the signals and `topk_tail`; per token a list of k int32 ids (`topk_ids`) / float32 log-probs."""
        from datasets import List, Value

        signals = self.load()
        lengths = [len(ids) for ids in dataset["input_ids"]]
        cached = [len(a) for a in next(iter(signals.values()))]
        if cached != lengths:
            raise ValueError(f"reference cache {self.dir} does not match the dataset's token lengths; delete it")
        features = {"topk_ids": List(List(Value("int32"))), "topk_logp": List(List(Value("float32")))}
        for name, values in signals.items():
            dataset = dataset.add_column(CACHE_COLUMN_PREFIX + name, [v.tolist() for v in values],
                                         feature=features.get(name, List(Value("float32"))))
        return dataset
