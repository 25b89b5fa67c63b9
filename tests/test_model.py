import math

import pytest
import torch

from fgff_core.engine.goodness import layer_goodness, normalise, relu_goodness_
from fgff_core.engine.label_input import normalised_embedding, relabel_coefficients
from fgff_core.engine.model import FFLayer, FFNet, embed_labels, goodness, hinge_loss, softplus_loss


def test_label_embedding_overwrites_the_first_ten_values():
    x = torch.arange(24, dtype=torch.float32).reshape(2, 12) + 5
    out = embed_labels(x, torch.tensor([3, 0]), label_value=1.0)
    assert out[0, :10].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert out[1, :10].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert torch.equal(out[:, 10:], x[:, 10:])
    assert x[0, 0] == 5  # the input is not modified
    assert embed_labels(x, 7, label_value=2.5)[:, 7].tolist() == [2.5, 2.5]


def test_goodness_eq2_and_eq3_by_hand():
    h = torch.tensor([[1.0, 2.0, 0.0, 3.0]])
    assert goodness(h).item() == pytest.approx((1 + 4 + 0 + 9) / 4)  # eq. (2)
    w = torch.tensor([0.5, 2.0, 7.0, -1.0])
    assert goodness(h, w).item() == pytest.approx((0.5 + 8 + 0 - 9) / 4)  # eq. (3)


def test_softplus_loss_by_hand():
    g_pos, g_neg = torch.tensor([3.0, 1.0]), torch.tensor([0.5, 2.5])
    terms = [2 - 3.0, 2 - 1.0, 0.5 - 2, 2.5 - 2]
    expected = sum(math.log1p(math.exp(t)) for t in terms) / 4
    assert softplus_loss(g_pos, g_neg, threshold=2.0).item() == pytest.approx(expected, rel=1e-6)


def test_hinge_loss_eq1_by_hand():
    g_pos, g_neg = torch.tensor([3.0, 2.2]), torch.tensor([0.5, 2.1])
    # delta 0.5: pos terms max(0, .5-(1)) = 0, max(0, .5-.2) = .3; neg terms max(0, .5-1.5) = 0, max(0, .5+.1) = .6
    assert hinge_loss(g_pos, g_neg, threshold=2.0, delta=0.5).item() == pytest.approx(0.5 * (0.15 + 0.3))
    assert hinge_loss(torch.tensor([9.0]), torch.tensor([0.0]), 2.0, 0.5).item() == 0.0


def test_significance_gradient_grows_the_factor_of_a_neuron_more_active_on_positive_data():
    sig = torch.ones(2, requires_grad=True)
    # neuron 0 fires on positive data, neuron 1 on negative data; goodness sits at the threshold
    h_pos = torch.tensor([[2.0, 0.0]])
    h_neg = torch.tensor([[0.0, 2.0]])
    loss = softplus_loss(goodness(h_pos, sig), goodness(h_neg, sig), threshold=2.0)
    loss.backward()
    assert sig.grad[0] < 0 < sig.grad[1]
    opt = torch.optim.Adam([sig], lr=0.1)
    opt.step()
    assert sig[0] > 1.0 > sig[1]
    sig.grad = None
    hinge_loss(goodness(h_pos, sig), goodness(h_neg, sig), threshold=2.0, delta=0.5).backward()
    assert sig.grad[0] < 0 < sig.grad[1]


def test_layer_forward_is_normalise_linear_relu():
    torch.manual_seed(0)
    layer = FFLayer(5, 3)
    x = torch.randn(4, 5)
    xn = x / (x.norm(dim=1, keepdim=True) + 1e-4)
    expected = torch.relu(xn @ layer.linear.weight.T + layer.linear.bias)
    assert torch.allclose(layer(x), expected)
    # scaling the input barely changes the output (only through the 1e-4 in the norm): it sees the direction
    assert torch.allclose(layer(10 * x), layer(x), atol=1e-3)


@pytest.mark.parametrize("label_value", [1.0, 3.7])
def test_factorised_first_layer_matches_the_plain_path(label_value):
    torch.manual_seed(1)
    x = torch.randn(64, 30)
    y = torch.randint(0, 10, (64,))
    y_neg = (y + 3) % 10
    nets = [FFNet(30, [16, 8], label_value=label_value, factorize=f) for f in (True, False)]
    nets[1].load_state_dict(nets[0].state_dict())
    outs = [net.layer_outputs(x, y_neg) for net in nets]
    for a, b in zip(*outs):
        assert torch.allclose(a, b, atol=1e-6)
    pairs = [net.first_input.prepare(x, y).inputs(y_neg).forward(net.layers[0]) for net in nets]
    for a, b in zip((pairs[0].pos, pairs[0].neg), (pairs[1].pos, pairs[1].neg)):
        assert torch.allclose(a, b, atol=1e-6)
    g_fact, g_plain = nets[0].label_goodness(x, chunk=7), nets[1].label_goodness(x)
    for a, b in zip(g_fact, g_plain):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.equal(nets[0].predict(x), nets[1].predict(x))


def test_prediction_with_and_without_significance_by_hand():
    torch.manual_seed(2)
    net = FFNet(20, [6, 4], factorize=True)
    with torch.no_grad():
        net.layers[0].s_raw.copy_(torch.tensor([3.0, -1.0, 0.5, 2.0, 0.0, 1.0]))
        net.layers[1].s_raw.copy_(torch.tensor([0.1, 4.0, 1.0, -2.0]))
    x = torch.randn(9, 20)
    g_s, g_no_significance = net.label_goodness(x)
    for label in range(10):
        h1 = net.layers[0](embed_labels(x, label, 1.0))
        h2 = net.layers[1](h1)
        want_s = goodness(h1, net.layers[0].s()) + goodness(h2, net.layers[1].s())
        want_no_significance = goodness(h1) + goodness(h2)
        assert torch.allclose(g_s[:, label], want_s, atol=1e-6)
        assert torch.allclose(g_no_significance[:, label], want_no_significance, atol=1e-6)
    assert torch.equal(net.predict(x, use_significance=True), g_s.argmax(1))
    assert torch.equal(net.predict(x, use_significance=False), g_no_significance.argmax(1))
    assert not torch.equal(g_s, g_no_significance)
    # only the first layer: upto=1
    g1, _ = net.label_goodness(x, upto=1)
    assert torch.allclose(g1[:, 4], goodness(net.layers[0](embed_labels(x, 4, 1.0)), net.layers[0].s()))


def _eager_layer_goodness(layer, x_pos, x_neg):
    """The reference: the layer step as plain autograd ops, straight from eq. (3) and eq. (2)."""
    h_pos, h_neg = torch.relu(layer.linear(x_pos)), torch.relu(layer.linear(x_neg))
    s = layer.s()
    return h_pos, h_neg, goodness(h_pos, s), goodness(h_neg, s), goodness(h_pos), goodness(h_neg)


@pytest.mark.parametrize("n_rows", [7, 5000])  # one row block; several CPU blocks with a partial last one
@pytest.mark.parametrize("relabelled", [False, True])
@pytest.mark.parametrize("loss_name", ["softplus", "hinge"])
def test_layer_goodness_matches_autograd_of_the_equations(n_rows, relabelled, loss_name):
    """Values and the gradients of W, b and the significance (including zero and negative factors)."""
    torch.manual_seed(5)
    layer = FFLayer(30, 9).double()
    with torch.no_grad():
        layer.s_raw.copy_(torch.tensor([1.0, 0.0, -0.5, 2.0, 0.3, 1.0, 4.0, -1.0, 0.7]))
    x = torch.randn(n_rows, 30, dtype=torch.float64)
    y = torch.randint(0, 10, (n_rows,))
    y_neg = (y + torch.randint(1, 10, (n_rows,))) % 10
    x_pos, inv_norm = normalised_embedding(x, y, 1.3, 10)
    x_neg = normalise(embed_labels(x, y_neg, 1.3, 10))

    def loss_of(g_pos, g_neg):
        return softplus_loss(g_pos, g_neg, 2.0) if loss_name == "softplus" else hinge_loss(g_pos, g_neg, 0.3, 0.1)

    results = []
    for fused in (True, False):
        layer.zero_grad()
        if not fused:
            out = _eager_layer_goodness(layer, x_pos, x_neg)
        elif relabelled:
            out = layer_goodness(layer, x_pos, coef=relabel_coefficients(inv_norm * 1.3, y, y_neg, 10))
        else:
            out = layer_goodness(layer, x_pos, x_neg)
        loss_of(out[2], out[3]).backward()  # g_pos, g_neg
        grads = [p.grad.clone() for p in (layer.linear.weight, layer.linear.bias, layer.s_raw)]
        results.append(([t.detach() for t in out], grads))
    torch.testing.assert_close(results[0], results[1], rtol=1e-9, atol=1e-12)
    assert all(g.abs().sum() > 0 for g in results[0][1])


def test_layer_goodness_passes_gradcheck():
    from types import SimpleNamespace

    torch.manual_seed(6)
    x_pos, x_neg = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    weight = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    sig = torch.tensor([1.0, -2.0, 0.0, 0.5], dtype=torch.float64, requires_grad=True)

    def goodness_sum(w, b, s):
        layer = SimpleNamespace(linear=SimpleNamespace(weight=w, bias=b), s=lambda: s)
        out = layer_goodness(layer, x_pos, x_neg)
        return out.g_pos * torch.arange(1.0, 7.0, dtype=torch.float64) - out.g_neg ** 2

    torch.autograd.gradcheck(goodness_sum, (weight, bias, sig))


def test_relu_goodness_in_place_in_row_blocks():
    from fgff_core.engine.goodness import CPU_ROW_BLOCK

    z = torch.randn(3, CPU_ROW_BLOCK, 6, dtype=torch.float64)
    sig = torch.rand(6, dtype=torch.float64)
    want = torch.relu(z)
    h, g = relu_goodness_(z, sig)
    assert h.data_ptr() == z.data_ptr() and torch.equal(h, want)
    torch.testing.assert_close(tuple(g), (goodness(want, sig), goodness(want)))
