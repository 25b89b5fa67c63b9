"""Significance figures: epoch selection, sorting, colour scales centred at 1, animation frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plotly.colors import get_colorscale

from fgff_core.config import RunConfig
from fgff_core.engine.events import EpochMetrics
from fgff_core.engine.training import Trainer
from fgff_core.viz import significance as sv
from fgff_core.viz.theme import SIGNIFICANCE_COLORSCALE


def history_of(cfg: RunConfig) -> list[np.ndarray]:
    """A real run's significance snapshots, as JobManager.significance returns them."""
    per_layer: dict[int, list[np.ndarray]] = {}
    for ev in Trainer(cfg).run():
        if isinstance(ev, EpochMetrics):
            per_layer.setdefault(ev.layer, []).append(ev.significance)
    return [np.stack(per_layer[i]) for i in sorted(per_layer)]


@pytest.fixture(scope="module")
def history():
    return history_of(RunConfig(algo="fgff", dataset="digits", layers=(12, 8), epochs=5, eval_every=0))


def test_real_history_moves_away_from_one(history):
    assert [h.shape for h in history] == [(5, 12), (5, 8)]
    assert not np.allclose(history[0][-1], 1.0)  # FGFF trains the factors


def test_significance_at_epoch_and_partial_history():
    hist = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((0, 3))]
    rows = sv.significance_at(hist, 1)
    assert rows[0].tolist() == [1.0, 2.0] and rows[1] is None
    assert sv.significance_at(hist, None)[0].tolist() == [3.0, 4.0]
    assert sv.significance_at(hist, 99)[0].tolist() == [3.0, 4.0]  # latest when not reached yet
    assert sv.n_epochs(hist) == 2


def test_matrix_pads_and_sorts_with_neuron_ids():
    z, ids = sv.significance_matrix([np.array([0.5, 2.0, 1.0]), np.array([3.0])], sort=True)
    assert z[0].tolist() == [2.0, 1.0, 0.5] and ids[0].tolist() == [1, 2, 0]
    assert z[1, 0] == 3.0 and np.isnan(z[1, 1:]).all() and ids[1, 1] == -1


def test_colour_scales_symmetric_around_one():
    z = np.array([[0.5, 1.2], [1.0, 4.0]])
    vals, lo, hi, _ = sv.colour_values(z, "global")
    assert (lo, hi) == (-2.0, 4.0) and vals is z
    vals, lo, hi, _ = sv.colour_values(z, "per-layer")
    assert (lo, hi) == (0.0, 2.0)
    assert vals[0].tolist() == pytest.approx([0.0, 1.4]) and vals[1].tolist() == pytest.approx([1.0, 2.0])
    with pytest.raises(ValueError, match="scale"):
        sv.colour_values(z, "log")
    _, lo, hi, _ = sv.colour_values(np.ones((2, 3)), "global")  # FF: all factors 1
    assert (lo, hi) == (0.0, 2.0)


def test_heatmap_diverges_at_one_with_hover_values(history):
    fig = sv.significance_heatmap(history, epoch=3, scale="global", sort=True)
    hm = fig.data[0]
    assert hm.zmid == 1.0 and hm.zmin < 1 < hm.zmax and hm.zmax - 1 == pytest.approx(1 - hm.zmin)
    assert list(hm.y) == ["layer 1", "layer 2"]
    assert np.asarray(hm.z).shape == (2, 12)
    assert "epoch 3" in fig.layout.title.text and fig.layout.xaxis.title.text.startswith("neurons sorted")
    # the theme's diverging scale
    assert [c for _, c in hm.colorscale] == [c for _, c in get_colorscale(SIGNIFICANCE_COLORSCALE)]
    factors = np.asarray(hm.customdata)[0, :, 1]
    assert np.allclose(factors, np.sort(history[0][2])[::-1])
    # three colour-bar ticks, both ends and 1: five ran into each other on a two-layer net's short bar
    assert list(hm.colorbar.tickvals) == [hm.zmin, 1.0, hm.zmax] and hm.colorbar.ticktext[1] == "1"


def test_animation_frames_share_one_range(history):
    fig = sv.significance_animation(history, scale="global")
    assert [f.name for f in fig.frames] == ["1", "2", "3", "4", "5"]
    ranges = {(f.data[0].zmin, f.data[0].zmax) for f in fig.frames}
    assert len(ranges) == 1
    assert fig.layout.sliders[0].steps[-1].label == "5"
    assert sv.frame_epochs(200, 40)[0] == 1 and sv.frame_epochs(200, 40)[-1] == 200
    assert len(sv.frame_epochs(200, 40)) == 40


def test_histogram_and_activity_scatter(history):
    fig = sv.significance_histogram(history, epoch=5)
    assert [t.name for t in fig.data] == ["layer 1", "layer 2"]
    assert fig.layout.xaxis.title.text == "significance factor s"
    act = pd.DataFrame({"layer": [0, 0, 1], "neuron": [0, 1, 0], "significance": [1.1, 0.9, 1.0],
                        "pos_activity": [1.0, 0.5, 0.2], "neg_activity": [0.5, 0.6, 0.2],
                        "activity_diff": [0.5, -0.1, 0.0]})
    corr = pd.DataFrame({"layer": [0, 1], "spearman": [1.0, np.nan], "n": [2, 1]})
    fig = sv.activity_scatter(act, corr)
    assert len(fig.data) == 2
    titles = [a.text for a in fig.layout.annotations]
    assert "layer 1, ρ = 1.00" in titles and "layer 2" in titles
