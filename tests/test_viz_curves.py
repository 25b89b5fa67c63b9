"""Figure builders for the training curves: right traces, threshold line, axis titles, FF/FGFF colours."""

from __future__ import annotations

import pandas as pd
import pytest

from fgff_core.config import RunConfig
from fgff_core.engine.events import EpochMetrics, EvalMetrics
from fgff_core.engine.training import Trainer
from fgff_core.viz import curves
from fgff_core.viz.compare import curves_figure
from fgff_core.viz.theme import ALGO_COLORS, NEGATIVE_COLOR, POSITIVE_COLOR, TICK_FONT


def metrics_frame(algo: str, epochs: int = 6, layers=(20, 20), **extra) -> pd.DataFrame:
    """A real run's metrics in the JobManager.metrics layout: epoch rows joined with eval rows."""
    cfg = RunConfig(algo=algo, dataset="digits", layers=layers, epochs=epochs, eval_every=2, eval_subset=200,
                    **extra)
    rows: dict[tuple[int, int], dict] = {}
    for ev in Trainer(cfg).run():
        if isinstance(ev, EpochMetrics):
            d = ev.to_dict()
            d.pop("event"), d.pop("significance")
            rows[(ev.layer, ev.epoch)] = d
        elif isinstance(ev, EvalMetrics):
            d = ev.to_dict()
            d.pop("event")
            rows[(ev.layer, ev.epoch)].update(d)
    return pd.DataFrame(list(rows.values())).astype(float, errors="ignore")


@pytest.fixture(scope="module")
def fgff_metrics() -> pd.DataFrame:
    return metrics_frame("fgff")


def test_loss_figure_one_line_per_layer_in_algo_colour(fgff_metrics):
    fig = curves.loss_figure(fgff_metrics, "fgff")
    assert [t.name for t in fig.data] == ["layer 1", "layer 2"]
    assert {t.line.color for t in fig.data} == {ALGO_COLORS["fgff"]}
    assert len(fig.data[0].x) == 6
    assert fig.layout.yaxis.title.text == curves.LOSS_AXIS
    assert "FGFF" in fig.layout.title.text


def test_goodness_figure_has_threshold_and_raw_series_for_fgff(fgff_metrics):
    fig = curves.goodness_figure(fgff_metrics, threshold=2.0, algo="fgff")
    names = {t.name for t in fig.data}
    assert {"positive", "negative", "positive, no significance", "negative, no significance",
            "threshold (2)"} <= names
    hlines = [s for s in fig.layout.shapes if s.y0 == s.y1 == 2.0]
    assert len(hlines) == 2  # one per layer panel
    colors = {t.name: t.line.color for t in fig.data}
    assert colors["positive"] == POSITIVE_COLOR and colors["negative"] == NEGATIVE_COLOR
    assert fig.layout.yaxis.title.text == curves.GOODNESS_AXIS
    assert fig.layout.xaxis.title.text == curves.EPOCH_AXIS


def test_goodness_figure_ff_has_no_raw_series():
    fig = curves.goodness_figure(metrics_frame("ff", epochs=3, layers=(10,)), threshold=2.0, algo="ff")
    assert not any("no significance" in (t.name or "") for t in fig.data)


def test_accuracy_figure_percent_and_eval_points_only(fgff_metrics):
    fig = curves.accuracy_figure(fgff_metrics, "fgff")
    by_name = {t.name: t for t in fig.data}
    assert {"test", "train", "test, no significance", "train, no significance"} == set(by_name)
    evaluated = fgff_metrics.dropna(subset=["test_acc"])
    assert len(by_name["test"].y) == len(evaluated)
    assert max(by_name["test"].y) <= 100.0 and max(by_name["test"].y) > 1.0  # percent, not a fraction
    assert by_name["test"].line.color == ALGO_COLORS["fgff"]
    assert fig.layout.yaxis.title.text == curves.ACCURACY_AXIS
    assert any(a.text == "layer 2" for a in fig.layout.annotations)  # greedy layer boundary


def test_layer_accuracy_greedy_one_test_and_train_line_per_layer_over_its_own_epochs(fgff_metrics):
    fig = curves.layer_accuracy_figure(fgff_metrics, "fgff", "greedy")
    assert [t.name for t in fig.data] == ["layer 1, test", "layer 1, train", "layer 2, test", "layer 2, train"]
    layer2 = fgff_metrics[(fgff_metrics["layer"] == 1) & fgff_metrics["layer_test_acc"].notna()]
    assert list(fig.data[2].x) == [2, 4, 6]  # each layer measured while it trains, x within the layer
    assert list(fig.data[2].y) == pytest.approx(list(100.0 * layer2["layer_test_acc"]))
    assert fig.layout.xaxis.title.text == curves.EPOCH_AXIS
    # Issue 39 item 6: five same-blue lines in 90-100 %; each layer its own colour and marker, test and train alike.
    colors = [(t.line.color, t.marker.symbol) for t in fig.data]
    assert colors[0] == colors[1] and colors[2] == colors[3] and colors[0][0] != colors[2][0] != ALGO_COLORS["fgff"]
    assert colors[0][1] != colors[2][1]


def test_every_axis_has_readable_ticks(fgff_metrics):
    """Issue 39 item 6: ticks were 12 px in a light grey; ``theme.styled`` sets 13 px, dark, on every axis."""
    fig = curves.goodness_figure(fgff_metrics, 2.0, "fgff")  # one subplot per layer: xaxis, xaxis2
    axes = [fig.layout[a] for a in fig.layout if a.startswith(("xaxis", "yaxis"))]
    assert len(axes) == 4
    for axis in axes:
        assert axis.tickfont.size >= 13 and axis.tickfont.color == TICK_FONT["color"]
    # An axis title given as a string after styling must not drop its font (``xaxis_title=`` replaced it).
    agg = pd.DataFrame({"group": ["FF"] * 2, "step": [1, 2], "layer": [0, 0], "epoch": [1, 2], "mean": [0.5, 0.6],
                        "std": [0.0] * 2, "min": [0.5, 0.6], "max": [0.5, 0.6], "n": [1, 1]})
    fig = curves_figure(agg, "test_acc")
    assert fig.layout.xaxis.title.font.size >= 14 and fig.layout.yaxis.title.font.size >= 14


def test_layer_accuracy_simultaneous_adds_the_network_for_reference():
    metrics = metrics_frame("ff", schedule="simultaneous")
    fig = curves.layer_accuracy_figure(metrics, "ff", "simultaneous")
    names = [t.name for t in fig.data]
    assert names[:4] == ["layer 1, test", "layer 1, train", "layer 2, test", "layer 2, train"]
    network = fig.data[-1]
    assert network.name.startswith("network") and list(network.x) == [2, 4, 6]
    evals = metrics.dropna(subset=["test_acc"])
    assert list(network.y) == pytest.approx(list(100.0 * evals.groupby("epoch")["test_acc"].last()))
    assert fig.layout.xaxis.title.text == "epoch"


def test_layer_accuracy_is_not_drawn_without_per_layer_values(fgff_metrics):
    """BP, a run stored before per-layer accuracy existed, or no evaluation yet: no (empty) chart."""
    old = fgff_metrics.assign(layer_test_acc=float("nan"), layer_train_acc=float("nan"))
    assert not curves.has_layer_accuracy(old) and curves.layer_accuracy_figure(old) is None
    assert curves.layer_accuracy_figure(fgff_metrics.drop(columns=["layer_test_acc", "layer_train_acc"])) is None
    assert curves.layer_accuracy_figure(metrics_frame("bp", epochs=2, layers=(8,)), "bp") is None
    assert curves.layer_accuracy_figure(pd.DataFrame()) is None and curves.layer_accuracy_figure(None) is None
    assert curves.has_layer_accuracy(fgff_metrics)


def test_bp_figures():
    m = metrics_frame("bp", epochs=2, layers=(16,))
    assert curves.loss_figure(m, "bp").data[0].name == "network"
    assert len(curves.goodness_figure(m, 2.0, "bp").data) == 0  # message, no fake curves
    names = {t.name for t in curves.accuracy_figure(m, "bp").data}
    assert names == {"test", "train"}


@pytest.mark.parametrize("frame", [pd.DataFrame(), None])
def test_empty_metrics_give_a_message_not_an_error(frame):
    for fig in (curves.loss_figure(frame), curves.goodness_figure(frame, 2.0), curves.accuracy_figure(frame)):
        assert len(fig.data) == 0 and fig.layout.annotations[0].text


def test_final_accuracy_table():
    table = curves.final_accuracy_table({"algo": "fgff", "test_acc": 0.9512, "test_acc_no_significance": 0.9,
                                         "train_acc": 1.0, "train_acc_no_significance": float("nan")})
    assert table.loc["test", "with significance (%)"] == "95.12"
    assert table.loc["test", "without significance (%)"] == "90.00"
    assert table.loc["train", "with significance (%)"] == "100.00"
    assert table.loc["train", "without significance (%)"] == "–"
    assert curves.final_accuracy_table({"algo": "fgff"}).loc["test", "with significance (%)"] == "–"
    # FF's factors stay at 1: no "without significance" column repeating the other (issue 15 case 9)
    ff = curves.final_accuracy_table({"algo": "ff", "test_acc": 0.9, "test_acc_no_significance": 0.9})
    assert list(ff.columns) == ["accuracy (%)"] and ff.loc["test", "accuracy (%)"] == "90.00"


def test_live_figures_are_built_again_only_when_the_metrics_change(fgff_metrics):
    first = curves.live_figures(fgff_metrics, 2.0, "fgff", "greedy")
    assert curves.live_figures(fgff_metrics.copy(), 2.0, "fgff", "greedy") is first  # same values: reused
    assert first.goodness.to_json() == curves.goodness_figure(fgff_metrics, 2.0, "fgff").to_json()
    assert first.accuracy.to_json() == curves.accuracy_figure(fgff_metrics, "fgff").to_json()
    more = fgff_metrics.iloc[:-1]  # an epoch fewer: other figures
    assert curves.live_figures(more, 2.0, "fgff", "greedy") is not first
    changed = fgff_metrics.copy()
    changed.loc[changed.index[-1], "loss"] += 1.0  # same length, another value
    assert curves.live_figures(changed, 2.0, "fgff", "greedy").loss.to_json() != first.loss.to_json()
    assert curves.live_figures(fgff_metrics, 1.0, "fgff", "greedy") is not first  # another threshold
