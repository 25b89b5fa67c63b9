"""Mono-Forward (algo=mf, arXiv:2501.09238): the engine's layer step and prediction rule against a hand computation
in plain tensor arithmetic (no autograd), that it learns the digits, and that it goes through config, CLI,
checkpoints and the job manager like the other algorithms."""

from __future__ import annotations

import json

import pytest
import torch

from fgff_core.cli import build_parser, config_from_args, main
from fgff_core.config import DEFAULT_BATCH_SIZE, DEFAULT_LR, RunConfig
from fgff_core.engine import mono_forward
from fgff_core.engine.checkpoint import load_checkpoint, save_checkpoint
from fgff_core.engine.events import EpochMetrics, EvalMetrics, RunFinished
from fgff_core.engine.model import build_network
from fgff_core.engine.mono_forward import MFNet
from fgff_core.engine.training import Trainer, train
from fgff_core.jobs import JobManager

LR = 0.1


def _hand_step(x, y, w, b, m):
    """One SGD step of layer (w, b, m) on (x, y) by hand: a = relu(x w^T + b), G = a m^T, L = mean CE(G, y),
    the gradients of L written out (dL/dG = (softmax(G) - onehot(y)) / N). Returns (a, L, new w, b, m)."""
    z = x @ w.T + b
    a = z.clamp(min=0)
    g = a @ m.T
    p = g.exp() / g.exp().sum(1, keepdim=True)
    onehot = torch.zeros_like(p)
    onehot[torch.arange(len(y)), y] = 1.0
    loss = -(p[torch.arange(len(y)), y].log()).mean()
    dg = (p - onehot) / len(y)
    dm = dg.T @ a
    dz = (dg @ m) * (z > 0)
    return a, loss, w - LR * dz.T @ x, b - LR * dz.sum(0), m - LR * dm


def test_a_tiny_mf_nets_losses_updates_and_prediction_are_the_hand_computed_ones(digits):
    cfg = RunConfig(algo="mf", dataset="digits", layers=(6, 4), epochs=1, batch_size=0, optimizer="sgd", momentum=0.0,
                    lr=LR, schedule="simultaneous", eval_every=0, device="cpu")
    trainer = Trainer(cfg, digits)
    start = {k: v.detach().clone().double() for k, v in trainer.model.state_dict().items()}
    events = list(trainer.run())
    x, y = trainer.data.x_train.double(), trainer.data.y_train
    # Layer 2 learns on layer 1's activations from before layer 1's step, and only from its own loss.
    a1, loss1, w1, b1, m1 = _hand_step(x, y, start["layers.0.linear.weight"], start["layers.0.linear.bias"],
                                       start["layers.0.projection.weight"])
    _, loss2, w2, b2, m2 = _hand_step(a1, y, start["layers.1.linear.weight"], start["layers.1.linear.bias"],
                                      start["layers.1.projection.weight"])
    losses = {e.layer: e.loss for e in events if isinstance(e, EpochMetrics)}
    assert losses == pytest.approx({0: loss1.item(), 1: loss2.item()}, rel=1e-5)
    after = trainer.model.state_dict()
    for i, (w, b, m) in enumerate([(w1, b1, m1), (w2, b2, m2)]):
        for name, hand in [("linear.weight", w), ("linear.bias", b), ("projection.weight", m)]:
            torch.testing.assert_close(after[f"layers.{i}.{name}"].double(), hand, rtol=1e-4, atol=1e-6)
    # Prediction: one pass, the highest class score of the last layer.
    xt = trainer.data.x_test.double()
    scores = ((xt @ w1.T + b1).clamp(min=0) @ w2.T + b2).clamp(min=0) @ m2.T
    hand_pred = scores.argmax(1)
    assert torch.equal(trainer.model.predict(trainer.data.x_test), hand_pred)
    final = events[-1]
    assert isinstance(final, RunFinished)
    assert final.test_acc == pytest.approx((hand_pred == trainer.data.y_test).double().mean().item())
    assert final.test_acc_no_significance is None  # no factors s


def test_the_greedy_schedule_trains_layer_one_then_layer_two_on_its_frozen_activations(digits):
    trainer = Trainer(RunConfig(algo="mf", dataset="digits", layers=(8, 6), epochs=3, eval_every=0, device="cpu"),
                      digits)
    first = None
    order = []
    for event in trainer.run():
        if isinstance(event, EpochMetrics):
            order.append((event.layer, event.epoch))
            if (event.layer, event.epoch) == (0, 3):
                first = {k: v.clone() for k, v in trainer.model.layers[0].state_dict().items()}
    assert order == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    for k, v in trainer.model.layers[0].state_dict().items():
        assert torch.equal(v, first[k]), k  # layer 2's training never moved layer 1


def test_mf_learns_the_digits_far_above_chance_in_a_few_epochs(digits):
    events = []
    _, finished = train(RunConfig(algo="mf", dataset="digits", layers=(32, 32), epochs=10, eval_every=10,
                                  device="cpu"), digits, events.append)
    assert finished.status == "done" and finished.test_acc > 0.8  # chance is 0.1
    evals = [e for e in events if isinstance(e, EvalMetrics)]
    assert [e.layer for e in evals] == [0, 1] and all(e.layer_test_acc is not None for e in evals)


def test_an_mf_config_round_trips_through_json_and_the_cli_with_its_own_defaults():
    cfg = RunConfig(algo="mf", layers=(16, 8))
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert (cfg.lr, cfg.batch_size) == (DEFAULT_LR["mf"], DEFAULT_BATCH_SIZE["mf"])
    assert cfg.epoch_events == cfg.epochs * 2 and not cfg.trains_factors
    from_cli = config_from_args(build_parser().parse_args(["train", "--algo", "mf", "--layers", "16,8"]))
    assert from_cli == cfg


def test_the_cli_trains_mf_and_prints_its_json_line(capsys):
    assert main(["train", "--algo", "mf", "--layers", "16", "--epochs", "2", "--eval-every", "0", "--json",
                 "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["algo"] == "mf" and out["status"] == "done" and out["test_acc_no_significance"] is None
    assert 0.0 <= out["test_acc"] <= 1.0


def test_an_mf_checkpoint_loads_as_the_same_network(digits, tmp_path):
    trainer, _ = train(RunConfig(algo="mf", dataset="digits", layers=(8, 4), epochs=2, eval_every=0,
                                 device="cpu"), digits)
    path = save_checkpoint(tmp_path / "mf.safetensors", trainer.model, trainer.config)
    model, config = load_checkpoint(path)
    assert isinstance(model, MFNet) and config == trainer.config
    assert torch.equal(model.predict(digits.x_test), trainer.model.predict(digits.x_test))


def test_build_network_gives_mf_its_projections_and_the_checkpoint_shapes_match():
    net = build_network(RunConfig(algo="mf", layers=(8, 4)), input_dim=64, n_classes=10)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == MFNet.state_shapes(64, (8, 4), 10)
    assert shapes["layers.1.projection.weight"] == (10, 4)


def test_one_epoch_steps_only_the_layers_asked_for():
    torch.manual_seed(0)
    net = MFNet(5, (4, 3), 3)
    opts = [torch.optim.SGD(layer.parameters(), lr=0.1) for layer in net.layers]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    losses = mono_forward.epoch(net, opts, torch.randn(12, 5), torch.randint(0, 3, (12,)), [1], [None])
    assert losses.shape == (1,)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("layers.0."))
    assert not torch.equal(before["layers.1.projection.weight"], after["layers.1.projection.weight"])


@pytest.mark.timeout(180)
def test_an_mf_job_finishes_through_the_job_manager_with_per_layer_metrics(tmp_path):
    with JobManager(tmp_path, max_concurrent=1) as jm:
        run_id = jm.submit(RunConfig(algo="mf", dataset="digits", layers=(8, 4), epochs=3, eval_every=3), name="mf")
        assert jm.wait(run_id, timeout=150) == "done", jm.store.run(run_id)["error"]
        row = jm.store.run(run_id)
        m = jm.store.metrics(run_id)
        assert len(m) == row["epochs_done"] == row["epoch_events"] == 6
        assert 0.0 <= row["test_acc"] <= 1.0 and jm.store.significance(run_id) == []
        model, config = jm.store.load_model(run_id)
        assert isinstance(model, MFNet) and config.algo == "mf"
