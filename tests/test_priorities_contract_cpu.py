"""The `token_weights` contract (docs/design.md) and the rule registry: shape, detached, masked positions, errors."""

from __future__ import annotations

import uuid

import pytest
import torch
from naive_signals import random_batch

from prift.sft.priorities import RULES, register_rule, token_weights

B, T, V = 3, 7, 50
ALL_RULES = ("nll", "prob", "mass", "profit", "talr", "eaft", "power", "rho1", "signed")


def _call(rule: str, logits, labels, **extra):
    kwargs = dict(extra)
    if rule == "power":
        kwargs.setdefault("alpha", 2.0)
    if rule == "rho1":
        kwargs.setdefault("ref_logits", random_batch(7, b=labels.shape[0], t=labels.shape[1])[0])
    if rule == "signed":
        kwargs.setdefault("token_labels", torch.ones_like(labels))
    return token_weights(rule, logits, labels, **kwargs)


@pytest.mark.parametrize("rule", ALL_RULES)
def test_contract_shape_detached_masked(rule):
    logits, labels = random_batch(3)
    logits = logits.clone().requires_grad_(True)
    got = _call(rule, logits, labels)
    assert got.shape == (B, T)
    assert not got.requires_grad and got.grad_fn is None
    assert got.dtype == torch.float32
    assert torch.all(got[labels == -100] == 0)
    assert torch.isfinite(got).all()


@pytest.mark.parametrize("rule", ALL_RULES)
def test_contract_all_masked_gives_zeros(rule):
    logits, labels = random_batch(4)
    labels = torch.full_like(labels, -100)
    got = _call(rule, logits, labels)
    assert got.shape == (B, T) and torch.all(got == 0)


def test_unknown_rule_lists_valid_names():
    logits, labels = random_batch(0)
    with pytest.raises(ValueError) as err:
        token_weights("no_such_rule", logits, labels)
    message = str(err.value)
    assert "no_such_rule" in message
    for name in ALL_RULES:
        assert name in message


@pytest.mark.parametrize("rule,param", (("prob", "threshold"), ("mass", "alpha"), ("nll", "tau"),
                                        ("talr", "taux"), ("eaft", "beta")))
def test_unknown_rule_parameter(rule, param):
    logits, labels = random_batch(0)
    with pytest.raises(ValueError):
        token_weights(rule, logits, labels, **{param: 0.5})


def test_power_without_alpha():
    logits, labels = random_batch(0)
    with pytest.raises(ValueError):
        token_weights("power", logits, labels)


def test_registry_rejects_duplicate_name():
    name = f"_test_duplicate_{uuid.uuid4().hex}"
    assert name not in RULES

    def first(signals, mask):
        return mask.float()

    def second(signals, mask):
        return 2 * mask.float()

    try:
        register_rule(name)(first)
        assert RULES[name].fn is first
        with pytest.raises(ValueError):
            register_rule(name)(second)
        assert RULES[name].fn is first  # the original registration is untouched
        logits, labels = random_batch(0)
        torch.testing.assert_close(token_weights(name, logits, labels), (labels != -100).float())
    finally:
        RULES.pop(name, None)
    assert name not in RULES
