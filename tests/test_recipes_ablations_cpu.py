"""The PriFT paper's ablations as recipes: every CPU twin runs end to end (on a tiny random model, via
`prift run --base_model`) and shows what its ablation is about in the SFT runs it records."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from prift import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
TWINS = Path(str(resources.files("prift.recipes") / "ablations" / "cpu"))


def _run(name: str, tiny_checkpoint: Path, tmp_path: Path) -> dict[str, dict]:
    out = tmp_path / name
    assert main(["run", str(TWINS / f"{name}.yaml"), "--base_model", str(tiny_checkpoint), "--output_dir", str(out)]) == 0
    stages = {s["name"]: s for s in json.loads((out / "pipeline.json").read_text())["stages"]}
    assert {s["status"] for s in stages.values()} == {"done"}
    assert (out / "report" / "report.html").is_file()
    return {name.split("/", 1)[1]: json.loads((Path(s["output"]) / "run.json").read_text())
            for name, s in stages.items() if name.startswith("sft/")}


def _first_step(record: dict) -> dict:
    return next(h for h in record["log_history"] if "loss" in h)


def test_online_vs_reference(tiny_checkpoint, tmp_path, prift_cache):
    runs = _run("online_vs_reference", tiny_checkpoint, tmp_path)
    assert set(runs) == {f"{rule}_{source}" for rule in ("dft", "talr", "profit", "eaft")
                         for source in ("online", "reference")}
    for name, record in runs.items():
        assert record["method"]["source"] == name.rsplit("_", 1)[1]
        # the reference-fed twin logs Fig 1a's correlation; at step 1 online == reference
        if name.endswith("_reference"):
            assert _first_step(record)["online_reference_pearson"] == pytest.approx(1.0, abs=1e-6)
        # at step 1 the online model is the start checkpoint, so both sources give the same first loss
        twin = runs[name.rsplit("_", 1)[0] + "_online"]
        assert _first_step(record)["loss"] == pytest.approx(_first_step(twin)["loss"], rel=1e-4)


def test_ema_rho(tiny_checkpoint, tmp_path, prift_cache):
    runs = _run("ema_rho", tiny_checkpoint, tmp_path)
    assert [runs[n]["method"]["source"] for n in ("rho0_dft", "rho0p9", "rho1_prift_prob")] == \
        ["online", "ema", "reference"]
    emas = ("rho0p9", "rho0p99", "rho0p999")
    assert all("online_ema_pearson" in _first_step(runs[n]) for n in emas)
    # a faster EMA moves further from the start checkpoint; the report draws the curves
    last = [[h["ema_distance_from_start"] for h in runs[n]["log_history"] if "ema_distance_from_start" in h][-1]
            for n in emas]
    assert last[0] > last[1] > last[2] > 0
    assert (tmp_path / "ema_rho" / "report" / "training_ema_distance.png").is_file()


def test_mass_threshold(tiny_checkpoint, tmp_path, prift_cache):
    runs = _run("mass_threshold", tiny_checkpoint, tmp_path)
    kept = [_first_step(runs[n])["kept_fraction"] for n in ("nll", "mass0p3", "mass0p5", "mass0p7", "mass0p9")]
    assert kept[0] == 1.0 and kept == sorted(kept, reverse=True)  # a higher threshold keeps fewer tokens


def test_divisor(tiny_checkpoint, tmp_path, prift_cache):
    runs = _run("divisor", tiny_checkpoint, tmp_path)
    response, kept = (_first_step(runs[n]) for n in ("mass_response", "mass_kept"))
    # the same weights at step 1; dividing by the kept tokens only scales the loss by 1 / kept fraction
    assert kept["loss"] == pytest.approx(response["loss"] / response["kept_fraction"], rel=1e-3)


def test_reference_objectives(tiny_checkpoint, tmp_path, prift_cache):
    """ASFT, GIFT, EKSFT and PEAR beside NLL and PriFT-prob, all reading the one top-k reference cache."""
    runs = _run("reference_objectives", tiny_checkpoint, tmp_path)
    assert set(runs) == {"nll", "prift_prob", "asft", "gift", "eksft", "pear", "pear_sequence"}
    assert len({record["fingerprints"]["reference_cache"] for name, record in runs.items() if name != "nll"}) == 1
    assert runs["asft"]["method"]["rule"] == "prob"
    assert _first_step(runs["asft"])["topk_kl_ref_online"] == pytest.approx(0.0, abs=1e-4)  # step 1: online == ref
    assert _first_step(runs["eksft"])["kept_fraction"] < 0.85  # top 20% by entropy and by KL dropped
