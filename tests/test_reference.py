"""The engine against the oracle: ``engine/reference.py`` (Algorithm 1 as printed, plain autograd) and the
real ``Trainer`` end with the same weights, factors s and predictions.

Both run in float64: they then differ only by float64 rounding (the engine's fused Adam, its written-out
backward, its label factorisation), about 1e-15, so a tolerance of 1e-10 leaves room for no real
difference (an eps, the order of two steps, a random draw, a learning rate). The engine's prediction rule
sums the layers' goodness in float32, so the scores are compared at float32 precision.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fgff_core.config import RunConfig
from fgff_core.engine import reference
from fgff_core.engine.training import train

PARAMS_TOL = 1e-10


@pytest.fixture
def digits64(digits):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # both nets' parameters are created in float64
    yield dataclasses.replace(digits, x_train=digits.x_train.double(), x_test=digits.x_test.double())
    torch.set_default_dtype(previous)


def tiny(**kw) -> RunConfig:
    """Small layers, a few epochs in batches of 50 (so the batch permutations are drawn): enough to learn."""
    return RunConfig(**{"dataset": "digits", "layers": (32, 16), "epochs": 4, "batch_size": 50,
                        "schedule": "greedy", "eval_every": 0, "device": "cpu", **kw})


def assert_engine_equals_reference(cfg: RunConfig, data) -> None:
    trainer, result = train(cfg, data)
    oracle = reference.train(cfg, data.x_train, data.y_train, data.n_classes)
    for i, layer in enumerate(trainer.model.layers):
        torch.testing.assert_close(layer.linear.weight, oracle.linears[i].weight, rtol=0, atol=PARAMS_TOL)
        torch.testing.assert_close(layer.linear.bias, oracle.linears[i].bias, rtol=0, atol=PARAMS_TOL)
        torch.testing.assert_close(layer.s(), oracle.s(i), rtol=0, atol=PARAMS_TOL)
    x = data.x_test
    scores = trainer.model.label_goodness(x)
    for use_s, engine_scores in ((True, scores.with_significance), (False, scores.no_significance)):
        torch.testing.assert_close(engine_scores, oracle.label_goodness(x, use_s).float(), rtol=1e-5, atol=1e-5)
        assert torch.equal(trainer.model.predict(x, use_significance=use_s), oracle.predict(x, use_s))
    assert result.test_acc > 0.3  # the nets learned: equal predictions are not all one label


@pytest.mark.parametrize("loss", ["softplus", "hinge"])
@pytest.mark.parametrize("algo", ["ff", "fgff"])
def test_greedy_training_matches_the_reference(digits64, algo, loss):
    assert_engine_equals_reference(tiny(algo=algo, loss=loss), digits64)


def test_the_plain_first_layer_path_matches_the_reference(digits64):
    assert_engine_equals_reference(tiny(algo="fgff", factorize=False), digits64)


@pytest.mark.parametrize("significance_param", ["softplus", "exp"])
def test_fgff_with_a_non_negative_s_matches_the_reference(digits64, significance_param):
    assert_engine_equals_reference(tiny(algo="fgff", significance_param=significance_param), digits64)


def test_fgff_moves_s_so_the_comparison_covers_the_significance_update(digits64):
    oracle = reference.train(tiny(algo="fgff"), digits64.x_train, digits64.y_train, digits64.n_classes)
    assert (oracle.s(0) - 1).abs().max() > 0.1


@pytest.mark.parametrize("field, value", [("schedule", "simultaneous"), ("algo", "bp"), ("loss", "symba"),
                                          ("peer_norm", 0.03), ("negatives", "resample")])
def test_the_reference_refuses_what_algorithm_1_does_not_have(digits, field, value):
    with pytest.raises(ValueError, match=f"^{field}: .*not allowed"):
        reference.train(tiny(**{field: value}), digits.x_train, digits.y_train, digits.n_classes)
