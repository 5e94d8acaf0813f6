"""Validation during RL: every ``validation_steps`` optimizer steps and after the last one, prift's own evaluators
(``prift.eval.runner.evaluate``: the graders, templates and metrics of ``prift eval``) score the policy in memory on
held-out benchmarks. Generation goes through the HF backend on the policy's device, outside the budget, and the
training RNGs are restored afterwards, so a run with validation trains exactly as one without.

Contract: add ``ValidationCallback(config, tokenizer)`` to the trainer and set ``callback.trainer``; each validation
writes ``<output_dir>/validation/step-N/results.json`` and logs ``validation/<benchmark>/<metric>`` through
``trainer.log``. With ``checkpoint_choice=best`` every validation step is also a checkpoint, the best one is kept
from rotation (``state.best_model_checkpoint``), and ``finish(output_dir)`` copies its weights over the final ones.
``finish`` returns run.json's ``validation`` record: benchmarks, the metric, the choice, the chosen step, history.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from prift.eval.backend_hf import HFBackend
from prift.eval.config import EvalConfig
from prift.eval.runner import evaluate

VALIDATION_DIR = "validation"


class ValidationCallback(TrainerCallback):
    def __init__(self, config, tokenizer) -> None:
        self.config, self.tokenizer = config, tokenizer
        self.trainer = None
        self.history: list[dict] = []  # {"step": N, "<benchmark>/<metric>": value, ...}
        self.metric: str | None = None  # "<first benchmark>/avg@n": what checkpoint_choice=best maximises

    def on_train_begin(self, args, state, control, **kwargs):
        """A resumed run takes back the validations up to the step it resumes from."""
        folder = Path(args.output_dir) / VALIDATION_DIR
        for path in sorted(folder.glob("step-*/results.json"), key=lambda p: int(p.parent.name[5:])):
            step = int(path.parent.name[5:])
            if step <= state.global_step:
                self._record(step, json.loads(path.read_text())["results"])

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.config.validation_steps == 0:
            self._validate(args, state)
            control.should_save |= self.config.checkpoint_choice == "best"

    def on_train_end(self, args, state, control, **kwargs):
        if not self.history or self.history[-1]["step"] != state.global_step:
            self._validate(args, state)

    def _validate(self, args, state) -> None:
        config, trainer = self.config, self.trainer
        out = Path(args.output_dir) / VALIDATION_DIR / f"step-{state.global_step}"
        eval_config = EvalConfig(
            model_name_or_path=config.model_name_or_path, benchmarks=config.validation_benchmarks, output_dir=str(out),
            max_samples=config.validation_max_samples, n=config.validation_n, temperature=config.validation_temperature,
            max_tokens=config.validation_max_tokens or config.max_completion_length, seed=config.seed,
            progress=False, resume=False)
        model = trainer.accelerator.unwrap_model(trainer.model)
        backend = HFBackend.in_memory(model, self.tokenizer, config.model_name_or_path,
                                      batch_size=config.per_device_train_batch_size)
        training, py_state, np_state = model.training, random.getstate(), np.random.get_state()
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):  # the HF backend seeds torch; training's RNGs stay as they were
            model.eval()
            try:
                results = json.loads(evaluate(eval_config, backend).read_text())["results"]
            finally:
                model.train(training)
                random.setstate(py_state)
                np.random.set_state(np_state)
        logged = self._record(state.global_step, results)
        trainer.log({f"validation/{name}": value for name, value in logged.items()})
        if self.config.checkpoint_choice == "best" and self.best_step() == state.global_step:
            state.best_model_checkpoint = str(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def _record(self, step: int, results: dict) -> dict:
        values = {f"{bench}/{metric}": entry["value"] for bench, result in results.items()
                  for metric, entry in result["metrics"].items()}
        if self.metric is None:
            first = next(iter(results))
            self.metric = f"{first}/{next(m for m in results[first]['metrics'] if m.startswith('avg@'))}"
        self.history = [h for h in self.history if h["step"] != step] + [{"step": step, **values}]
        return values

    def best_step(self) -> int | None:
        """The validated step with the highest ``metric`` (the earliest on a tie), None before any validation."""
        if not self.history:
            return None
        return max(self.history, key=lambda h: (h.get(self.metric, float("-inf")), -h["step"]))["step"]

    def finish(self, output_dir: str, final_step: int) -> dict:
        """With ``checkpoint_choice=best``, put the best step's weights in ``output_dir``; the run.json record."""
        chosen = final_step
        if self.config.checkpoint_choice == "best" and (best := self.best_step()) is not None and best != final_step:
            source = Path(output_dir) / f"checkpoint-{best}"
            weights = sorted(source.glob("model*.safetensors*"))
            if not weights:
                raise FileNotFoundError(f"checkpoint_choice=best: validation step {best} was the best, but {source} "
                                        "holds no model weights (deleted?)")
            for stale in Path(output_dir).glob("model*.safetensors*"):
                stale.unlink()
            for path in weights:
                shutil.copy2(path, Path(output_dir) / path.name)
            chosen = best
        return {"benchmarks": self.config.validation_benchmarks, "metric": self.metric,
                "choice": self.config.checkpoint_choice, "chosen_step": chosen, "history": self.history}
