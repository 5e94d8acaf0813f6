"""Packing (`packing=True`, TRL's padding-free BFD sequences) with every signal source.

The packed loss must equal the padded loss over the same rows: the priority loss is a sum over response tokens, so
packing changes nothing if each token keeps its own cached reference values and no model (policy, live reference,
EMA) attends across the rows of a packed sequence.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from prift.core.provenance import RunRecord
from prift.sft.train import _Setup, run_sft
from prift.sft.trainer import EXTRA_COLUMNS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAX_LENGTH = 96  # each arithmetic row is ~35-45 tokens: two rows share a packed sequence


def _prepared(config, prepare_trainer):
    """A trainer and its training rows with sources attached, as `run_sft` builds them (rows still unpacked)."""
    trainer = prepare_trainer(config)
    record = RunRecord("sft", config)
    source, reference, rows = _Setup(config, trainer.model, trainer.processing_class, record).sources(
        config.resolved_method(), trainer.train_dataset)
    trainer.set_sources(source, reference)
    return trainer, rows


def _loss(trainer, batch) -> torch.Tensor:
    """`compute_loss` in eval mode (no dropout, no gradient-accumulation scaling), divided by the response tokens."""
    trainer.model.eval()
    count = int((batch["labels"][:, 1:] != -100).sum())
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=count)


CASES = {
    "nll": {"method": "nll"},
    "dft (online logp, fused head)": {"method": "dft"},
    "eaft (online entropy, full logits)": {"method": "eaft"},
    "prift_prob (cached reference)": {"method": "prift_prob"},
    "prift_mass (cached reference)": {"method": "prift_mass"},
    "prift_mass (live reference)": {"method": "prift_mass", "reference_mode": "live", "reference_model": "other"},
    "rho1 (online + live reference)": {"method": "rho1", "reference_mode": "live", "reference_model": "other"},
    "prob on an EMA": {"method": "prift_prob", "source": "ema", "ema_rho": 0.5},
    "talr (tau = median of per-sequence means)": {"method": "talr"},
}


@pytest.mark.parametrize("case", CASES)
def test_packed_loss_equals_padded_loss(case, tmp_path, prift_cache, tiny_checkpoint, other_reference, arith_jsonl,
                                        sft_config, prepare_trainer):
    overrides = {**CASES[case], **({"reference_model": str(other_reference)} if "reference_model" in CASES[case]
                                   else {})}
    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path, packing=True, max_length=MAX_LENGTH, **overrides)
    trainer, rows = _prepared(config, prepare_trainer)
    assert trainer.data_collator.padding_free, "packing trains padding-free, as TRL does"
    packed = trainer.pack(rows)
    assert len(packed) < len(rows), "rows were packed together"
    packed_batch = trainer.data_collator([packed[i] for i in range(len(packed))])
    padded = dataclasses.replace(trainer.data_collator, padding_free=False)
    padded_batch = padded([rows[i] for i in range(len(rows))])
    assert packed_batch["input_ids"].shape[0] == 1 and padded_batch["input_ids"].shape[0] == len(rows)

    torch.testing.assert_close(_loss(trainer, packed_batch), _loss(trainer, padded_batch), rtol=1e-5, atol=1e-6)


def test_pack_moves_every_per_token_column_with_its_tokens(tmp_path, prift_cache, tiny_checkpoint, arith_jsonl,
                                                           sft_config, prepare_trainer):
    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path, method="prift_mass", packing=True,
                        max_length=MAX_LENGTH)
    trainer, rows = _prepared(config, prepare_trainer)
    columns = ["input_ids", "labels", *(c for c in EXTRA_COLUMNS if c in rows.column_names)]
    assert len(columns) > 2, "the cached reference columns are attached"
    originals = Counter(json.dumps([rows[i][c] for c in columns]) for i in range(len(rows)))

    packed = trainer.pack(rows)
    segments = Counter()
    for sequence in packed:
        start = 0
        for length in sequence["seq_lengths"]:
            segments[json.dumps([sequence[c][start:start + length] for c in columns])] += 1
            start += length
        assert start == len(sequence["input_ids"]) <= MAX_LENGTH
    assert segments == originals  # every row once, each column cut at the same places

    batch = trainer.data_collator([packed[0], packed[1]])
    for column in columns[2:]:
        expected = torch.tensor(packed[0][column] + packed[1][column], dtype=torch.float32)
        torch.testing.assert_close(batch[column][0], expected)


def test_packed_run_trains_on_the_unpacked_runs_cache(tmp_path, prift_cache, tiny_checkpoint, arith_jsonl,
                                                      sft_config):
    runs = {}
    for packing in (False, True):
        config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path / f"packing-{packing}", method="prift_prob",
                            packing=packing, max_length=MAX_LENGTH, max_steps=2)
        runs[packing] = json.loads((run_sft(config) / "run.json").read_text())

    assert runs[True]["fingerprints"]["reference_cache"] == runs[False]["fingerprints"]["reference_cache"]
    assert "packing" not in runs[False]["data"]
    packing = runs[True]["data"]["packing"]
    assert packing["strategy"] == "bfd" and packing["max_length"] == MAX_LENGTH
    assert packing["rows"] == runs[True]["data"]["rows"] and packing["sequences"] < packing["rows"]
    start = load_file(str(tiny_checkpoint / "model.safetensors"))
    trained = load_file(str(tmp_path / "packing-True" / "model.safetensors"))
    assert any(not torch.equal(start[name], trained[name]) for name in start)


def test_packing_without_max_length_is_a_clear_error(tmp_path, prift_cache, tiny_checkpoint, arith_jsonl, sft_config,
                                                     prepare_trainer):
    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path, packing=True, max_length=None)
    with pytest.raises(ValueError, match="packing=True needs max_length"):
        prepare_trainer(config)
