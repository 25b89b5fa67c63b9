"""The label-factorised first layer must give the plain path's numbers (up to float rounding).

Plain path: embed the label into the image (``embed_labels``) and run the layer on the full input,
once per label vector. Factorised path: one full product for the first label vector, and the
others by relabelling it (a thin product with the change of label columns). Both are compared on
outputs, losses, gradients, predictions and whole training runs.
"""

from __future__ import annotations

import pytest
import torch

from fgff_core.engine.label_input import FactorisedFirstLayerInput, FirstLayerInput
from fgff_core.engine.model import FFLayer, FFNet, embed_labels, goodness, hinge_loss, softplus_loss
from fgff_core.engine.training import Trainer, draw_negative_labels

C = 10


def _data(n: int = 64, d: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randint(0, C, (n,), generator=gen)
    y_neg = draw_negative_labels(y, C, gen)
    return x, y, y_neg


def _pair(layers=(16, 12), d: int = 40, label_value: float = 1.0, seed: int = 1) -> tuple[FFNet, FFNet]:
    """Two nets with identical float64 parameters: factorised and plain."""
    torch.manual_seed(seed)
    fact = FFNet(d, layers, C, label_value, factorize=True).double()
    plain = FFNet(d, layers, C, label_value, factorize=False).double()
    plain.load_state_dict(fact.state_dict())
    with torch.no_grad():  # significance away from 1 so that eq. (3) differs from eq. (2)
        for a, b in zip(fact.layers, plain.layers):
            s = torch.rand(a.s_raw.shape, dtype=torch.float64) + 0.5
            a.s_raw.copy_(s)
            b.s_raw.copy_(s)
    return fact, plain


def _first_layer_pair(x, y, y_neg, layer, label_value=1.0, factorised=True):
    """Layer 1's outputs on the positive and negative inputs, through the chosen path."""
    first = (FactorisedFirstLayerInput if factorised else FirstLayerInput)(label_value, C)
    out = first.prepare(x, y).inputs(y_neg).forward(layer)
    return out.pos, out.neg


@pytest.mark.parametrize("label_value", [1.0, 2.5, 0.3])
def test_factorised_inputs_match_plain_forward(label_value):
    x, y, y_neg = _data()
    layer = FFLayer(x.shape[1], 16).double()
    got = _first_layer_pair(x, y, y_neg, layer, label_value)
    for h, labels in zip(got, [y, y_neg]):
        want = layer(embed_labels(x, labels, label_value, C))
        torch.testing.assert_close(h, want, rtol=1e-12, atol=1e-12)


def test_relabel_keeps_samples_whose_label_does_not_change():
    x, y, y_neg = _data()
    layer = FFLayer(x.shape[1], 16).double()
    y_new = torch.where(torch.arange(len(y)) % 2 == 0, y, y_neg)  # half of the samples keep their label
    h_pos, h_new = _first_layer_pair(x, y, y_new, layer, 0.7)
    torch.testing.assert_close(h_new, layer(embed_labels(x, y_new, 0.7, C)), rtol=1e-12, atol=1e-12)
    assert torch.equal(h_new[::2], h_pos[::2])


def test_factorised_inputs_ignore_the_label_slots_of_the_input():
    """Whatever sits in the first C inputs is overwritten by the label."""
    x, y, y_neg = _data()
    layer = FFLayer(x.shape[1], 8).double()
    x2 = x.clone()
    x2[:, :C] = 123.0
    for a, b in zip(_first_layer_pair(x, y, y_neg, layer), _first_layer_pair(x2, y, y_neg, layer)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_all_labels_pre_activation_matches_ten_plain_passes():
    x, _, _ = _data()
    layer = FFLayer(x.shape[1], 16).double()
    got = FactorisedFirstLayerInput(1.5, C).all_labels_pre_activation(layer, x)
    want = FirstLayerInput(1.5, C).all_labels_pre_activation(layer, x)
    assert got.shape == (C, len(x), 16)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(want[3], layer.pre_activation(embed_labels(x, 3, 1.5, C)), rtol=0, atol=0)


def test_float32_paths_agree_to_float_rounding():
    x, y, y_neg = _data(n=256, d=784)
    x = x.float()
    layer = FFLayer(784, 64)
    for h, labels in zip(_first_layer_pair(x, y, y_neg, layer), [y, y_neg]):
        torch.testing.assert_close(h, layer(embed_labels(x, labels, 1.0, C)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("loss_name", ["softplus", "hinge"])
def test_losses_and_gradients_match(loss_name):
    """The training step of layer 1 on both paths: same loss and the same gradients for W (label and
    image columns), b and the significance."""
    x, y, y_neg = _data()
    fact, plain = _pair()
    for net in (fact, plain):
        for layer in net.layers:
            layer.s_raw.requires_grad_(True)
    results = []
    for net in (fact, plain):
        out = net.first_input.prepare(x, y).inputs(y_neg).layer_goodness(net.layers[0])
        loss = softplus_loss(out.g_pos, out.g_neg, 2.0) if loss_name == "softplus" \
            else hinge_loss(out.g_pos, out.g_neg, 0.2, 0.05)
        loss.backward()
        results.append((loss.detach(), out.h_pos, out.h_neg))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)
    p_f, p_p = fact.layers[0], plain.layers[0]
    assert p_f.linear.weight.grad.abs().sum() > 0 and p_f.s_raw.grad.abs().sum() > 0
    torch.testing.assert_close(p_f.linear.weight.grad, p_p.linear.weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(p_f.linear.bias.grad, p_p.linear.bias.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(p_f.s_raw.grad, p_p.s_raw.grad, rtol=1e-10, atol=1e-12)


def test_layer_outputs_match():
    x, y, _ = _data()
    fact, plain = _pair()
    for a, b in zip(fact.layer_outputs(x, y), plain.layer_outputs(x, y)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk", [7, 4096])
def test_label_goodness_and_predictions_match(chunk):
    x, y, _ = _data(n=50)
    fact, plain = _pair(layers=(16, 12, 8))
    # label_goodness accumulates in float32 whatever the model's dtype: float32 tolerances
    for upto in (1, 2, None):
        got = fact.label_goodness(x, upto=upto, chunk=chunk)
        want = plain.label_goodness(x, upto=upto, chunk=chunk)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # the goodness rule itself: eq. (3) and eq. (2) summed over layers, computed directly
    s_sum = torch.zeros(len(x), C, dtype=torch.float64)
    no_significance_sum = torch.zeros(len(x), C, dtype=torch.float64)
    for k in range(C):
        outs = plain.layer_outputs(x, torch.full((len(x),), k))
        for h, layer in zip(outs, plain.layers):
            s_sum[:, k] += (h.square() * layer.s()).mean(dim=1)
            no_significance_sum[:, k] += h.square().mean(dim=1)
    got = fact.label_goodness(x, chunk=chunk)
    torch.testing.assert_close(tuple(got), (s_sum.float(), no_significance_sum.float()), rtol=1e-5, atol=1e-6)
    for use_sig in (True, False):
        assert torch.equal(fact.predict(x, use_sig, chunk=chunk), plain.predict(x, use_sig, chunk=chunk))


def test_goodness_matches_equations_2_and_3():
    h = torch.randn(5, 7, dtype=torch.float64)
    sig = torch.rand(7, dtype=torch.float64)
    torch.testing.assert_close(goodness(h), (h**2).sum(1) / 7)
    torch.testing.assert_close(goodness(h, sig), (h**2 * sig).sum(1) / 7)
    torch.testing.assert_close(goodness(h[None].expand(3, 5, 7), sig), (h**2 * sig).sum(1).expand(3, 5) / 7)


def _run(factorize: bool, **changes):
    cfg = dict(algo="fgff", dataset="digits", layers=(32, 16), epochs=15, batch_size=0, seed=3, device="cpu",
               eval_every=5, eval_subset=200, factorize=factorize, log_every=4)
    cfg.update(changes)
    trainer = Trainer(cfg)
    events = list(trainer.run())
    epochs = [e for e in events if e.kind == "epoch"]
    return trainer, epochs, events[-1]


@pytest.mark.parametrize("changes", [
    dict(),
    dict(algo="ff"),
    dict(batch_size=256, label_value="max"),
    dict(schedule="simultaneous", negatives="resample", loss="hinge"),
    dict(negatives="resample"),  # greedy: resampled negatives go through the frozen layers below
])
def test_training_runs_agree(changes):
    """Whole FF/FGFF runs, factorised and plain, with the same seed: same curves and accuracies."""
    t_f, e_f, r_f = _run(True, **changes)
    t_p, e_p, r_p = _run(False, **changes)
    assert len(e_f) == len(e_p) == 30
    for a, b in zip(e_f, e_p):
        for name in ("loss", "g_pos", "g_neg", "g_pos_no_significance", "g_neg_no_significance"):
            assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-3, abs=1e-4), name
        assert a.significance == pytest.approx(b.significance, rel=1e-3, abs=1e-4)
    for pa, pb in zip(t_f.model.parameters(), t_p.model.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-3, atol=1e-4)
    assert r_f.status == r_p.status == "done"
    # accuracies on 360 test samples may differ by a near-tie flipped by rounding, not more
    assert abs(r_f.test_acc - r_p.test_acc) <= 2 / len(t_f.data.y_test)
    assert abs(r_f.train_acc - r_p.train_acc) <= 2 / len(t_f.data.y_train)
