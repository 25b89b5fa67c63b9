"""What a neuron responds to (issue 34 item 2): weight images, exciting images, class preference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fgff_core.analysis.ablation import neuron_costs
from fgff_core.analysis.neurons import (
    chosen_neurons,
    class_preference,
    exciting_images,
    selectivity_index,
    weight_image,
    weight_images,
)
from fgff_core.engine.model import FFNet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = FFNet(64, (6, 5))
    with torch.no_grad():
        model.layers[0].s_raw.copy_(torch.tensor([0.5, 2.0, -1.0, 1.0, 3.0, 0.1]))
        model.layers[1].s_raw.copy_(torch.tensor([1.0, 0.2, 0.3, 0.4, 0.5]))
    return model


def test_a_weight_vector_becomes_an_image_with_the_label_columns_apart():
    grey, labels = weight_image(np.arange(64.0), (1, 8, 8), 10)
    assert grey.shape == (8, 8) and np.isnan(grey.flat[:10]).all() and grey.flat[10] == 10.0
    np.testing.assert_array_equal(labels, np.arange(10.0))
    colour, _ = weight_image(np.arange(3 * 32 * 32.0), (3, 32, 32), 10)
    assert colour.shape == (32, 32, 3) and colour[0, 10, 0] == 10.0 and colour[0, 0, 1] == 1024.0
    mnist, _ = weight_image(np.zeros(784), (1, 28, 28), 10)
    assert mnist.shape == (28, 28)
    with pytest.raises(ValueError, match="weights: 63 inputs do not fill an image of shape"):
        weight_image(np.zeros(63), (1, 8, 8), 10)


def test_weight_images_pick_the_largest_and_smallest_factors_and_costs(net, digits):
    costs = neuron_costs(net, digits)[0]
    images = weight_images(net, digits.image_shape, k=2, costs=costs)
    by_kind = {kind: [w.neuron for w in images if w.kind == kind] for kind in
               ("largest s", "smallest s", "largest cost", "smallest cost")}
    assert by_kind["largest s"] == [4, 1] and by_kind["smallest s"] == [2, 5]
    assert by_kind["largest cost"] == chosen_neurons(costs, 2)[0]
    first = images[0]
    np.testing.assert_array_equal(first.label_weights, net.layers[0].linear.weight[4, :10].detach().numpy())
    assert first.factor == pytest.approx(3.0) and first.cost == costs[4]
    assert len(weight_images(net, digits.image_shape, k=1)) == 2  # no costs: the factors only


def test_exciting_images_are_the_most_active_on_positive_data(net, digits):
    idx = exciting_images(net, digits, 1, [0, 3], k=3)
    h = net.layer_outputs(digits.x_test, digits.y_test)[1].detach()
    for row, j in zip(idx, (0, 3)):
        assert h[row, j].tolist() == sorted(h[:, j].tolist(), reverse=True)[:3]
    with pytest.raises(ValueError, match="neurons: 5 is out of range; allowed 0 to 4"):
        exciting_images(net, digits, 1, [5])
    with pytest.raises(ValueError, match="layer: 2 is out of range; allowed 0 to 1"):
        exciting_images(net, digits, 2, [0])


def test_class_preference_is_sorted_by_factor_with_the_mean_square_per_class(net, digits):
    pref = class_preference(net, digits, 0)
    assert pref.neurons.tolist() == [2, 5, 0, 3, 1, 4]
    np.testing.assert_allclose(pref.factors, [-1.0, 0.1, 0.5, 1.0, 2.0, 3.0], rtol=1e-6)
    h = net.layer_outputs(digits.x_test, digits.y_test)[0].detach().double()
    want = h[digits.y_test == 7, 5].square().mean().item()
    assert pref.mean_square[1, 7] == pytest.approx(want, rel=1e-6)
    assert pref.mean_square.shape == (6, 10) and ((pref.selectivity >= 0) & (pref.selectivity <= 1)).all()
    assert -1.0 <= pref.spearman <= 1.0


def test_selectivity_index_reads_zero_for_uniform_one_for_a_single_class():
    index = selectivity_index(np.array([[1.0, 1.0, 1.0], [0.0, 4.0, 0.0], [0.0, 0.0, 0.0], [3.0, 1.0, 1.0]]))
    np.testing.assert_allclose(index, [0.0, 1.0, 0.0, 0.5])


def test_figures_draw_the_preference_and_the_weight_images(net, digits):
    from fgff_core.viz.ablation import class_preference_figure, weight_images_figure

    fig = class_preference_figure(class_preference(net, digits, 1))
    assert fig.data[0].z.shape == (5, 10) and fig.data[0].y[0].startswith("1 (s=0.20)")
    images = weight_images(net, digits.image_shape, k=2)
    fig = weight_images_figure(images)
    assert len(fig.data) == 4 and fig.data[0].z.shape == (8, 8)
    assert fig.layout.annotations[0].text == "largest s: 4 (s=3.00)"
    assert [fig.layout[f"yaxis{'' if i == 1 else i}"].scaleanchor for i in range(1, 5)] == ["x", "x2", "x3", "x4"]
