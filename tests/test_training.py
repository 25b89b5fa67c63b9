import pytest
import torch
from diverging import NAN_REASON, NAN_RUN, with_a_nan_pixel

from fgff_core.config import RunConfig
from fgff_core.engine.events import EpochMetrics, EvalMetrics, RunFinished, RunStarted
from fgff_core.engine.label_input import PairInputs
from fgff_core.engine.model import embed_labels
from fgff_core.engine.training import Trainer, draw_negative_labels, train


def small(**kw):
    return RunConfig(**{"dataset": "digits", "layers": (32, 16), "epochs": 20, "eval_every": 0, "device": "cpu",
                        **kw})


def test_negative_labels_are_never_the_true_label_and_cover_the_others():
    y = torch.arange(10).repeat(2000)
    neg = draw_negative_labels(y, 10, torch.Generator().manual_seed(0))
    assert not torch.any(neg == y)
    for label in range(10):
        counts = torch.bincount(neg[y == label], minlength=10)
        assert counts[label] == 0
        others = counts[torch.arange(10) != label].float()
        assert others.min() > 0.8 * others.mean()  # roughly uniform over the 9 wrong labels


def test_resampled_negatives_change_each_epoch_and_stay_wrong(digits, monkeypatch):
    drawn = []
    import fgff_core.engine.training as training

    real = training.draw_negative_labels

    def spy(labels, n, gen):
        out = real(labels, n, gen)
        drawn.append(out)
        return out

    monkeypatch.setattr(training, "draw_negative_labels", spy)
    train(small(negatives="resample", epochs=3, layers=(8,)), digits)
    assert len(drawn) == 1 + 3  # once up front, then once per epoch
    assert not torch.equal(drawn[1], drawn[2])
    assert all(not torch.any(d == digits.y_train) for d in drawn)


def test_significance_lr_zero_is_ff_bit_for_bit(digits):
    ff, _ = train(small(algo="ff"), digits)
    fgff0, _ = train(small(algo="fgff", sig_lr=0.0), digits)
    for (name, a), (_, b) in zip(ff.model.state_dict().items(), fgff0.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(ff.model.label_goodness(digits.x_test)[0], fgff0.model.label_goodness(digits.x_test)[0])
    fgff, _ = train(small(algo="fgff", sig_lr=0.15), digits)
    assert not torch.equal(fgff.model.layers[0].s(), torch.ones(32))


def test_ff_keeps_significance_at_one(digits):
    trainer, _ = train(small(algo="ff", epochs=5), digits)
    assert all(torch.equal(s, torch.ones_like(s)) for s in trainer.model.significance())


def test_greedy_schedule_trains_layers_one_after_another_on_frozen_outputs(digits, monkeypatch):
    trainer = Trainer(small(epochs=6), digits)
    model = trainer.model
    seen_inputs = []  # the positive inputs of each training step of layer 2

    def spy(inputs, layer, *args, **kwargs):
        if layer is model.layers[1]:
            seen_inputs.append(inputs.pos.detach().clone())
        return pair_layer_goodness(inputs, layer, *args, **kwargs)

    pair_layer_goodness = PairInputs.layer_goodness
    monkeypatch.setattr(PairInputs, "layer_goodness", spy)
    layer_of_epoch, frozen_first = [], None
    for event in trainer.run():
        if isinstance(event, EpochMetrics):
            layer_of_epoch.append(event.layer)
            if event.layer == 1 and frozen_first is None:
                frozen_first = {k: v.clone() for k, v in model.layers[0].state_dict().items()}
    assert layer_of_epoch == [0] * 6 + [1] * 6
    for k, v in model.layers[0].state_dict().items():  # layer 1 did not move while layer 2 trained
        assert torch.equal(v, frozen_first[k]), k
    # layer 2 saw exactly layer 1's frozen output on positive data (first half of its inputs in each step)
    pos_expected = model.layers[0](embed_labels(digits.x_train, digits.y_train, 1.0))
    assert len(seen_inputs) == 6 and all(len(t) == len(digits.y_train) for t in seen_inputs)
    for positive in seen_inputs:
        assert torch.allclose(positive, pos_expected, atol=1e-6)


def test_simultaneous_schedule_steps_every_layer_each_epoch(digits):
    trainer = Trainer(small(schedule="simultaneous", epochs=4), digits)
    events = [e for e in trainer.run() if isinstance(e, EpochMetrics)]
    assert [(e.layer, e.epoch) for e in events] == [(i, ep) for ep in range(1, 5) for i in range(2)]


def test_events_are_complete_and_consistent(digits):
    trainer = Trainer(small(epochs=10, eval_every=5, log_every=3), digits)
    events = list(trainer.run())
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    epochs = [e for e in events if isinstance(e, EpochMetrics)]
    evals = [e for e in events if isinstance(e, EvalMetrics)]
    assert len(epochs) == events[0].epoch_events == 20
    assert [e.step for e in epochs] == list(range(1, 21))
    assert [(e.layer, e.epoch) for e in evals] == [(0, 5), (0, 10), (1, 5), (1, 10)]
    assert all(e.significance.shape == ((32,) if e.layer == 0 else (16,)) for e in epochs)
    assert all(e.seconds > 0 and e.loss > 0 and e.g_pos >= 0 for e in epochs)
    final = events[-1]
    assert final.status == "done" and 0 <= final.test_acc <= 1 and final.train_seconds > 0


def test_stop_ends_cleanly_between_epochs(digits):
    trainer = Trainer(small(epochs=50), digits)
    seen = 0
    for event in trainer.run():
        if isinstance(event, EpochMetrics):
            seen += 1
            if seen == 3:
                trainer.stop()
    assert trainer.result.status == "stopped" and trainer.result.test_acc is None
    assert seen == 3


def test_minibatches_and_hinge_loss_and_bp_run(digits):
    _, res = train(small(batch_size=100, loss="hinge", epochs=3), digits)
    assert res.status == "done"
    _, res = train(small(algo="bp", epochs=3, batch_size=64), digits)
    assert res.test_acc > 0.5 and res.test_acc_no_significance is None


def test_seeded_cpu_runs_repeat_exactly(digits):
    a, ra = train(small(epochs=5, negatives="resample"), digits)
    b, rb = train(small(epochs=5, negatives="resample"), digits)
    assert ra.test_acc == rb.test_acc
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


def test_label_value_max_uses_the_data_maximum(digits):
    trainer = Trainer(small(label_value="max", epochs=1), digits)
    assert trainer.label_value == pytest.approx(float(digits.x_train.max()))


@pytest.mark.parametrize("algo", ["fgff", "ff"])
def test_learns_digits_far_above_chance(digits, algo):
    _, res = train(RunConfig(algo=algo, dataset="digits", layers=(100, 100), epochs=200, eval_every=0,
                             device="cpu"), digits)
    assert res.test_acc > 0.8, res  # chance is 0.1


@pytest.mark.slow
def test_compile_speed_mode_gives_the_same_losses(digits):
    """torch.compile (off by default) fuses a layer step; it must train the same network."""
    eager = [e.loss for e in Trainer(small(epochs=5), digits).run() if isinstance(e, EpochMetrics)]
    compiled = [e.loss for e in Trainer(small(epochs=5, compile=True), digits).run() if isinstance(e, EpochMetrics)]
    assert compiled == pytest.approx(eager, rel=1e-4, abs=1e-5)


# -- divergence: the one rule of the training driver (issue 38 case 2, issue 35 case 2) ---------------------
def test_a_nan_loss_ends_train_failed_with_the_drivers_reason(digits):
    events: list = []
    _, result = train(NAN_RUN, digits, callback=events.append)
    assert (result.status, result.reason) == ("failed", NAN_REASON)
    assert result.test_acc is None and result.train_acc is None  # no accuracy of a NaN network is reported
    assert [e.kind for e in events] == ["started", "epoch", "finished"] and events[-1] is result


@pytest.mark.parametrize("algo, hint", [
    ("fgff", "Hint: lower lr (now 0.06) or sig_lr (now 0.15), or raise the threshold (now 2.0)."),
    ("ff", "Hint: lower lr (now 0.06) or raise the threshold (now 2.0)."),
])
def test_the_divergence_hint_names_the_algorithms_own_knobs(digits, algo, hint):
    _, result = train(small(algo=algo, layers=(8, 8), epochs=3), with_a_nan_pixel(digits))
    assert result.status == "failed"
    assert result.reason == f"NaN loss at layer 1 of 2, epoch 1. {hint}"


def test_a_run_that_diverges_with_finite_losses_says_so_at_chance(digits):
    _, result = train(small(algo="bp", layers=(8,), epochs=2, lr=10.0), digits)
    assert result.status == "done" and abs(result.test_acc - 0.1) <= 0.05  # chance: 10 classes
    assert result.reason == "at chance: the run diverged; lower lr (now 10.0)"
    _, learned = train(small(algo="bp", layers=(8,), epochs=2, lr=0.03), digits)
    assert learned.test_acc > 0.5 and learned.reason is None


def test_constructing_a_trainer_loads_nothing_until_first_use(monkeypatch, digits):
    import fgff_core.engine.training as training

    loads = []
    monkeypatch.setattr(training, "load_for_config", lambda cfg: loads.append(cfg.dataset) or digits)
    trainer = Trainer(small(epochs=1))
    assert loads == []  # construction stores and checks the parameters only
    events = list(trainer.run())
    assert loads == ["digits"]  # loaded once, on first use
    assert isinstance(events[-1], RunFinished) and events[-1].status == "done"
    assert trainer.model is trainer.model and trainer.data is trainer.data and loads == ["digits"]


def test_prepare_builds_the_same_seeded_network_as_a_run_starts_from(digits):
    prepared = Trainer(small(), digits).prepare()
    run_first = Trainer(small(epochs=1), digits)
    first_event = next(run_first.run())
    assert isinstance(first_event, RunStarted)
    for a, b in zip(prepared.model.state_dict().values(), run_first.model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_trainer_refuses_data_that_is_not_a_dataset_when_constructed():
    with pytest.raises(TypeError, match="data: expected a Dataset"):
        Trainer(small(), data={"x_train": None})
