"""Sample images with label slots (paper Fig. 2) and the per-label goodness bars."""

from __future__ import annotations

import numpy as np
import torch

from fgff_core.data import load_dataset
from fgff_core.engine.model import FFNet
from fgff_core.viz import samples
from fgff_core.viz.theme import ALGO_COLORS, NEGATIVE_COLOR, POSITIVE_COLOR


def test_label_slots_digits_and_28x28():
    assert samples.label_slot_pixels((1, 8, 8)) == [(0, 0, c) for c in range(8)] + [(0, 1, 0), (0, 1, 1)]
    assert samples.label_slot_pixels((1, 28, 28)) == [(0, 0, c) for c in range(10)]


def test_sample_pairs_embed_true_and_wrong_labels():
    ds = load_dataset("digits")
    pairs = samples.sample_pairs(ds.x_test, ds.y_test, ds.image_shape, label_value=1.0, n=6, seed=3)
    assert pairs.positive.shape == (6, 64)
    assert (pairs.labels != pairs.neg_labels).all()
    for i in range(6):
        assert pairs.positive[i, :10].argmax() == pairs.labels[i] and pairs.positive[i, :10].sum() == 1.0
        assert pairs.negative[i, :10].argmax() == pairs.neg_labels[i]
        np.testing.assert_array_equal(pairs.positive[i, 10:], ds.x_test[pairs.index[i], 10:].numpy())
    again = samples.sample_pairs(ds.x_test, ds.y_test, ds.image_shape, 1.0, n=6, seed=3)
    np.testing.assert_array_equal(pairs.index, again.index)


def test_samples_figure_panels_and_highlighted_slots():
    ds = load_dataset("digits")
    pairs = samples.sample_pairs(ds.x_train, ds.y_train, ds.image_shape, 1.0, n=4, seed=0)
    fig = samples.samples_figure(pairs)
    assert len(fig.data) == 8  # 4 positive + 4 negative panels
    assert len(fig.layout.shapes) == 8 * 10
    hot = [s for s in fig.layout.shapes if s.line.width == 3]
    assert len(hot) == 8
    assert {s.line.color for s in hot} == {POSITIVE_COLOR, NEGATIVE_COLOR}
    assert fig.layout.annotations[0].text == f"positive: label {pairs.labels[0]}"


def test_samples_figure_rgb():
    x = torch.randn(3, 3 * 32 * 32)
    pairs = samples.sample_pairs(x, torch.tensor([0, 1, 2]), (3, 32, 32), 1.0, n=3)
    fig = samples.samples_figure(pairs)
    assert fig.data[0].type == "image"


def test_label_goodness_figure_marks_prediction_and_true_label():
    torch.manual_seed(0)
    net = FFNet(64, (20,), 10)
    ds = load_dataset("digits")
    g_sig, g_raw = net.label_goodness(ds.x_test[:1])
    fig = samples.label_goodness_figure(g_sig[0].numpy(), g_raw[0].numpy(), true_label=int(ds.y_test[0]))
    assert len(fig.data) == 2
    assert fig.data[0].marker.color == ALGO_COLORS["fgff"]
    assert f"predicted {int(g_sig[0].argmax())}" in fig.layout.title.text
    assert f"{int(ds.y_test[0])} (true)" in list(fig.data[0].x)
    assert fig.layout.yaxis.title.text and fig.layout.xaxis.title.text
    ff = samples.label_goodness_figure(g_sig[0].numpy(), g_raw[0].numpy(), algo="ff")
    assert len(ff.data) == 1
