"""Canary for the private TRL (and Trainer) API prift's trainers build on: every hook prift overrides or calls, with
the parameters it passes, and the attributes it reads. pyproject pins trl to the tested minor; a TRL upgrade that
moves any of these fails here, by name, instead of mid-training.
"""

from __future__ import annotations

import inspect

import pytest
import trl
from transformers import Trainer
from trl import GRPOTrainer, SFTTrainer

# (class, method) -> the parameters prift's override receives or its call passes, in order
HOOKS = {
    (GRPOTrainer, "_generate_and_score_completions"): ["self", "inputs"],
    (GRPOTrainer, "_generate"): ["self", "prompts"],
    (GRPOTrainer, "_calculate_rewards"): ["self", "inputs", "prompts", "completions", "completion_ids_list"],
    (GRPOTrainer, "_remove_unused_columns"): ["self", "dataset", "description"],
    (GRPOTrainer, "create_scheduler"): ["self", "num_training_steps", "optimizer"],
    (SFTTrainer, "_prepare_dataset"): ["self", "dataset", "processing_class", "args", "packing", "formatting_func",
                                       "dataset_name"],
    (SFTTrainer, "_set_signature_columns_if_needed"): ["self"],
    (SFTTrainer, "compute_loss"): ["self", "model", "inputs", "return_outputs", "num_items_in_batch"],
}
# attributes prift reads or writes, as they appear in the class's source
ATTRIBUTES = {
    GRPOTrainer: ["self._metrics", "self._step", "self._tokenizer", "self.num_iterations", "self.reward_weights",
                  "self.num_generations"],
    SFTTrainer: ["self._metrics", "self._total_train_tokens", "self._signature_columns", "fused_lm_head"],
    Trainer: ["loss_is_scaled_for_ga", "current_gradient_accumulation_steps", "def get_tp_size"],
}


def test_trl_is_the_pinned_minor():
    assert trl.__version__.startswith("1.16."), f"prift is tested against trl 1.16.x, found {trl.__version__}"


@pytest.mark.parametrize(("owner", "name"), list(HOOKS), ids=[f"{c.__name__}.{n}" for c, n in HOOKS])
def test_private_hooks_keep_their_signature(owner, name):
    assert list(inspect.signature(getattr(owner, name)).parameters) == HOOKS[owner, name]


@pytest.mark.parametrize("owner", list(ATTRIBUTES), ids=lambda c: c.__name__)
def test_attributes_prift_reads_still_exist(owner):
    source = inspect.getsource(owner)
    assert [name for name in ATTRIBUTES[owner] if name not in source] == []


def test_generate_returns_completion_ids_second():
    """PriftGRPOTrainer._generate counts tokens from ``result[1]``."""
    returns = [line.strip() for line in inspect.getsource(GRPOTrainer._generate).splitlines()
               if line.strip().startswith("return ")]
    assert returns and all(line.split(",")[1].strip() == "completion_ids" for line in returns)
