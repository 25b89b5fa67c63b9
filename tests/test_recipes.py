"""The strong-FF options (issue 12): hard negatives, schedules and optimizers, peer normalisation, SymBa and
the exponential hinge, prediction over chosen layers with per-layer accuracy, the linear readout, and the
non-negative significance parameterisations. Fast, on digits."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fgff_core.config import RunConfig
from fgff_core.engine.events import EpochMetrics, EvalMetrics
from fgff_core.engine.goodness import (
    exp_hinge_loss,
    layer_goodness,
    layer_loss,
    normalise,
    peer_normalisation_loss,
    softplus_loss,
    symba_loss,
)
from fgff_core.engine.model import FFLayer, FFNet, embed_labels, goodness
from fgff_core.engine.negatives import hard_negative_labels, mix_negatives
from fgff_core.engine.optim import LayerOptimizers, lr_factor, make_adam
from fgff_core.engine.training import Trainer, train


def small(**kw) -> RunConfig:
    return RunConfig(**{"dataset": "digits", "layers": (32, 16), "epochs": 6, "eval_every": 0, "device": "cpu",
                        **kw})


# -- hard negatives ---------------------------------------------------------------------------------

def test_hard_negatives_are_the_best_wrong_label_and_never_the_true_one():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(500, 10, generator=gen)
    y = scores.argmax(1)  # the true label has the highest goodness: the hard negative is the runner-up
    y[::2] = torch.randint(0, 10, (250,), generator=gen)  # ... and any label for the other half
    hard = hard_negative_labels(scores, y)
    assert not torch.any(hard == y)
    for i in range(len(y)):
        wrong = [k for k in range(10) if k != y[i]]
        assert hard[i] == max(wrong, key=lambda k: scores[i, k])
    torch.testing.assert_close(hard_negative_labels(torch.tensor([[5.0, 1.0, 3.0]]), torch.tensor([0])),
                               torch.tensor([2]))


def test_mixing_hard_and_random_negatives():
    gen = torch.Generator().manual_seed(1)
    rand = torch.ones(4000, dtype=torch.long)
    asked = []

    def hard_of(rows):
        asked.append(rows)
        return torch.zeros(len(rows), dtype=torch.long)

    assert torch.equal(mix_negatives(rand, 1.0, gen, hard_of), torch.zeros(4000, dtype=torch.long))
    assert torch.equal(mix_negatives(rand, 0.0, gen, hard_of), rand)
    assert len(asked) == 1  # nothing is computed for 0% hard negatives
    mixed = mix_negatives(rand, 0.3, gen, hard_of)
    assert 0.25 < (mixed == 0).float().mean().item() < 0.35
    # the hard labels are computed for exactly the samples that take them, and only once
    assert len(asked) == 2 and torch.equal(asked[1], (mixed == 0).nonzero().squeeze(1))


@pytest.mark.parametrize("schedule", ["greedy", "simultaneous"])
def test_training_with_hard_negatives_runs_and_changes_the_result(digits, schedule):
    _, plain = train(small(schedule=schedule, negatives="resample"), digits)
    trainer, hard = train(small(schedule=schedule, negatives="resample", hard_negatives=0.5,
                                hard_negatives_every=2), digits)
    assert hard.status == "done" and hard.test_acc != plain.test_acc


# -- schedules and optimizers ----------------------------------------------------------------------

def test_learning_rate_schedules_at_chosen_epochs():
    assert [lr_factor("constant", e, 10) for e in (1, 10)] == [1.0, 1.0]
    linear = [lr_factor("linear", e, 10) for e in (1, 5, 6, 7, 10)]
    assert linear == pytest.approx([1.0, 1.0, 1.0, 0.8, 0.2])  # flat, then to 0 over the second half
    assert lr_factor("cosine", 1, 10) == 1.0
    assert lr_factor("cosine", 6, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 10, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor("step", 1, 10)


def test_layer_optimizers_follow_the_schedule_for_weights_and_significance():
    cfg = RunConfig(algo="fgff", lr=0.1, sig_lr=0.2, lr_schedule="linear", epochs=10)
    opt = LayerOptimizers(FFLayer(12, 4), cfg)
    opt.start_epoch(7, 10)
    assert opt.weights.param_groups[0]["lr"] == pytest.approx(0.08)
    assert opt.s.param_groups[0]["lr"] == pytest.approx(0.16)


@pytest.mark.parametrize("decoupled", [False, True])
def test_fused_adam_makes_the_unfused_update(decoupled):
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(40, 30, generator=gen)
    fused_w, plain_w = nn.Parameter(w.clone()), nn.Parameter(w.clone())
    fused = make_adam([fused_w], 0.01, weight_decay=0.01, decoupled=decoupled)
    plain = (torch.optim.AdamW if decoupled else torch.optim.Adam)([plain_w], lr=0.01, weight_decay=0.01)
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    for _ in range(50):
        grad = torch.randn(40, 30, generator=gen)
        fused_w.grad, plain_w.grad = grad.clone(), grad.clone()
        fused.step()
        plain.step()
    assert not torch.equal(fused_w, w)
    torch.testing.assert_close(fused_w, plain_w, rtol=0, atol=1e-5)


@pytest.mark.parametrize("changes", [
    dict(optimizer="adamw", weight_decay=0.01),
    dict(optimizer="sgd", momentum=0.9, lr=5.0, lr_schedule="cosine"),
    dict(optimizer="adam", weight_decay=1e-4, lr_schedule="linear", batch_size=100),
])
def test_optimizers_train_at_minibatch_sizes(digits, changes):
    cfg = small(batch_size=changes.pop("batch_size", 200), epochs=10, **changes)
    losses = [e.loss for e in Trainer(cfg, digits).run() if isinstance(e, EpochMetrics) and e.layer == 0]
    assert losses[-1] < 0.9 * losses[0]


def test_weight_decay_leaves_the_significance_alone(digits):
    trainer, _ = train(small(algo="ff", optimizer="adamw", weight_decay=0.5, epochs=3), digits)
    assert all(torch.equal(s, torch.ones_like(s)) for s in trainer.model.significance())


# -- peer normalisation ----------------------------------------------------------------------------

def test_peer_normalisation_pushes_over_active_neurons_down_and_silent_ones_up():
    h = torch.tensor([[4.0, 0.0, 1.0], [2.0, 0.0, 1.0]], requires_grad=True)
    loss, running = peer_normalisation_loss(h, torch.zeros(3))
    loss.backward()
    assert h.grad[0, 0] > 0 and h.grad[0, 1] < 0  # descent lowers neuron 0, raises neuron 1
    torch.testing.assert_close(running, torch.tensor([0.3, 0.0, 0.1]))


def test_fused_layer_step_with_peer_normalisation_matches_autograd():
    torch.manual_seed(3)
    layer = FFLayer(20, 7).double()
    with torch.no_grad():
        layer.s_raw.copy_(torch.linspace(-1, 2, 7, dtype=torch.float64))
    x_pos, x_neg = normalise(torch.randn(30, 20, dtype=torch.float64)), normalise(torch.randn(30, 20,
                                                                                              dtype=torch.float64))
    running = torch.rand(7, dtype=torch.float64)
    grads = []
    for fused in (True, False):
        layer.zero_grad()
        if fused:
            out = layer_goodness(layer, x_pos, x_neg, h_pos_grad=True)
            h_pos, g_pos, g_neg = out.h_pos, out.g_pos, out.g_neg
        else:
            h_pos, h_neg = torch.relu(layer.linear(x_pos)), torch.relu(layer.linear(x_neg))
            g_pos, g_neg = goodness(h_pos, layer.s()), goodness(h_neg, layer.s())
        loss = softplus_loss(g_pos, g_neg, 2.0) + 3.0 * peer_normalisation_loss(h_pos, running)[0]
        loss.backward()
        grads.append([p.grad.clone() for p in (layer.linear.weight, layer.linear.bias, layer.s_raw)])
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-12)


def test_peer_normalisation_trains_both_first_layer_paths_alike(digits):
    runs = [train(small(peer_norm=0.03, batch_size=300, factorize=f), digits) for f in (True, False)]
    (a, ra), (b, rb) = runs
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-3, atol=1e-4)
    _, off = train(small(batch_size=300), digits)
    assert ra.test_acc != off.test_acc  # the penalty does something


# -- losses ----------------------------------------------------------------------------------------

def test_symba_loss_by_hand():
    g_pos, g_neg = torch.tensor([3.0, 1.0]), torch.tensor([1.0, 2.0])
    want = (math.log1p(math.exp(4.0 * (1 - 3))) + math.log1p(math.exp(4.0 * (2 - 1)))) / 2
    assert symba_loss(g_pos, g_neg, alpha=4.0).item() == pytest.approx(want, rel=1e-6)
    assert layer_loss(g_pos, g_neg, "symba", 2.0, 0.5, symba_alpha=4.0).item() == pytest.approx(want, rel=1e-6)


def test_exponential_hinge_by_hand():
    g_pos, g_neg = torch.tensor([3.0, 2.2]), torch.tensor([0.5, 2.1])
    # delta 0.5, threshold 2: hinge terms pos (0, 0.3), neg (0, 0.6) -> exp(t) - 1
    want = 0.5 * ((0 + math.expm1(0.3)) / 2 + (0 + math.expm1(0.6)) / 2)
    assert exp_hinge_loss(g_pos, g_neg, 2.0, 0.5).item() == pytest.approx(want, rel=1e-6)
    assert layer_loss(g_pos, g_neg, "exp_hinge", 2.0, 0.5).item() == pytest.approx(want, rel=1e-6)
    assert math.isfinite(exp_hinge_loss(torch.tensor([0.0]), torch.tensor([1e6]), 2.0, 0.5).item())


@pytest.mark.parametrize("loss", ["symba", "exp_hinge"])
def test_new_losses_train(digits, loss):
    _, res = train(small(loss=loss, epochs=20, threshold=0.5), digits)
    assert res.status == "done" and res.test_acc > 0.3


# -- prediction over chosen layers, per-layer accuracy, readout ------------------------------------

def test_skipping_the_first_layer_sums_the_other_layers_only():
    torch.manual_seed(4)
    net = FFNet(20, [6, 5, 4])
    x = torch.randn(9, 20)
    per_layer = net.layer_label_goodness(x)
    assert per_layer.with_significance.shape == (3, 9, 10)
    skipped = net.label_goodness(x, first=1)
    for label in range(10):
        h1 = net.layers[0](embed_labels(x, label, 1.0))
        h2 = net.layers[1](h1)
        h3 = net.layers[2](h2)
        assert torch.allclose(skipped.with_significance[:, label], goodness(h2) + goodness(h3), atol=1e-6)
    assert torch.equal(net.predict(x, first=1), skipped.with_significance.argmax(1))


def test_trainer_predicts_with_the_chosen_layers(digits):
    all_layers = Trainer(small(), digits)
    skip = Trainer(small(predict_layers="skip_first"), digits)  # same seed: the same untrained net
    x, y = digits.x_test, digits.y_test
    g = skip.model.label_goodness(x, first=1).with_significance
    assert skip.accuracy(x, y).with_significance == pytest.approx((g.argmax(1) == y).float().mean().item())
    assert skip.accuracy(x, y) != all_layers.accuracy(x, y)
    assert skip.first_predicting_layer(upto=1) == 0  # greedy, layer 1 alone: it is all there is
    with pytest.raises(ValueError, match="predict_layers"):
        Trainer(small(predict_layers="skip_first", layers=(16,)), digits)


@pytest.mark.parametrize("schedule", ["greedy", "simultaneous"])
def test_each_layers_own_accuracy_is_reported_during_training(digits, schedule):
    events = [e for e in Trainer(small(eval_every=3, schedule=schedule), digits).run() if isinstance(e, EvalMetrics)]
    if schedule == "greedy":
        assert [(e.layer, e.epoch) for e in events] == [(0, 3), (0, 6), (1, 3), (1, 6)]
    else:  # one event per layer at each evaluation
        assert [(e.layer, e.epoch) for e in events] == [(0, 3), (1, 3), (0, 6), (1, 6)]
        assert events[0].test_acc == events[1].test_acc
    assert all(0 <= e.layer_test_acc <= 1 and 0 <= e.layer_train_acc <= 1 for e in events)
    greedy_first = events[0]
    if schedule == "greedy":  # layer 1 alone is the whole net so far
        assert greedy_first.layer_test_acc == greedy_first.test_acc


def test_linear_readout_is_reported_apart_and_never_changes_the_goodness_accuracy(digits):
    _, without = train(small(epochs=10, batch_size=100), digits)
    _, with_readout = train(small(epochs=10, batch_size=100, readout_epochs=30), digits)
    assert without.readout_test_acc is None
    assert with_readout.test_acc == without.test_acc
    assert with_readout.train_acc == without.train_acc
    assert with_readout.readout_test_acc > 0.5


def test_the_linear_readout_is_reproducible_whatever_the_global_rng(digits):
    """Its head was once initialised from torch's global RNG, so identical runs reported different readouts."""
    torch.manual_seed(1)
    _, first = train(small(epochs=4, batch_size=100, readout_epochs=3), digits)
    torch.manual_seed(2)
    _, again = train(small(epochs=4, batch_size=100, readout_epochs=3), digits)
    assert (first.readout_train_acc, first.readout_test_acc) == (again.readout_train_acc, again.readout_test_acc)


# -- significance parameterisation -----------------------------------------------------------------

@pytest.mark.parametrize("param", ["softplus", "exp"])
def test_non_negative_significance_starts_at_one_and_stays_non_negative(digits, param):
    net = FFNet(64, [8], significance_param=param)
    torch.testing.assert_close(net.significance()[0], torch.ones(8))
    trainer, res = train(small(significance_param=param, sig_lr=1.0, epochs=15), digits)
    s = torch.cat(trainer.model.significance())
    assert res.status == "done" and torch.all(s >= 0) and not torch.allclose(s, torch.ones_like(s))


def test_unconstrained_significance_is_the_parameter_itself():
    layer = FFLayer(12, 4)
    assert layer.s() is layer.s_raw
    with pytest.raises(ValueError, match="significance_param"):
        FFLayer(12, 4, "square")


# -- presets ---------------------------------------------------------------------------------------

BEST_PRESETS = ["ff-best-mnist-quick", "ff-best-fashion-quick", "ff-best-mnist", "fgff-best-mnist", "ff-best-fashion",
                "fgff-best-fashion"]


@pytest.mark.parametrize("name", BEST_PRESETS)
def test_best_presets_round_trip_through_the_cli_and_the_form(name):
    from fgff_core.cli import build_parser, config_from_args
    from fgff_core.config.form import config_from_params, config_to_params
    from fgff_core.config.presets import PRESETS

    cfg = PRESETS[name].config()
    assert cfg.algo == name.split("-")[0]  # the preset's own algorithm when none is asked for
    assert config_from_args(build_parser().parse_args(["train", "--preset", name])) == cfg
    params = config_to_params(cfg)
    assert config_from_params(params) == cfg
    argv = ["train"] + [part for key, value in params.items() for part in (f"--{key.replace('_', '-')}", value)]
    assert config_from_args(build_parser().parse_args(argv)) == cfg
    assert "measured" in PRESETS[name].description.lower()  # "Measured ..." or "Not yet measured"


def test_a_run_is_named_after_its_preset_up_to_the_seed():
    from fgff_core.config.presets import PRESETS, preset_config, preset_of

    assert preset_of(preset_config("ff-best-mnist", seed=2, device="cpu")) == "ff-best-mnist"
    # The same config under two names: an FGFF run is named after the FGFF preset.
    assert PRESETS["ff-best-mnist"].config("fgff") == PRESETS["fgff-best-mnist"].config()
    assert preset_of(preset_config("ff-best-mnist", algo="fgff", seed=1)) == "fgff-best-mnist"
    assert preset_of(preset_config("ff-best-fashion-quick")) == "ff-best-fashion-quick"
    assert preset_of(preset_config("ff-best-mnist-quick", lr=0.02)) is None  # a changed learning field
    assert preset_of(preset_config("ff-best-mnist-quick", lr=0.02), ignore=("seed", "lr")) == "ff-best-mnist-quick"
