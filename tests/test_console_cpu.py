"""The training console (core/console.py): one line per logging step with the stage, step, key metrics and ETA,
instead of the Trainer's raw metric dicts; ``verbose`` restores transformers' own output."""

from __future__ import annotations

from transformers.trainer_callback import PrinterCallback, ProgressCallback

from prift.core.console import ConsoleCallback, step_line
from prift.sft.train import run_sft


def test_a_step_line_names_the_stage_step_metrics_and_eta():
    logs = {"loss": 0.41234, "nll": 1.8734, "learning_rate": 1.5e-5, "epoch": 0.3, "total_flos": 12.0,
            "reward": float("nan"), "completions/mean_length": 87.0}
    line = step_line("sft prift_mass", 12, 40, logs, eta_s=80)
    assert line == "[prift] sft prift_mass  step 12/40  loss 0.412  nll 1.87  len 87  lr 1.50e-05  ETA 1m20s"
    assert step_line("rl", 40, 40, {"reward": 0.5}, None) == "[prift] rl  step 40/40  reward 0.5"


def _run(sft_config, tiny_checkpoint, arith_jsonl, tmp_path, capsys, verbose):
    config = sft_config(tiny_checkpoint, arith_jsonl, tmp_path / f"out-{verbose}", disable_tqdm=False,
                        verbose=verbose, max_steps=2)
    run_sft(config)
    return capsys.readouterr()


def test_the_default_console_prints_step_lines_not_raw_dicts(sft_config, tiny_checkpoint, arith_jsonl, tmp_path,
                                                             capsys, prift_cache):
    out = _run(sft_config, tiny_checkpoint, arith_jsonl, tmp_path, capsys, verbose=False)
    text = out.out + out.err
    assert "[prift] sft nll  step 1/2  loss " in text and "[prift] sft nll  step 2/2  loss " in text
    assert "{'loss'" not in text and "'train_runtime'" not in text


def test_verbose_keeps_the_trainer_s_own_dicts(sft_config, tiny_checkpoint, arith_jsonl, tmp_path, capsys,
                                                prift_cache):
    out = _run(sft_config, tiny_checkpoint, arith_jsonl, tmp_path, capsys, verbose=True)
    text = out.out + out.err
    assert "{'loss'" in text and "[prift] sft nll  step" not in text


def test_the_console_callback_replaces_the_progress_callback(sft_config, tiny_checkpoint, arith_jsonl, tmp_path,
                                                             prepare_trainer):
    from prift.core.console import use_console

    trainer = prepare_trainer(sft_config(tiny_checkpoint, arith_jsonl, tmp_path, disable_tqdm=False))
    use_console(trainer, "sft nll", verbose=False)
    kinds = {type(cb) for cb in trainer.callback_handler.callbacks}
    assert ConsoleCallback in kinds and ProgressCallback not in kinds and PrinterCallback not in kinds


def test_verbose_is_left_out_of_what_fingerprints_compare(sft_config, tiny_checkpoint, arith_jsonl, tmp_path):
    from prift.core.provenance import settings_of, to_jsonable

    quiet, loud = (sft_config(tiny_checkpoint, arith_jsonl, tmp_path, verbose=v) for v in (False, True))
    assert to_jsonable(quiet) != to_jsonable(loud) and settings_of(quiet) == settings_of(loud)
