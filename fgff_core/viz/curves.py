"""Training curves as Plotly figures: loss, goodness against the threshold, accuracy.

Each builder takes the metrics DataFrame of a run (``RunStore.metrics``: one row per layer and
epoch with the columns named in ``fgff_core.engine.events``) and returns a ``go.Figure``; no Streamlit
here, so the figures are unit-tested and reusable in notebooks. Colours come from ``theme``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..format import percent
from ..vocabulary import algo_label, has_goodness, trains_factors, trains_locally
from .theme import LAYER_COLORS, LAYER_SYMBOLS, NEGATIVE_COLOR, POSITIVE_COLOR, THRESHOLD_COLOR, algo_color, styled

EPOCH_AXIS = "epoch (within layer)"
GOODNESS_AXIS = "goodness (mean of s·h², batch mean)"
ACCURACY_AXIS = "accuracy (%)"
LOSS_AXIS = "loss (batch mean)"
CHART_HEIGHT = 360


def _layout(fig: go.Figure, title: str, height: int = CHART_HEIGHT) -> go.Figure:
    styled(fig).update_layout(title=dict(text=title, x=0.0, xanchor="left"), height=height,
                      margin=dict(l=60, r=20, t=60, b=90), legend=dict(orientation="h", y=-0.3, yanchor="top"),
                      hovermode="x unified")
    return fig


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#888888"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title)


def _layers(metrics: pd.DataFrame) -> list[int]:
    return sorted(int(v) for v in metrics["layer"].dropna().unique())


def _has(metrics: pd.DataFrame, column: str) -> bool:
    return column in metrics and metrics[column].notna().any()


def _layer_opacity(layer: int, n_layers: int) -> float:
    """Later layers get lighter by opacity, so the algorithm keeps its colour."""
    return 1.0 - 0.5 * (layer / max(1, n_layers - 1)) if n_layers > 1 else 1.0


def loss_figure(metrics: pd.DataFrame, algo: str = "fgff") -> go.Figure:
    """Layer loss per epoch, one line per layer (x: epoch within the layer for greedy training)."""
    title = f"{algo_label(algo)} loss per layer"
    if metrics is None or metrics.empty or not _has(metrics, "loss"):
        return _empty(title, "No epochs yet")
    fig = go.Figure()
    layers = _layers(metrics)
    for layer in layers:
        rows = metrics[metrics["layer"] == layer]
        opacity = _layer_opacity(layer, len(layers))
        name = f"layer {layer + 1}" if trains_locally(algo) else "network"
        fig.add_trace(go.Scatter(x=rows["epoch"], y=rows["loss"], mode="lines", name=name,
                                 line=dict(color=algo_color(algo), width=2), opacity=opacity))
    fig.update_xaxes(title_text=EPOCH_AXIS if trains_locally(algo) else "epoch")
    fig.update_yaxes(title_text=LOSS_AXIS)
    return _layout(fig, title)


def goodness_figure(metrics: pd.DataFrame, threshold: float, algo: str = "fgff") -> go.Figure:
    """Positive and negative goodness per layer against the threshold; one panel per layer.

    Solid lines are the goodness the loss sees (eq. 3, with significance); dashed lines are the
    same activations without significance (eq. 2). For FF the two coincide.
    """
    title = f"{algo_label(algo)} goodness vs threshold {threshold:g}"
    if not has_goodness(algo):
        return _empty(title, f"{algo_label(algo)} has no goodness")
    if metrics is None or metrics.empty or not _has(metrics, "g_pos"):
        return _empty(title, "No epochs yet")
    layers = _layers(metrics)
    fig = make_subplots(rows=1, cols=len(layers), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"layer {i + 1}" for i in layers])
    show_raw = trains_factors(algo) and _has(metrics, "g_pos_no_significance")
    series = [("g_pos", "positive", POSITIVE_COLOR, "solid"), ("g_neg", "negative", NEGATIVE_COLOR, "solid")]
    if show_raw:
        series += [("g_pos_no_significance", "positive, no significance", POSITIVE_COLOR, "dot"),
                   ("g_neg_no_significance", "negative, no significance", NEGATIVE_COLOR, "dot")]
    for col, layer in enumerate(layers, start=1):
        rows = metrics[metrics["layer"] == layer]
        for column, name, color, dash in series:
            # Positive lines are wider and drawn first: where the two coincide (early in a layer's
            # training) the positive one still shows as a halo around the negative one.
            width = 4 if column.startswith("g_pos") else 2
            fig.add_trace(go.Scatter(x=rows["epoch"], y=rows[column], mode="lines", name=name, legendgroup=name,
                                     showlegend=col == 1, line=dict(color=color, dash=dash, width=width)),
                          row=1, col=col)
        fig.add_hline(y=threshold, line=dict(color=THRESHOLD_COLOR, dash="dash", width=1), row=1, col=col)
        fig.update_xaxes(title_text=EPOCH_AXIS, row=1, col=col)
    # One legend entry for the threshold line (hlines have none).
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"threshold ({threshold:g})",
                             line=dict(color=THRESHOLD_COLOR, dash="dash", width=1)), row=1, col=1)
    fig.update_yaxes(title_text=GOODNESS_AXIS, row=1, col=1)
    return _layout(fig, title)


ACCURACY_SERIES = (
    # column, label, dash, faded
    ("test_acc", "test", "solid", False),
    ("train_acc", "train", "dot", False),
    ("test_acc_no_significance", "test, no significance", "solid", True),
    ("train_acc_no_significance", "train, no significance", "dot", True),
)


def accuracy_figure(metrics: pd.DataFrame, algo: str = "fgff") -> go.Figure:
    """Train and test accuracy (%) at each evaluation; for FGFF also without significance (eq. 2 rule).

    x is the running epoch count over all layers (``step``), so greedy layers follow each other.
    """
    title = f"{algo_label(algo)} accuracy"
    if metrics is None or metrics.empty or not _has(metrics, "test_acc"):
        return _empty(title, "No evaluation yet")
    evals = metrics.dropna(subset=["test_acc"]).sort_values("step")
    fig = go.Figure()
    for column, name, dash, faded in ACCURACY_SERIES:
        if faded and not trains_factors(algo):
            continue  # FF's significance is frozen at 1 and BP has none: the curves would repeat
        if not _has(evals, column):
            continue
        fig.add_trace(go.Scatter(x=evals["step"], y=100.0 * evals[column], mode="lines+markers", name=name,
                                 line=dict(color=algo_color("ff") if faded else algo_color(algo), dash=dash,
                                           width=2), marker=dict(size=4), opacity=0.6 if faded else 1.0))
    fig.update_xaxes(title_text="epoch (all layers, in training order)")
    fig.update_yaxes(title_text=ACCURACY_AXIS, range=[0, 101])
    _add_layer_boundaries(fig, metrics)
    return _layout(fig, title)


def has_layer_accuracy(metrics: pd.DataFrame | None) -> bool:
    """Whether the run's evaluations hold each layer's own accuracy (not BP, not runs stored before it
    was measured, and at least one evaluation done)."""
    return metrics is not None and not metrics.empty and _has(metrics, "layer_test_acc")


def layer_accuracy_figure(metrics: pd.DataFrame, algo: str = "fgff", schedule: str = "greedy") -> go.Figure | None:
    """Each layer's own test (solid) and train (dotted) accuracy, in %: the prediction rule with that
    layer's goodness alone (MF: that layer's own class scores). None when the run has no such values
    (``has_layer_accuracy``), so a page draws no empty chart for BP or an old run.

    Greedy: a layer is measured while it trains, so x is the epoch within the layer and the lines
    show how fast each layer learns; simultaneous: every layer at each evaluation, x the epoch of the
    run, with the whole network's test accuracy (grey) for reference.
    """
    if not has_layer_accuracy(metrics):
        return None
    evals = metrics.dropna(subset=["layer_test_acc"]).sort_values(["layer", "epoch"])
    fig = go.Figure()
    for layer in _layers(evals):
        rows = evals[evals["layer"] == layer]
        name = f"layer {layer + 1}"
        # Five layers of one run all land in 90-100 %: each its own colour and marker, so the lines tell apart.
        color, symbol = LAYER_COLORS[layer % len(LAYER_COLORS)], LAYER_SYMBOLS[layer % len(LAYER_SYMBOLS)]
        for column, split, dash in (("layer_test_acc", "test", "solid"), ("layer_train_acc", "train", "dot")):
            if not _has(rows, column):
                continue
            fig.add_trace(go.Scatter(x=rows["epoch"], y=100.0 * rows[column], mode="lines+markers",
                                     name=f"{name}, {split}", legendgroup=name,
                                     line=dict(color=color, dash=dash, width=2), marker=dict(size=6, symbol=symbol)))
    if schedule == "simultaneous" and _has(evals, "test_acc"):
        network = evals.groupby("epoch", as_index=False)["test_acc"].last()  # one value per evaluation
        fig.add_trace(go.Scatter(x=network["epoch"], y=100.0 * network["test_acc"], mode="lines",
                                 name="network (the prediction rule), test",
                                 line=dict(color="#999999", width=1, dash="dash")))
    fig.update_xaxes(title_text=EPOCH_AXIS if schedule == "greedy" else "epoch")
    fig.update_yaxes(title_text=ACCURACY_AXIS, range=[0, 101])
    return _layout(fig, f"{algo_label(algo)} accuracy of each layer on its own")


def _add_layer_boundaries(fig: go.Figure, metrics: pd.DataFrame) -> None:
    """Vertical lines where the greedy schedule moves to the next layer."""
    if "layer" not in metrics or metrics["layer"].nunique() < 2:
        return
    starts = metrics.groupby("layer")["step"].min().sort_index()
    if starts.is_monotonic_increasing and (metrics.groupby("layer")["step"].max().shift(1).dropna()
                                           < starts.iloc[1:].values).all():
        for layer, step in starts.iloc[1:].items():
            fig.add_vline(x=float(step) - 0.5, line=dict(color="#bbbbbb", width=1, dash="dot"))
            fig.add_annotation(x=float(step), y=1.0, yref="paper", text=f"layer {int(layer) + 1}",
                               showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=10))


def final_accuracy_table(run: dict) -> pd.DataFrame:
    """Final accuracies of a finished run as display strings ("94.00", "–"): for FGFF with and without
    significance; for FF and BP one column (their "without significance" would repeat it)."""
    rows = []
    with_sig = trains_factors(str(run.get("algo")))
    for split in ("train", "test"):
        row = {"split": split}
        if with_sig:
            row["with significance (%)"] = percent(run.get(f"{split}_acc"), unit="")
            row["without significance (%)"] = percent(run.get(f"{split}_acc_no_significance"), unit="")
        else:
            row["accuracy (%)"] = percent(run.get(f"{split}_acc"), unit="")
        rows.append(row)
    return pd.DataFrame(rows).set_index("split")


class LiveFigures(NamedTuple):
    """The Train page's live charts of one run."""

    goodness: go.Figure
    loss: go.Figure
    accuracy: go.Figure
    layer_accuracy: go.Figure | None  # None: the run has no per-layer accuracy


_LIVE_CACHE: OrderedDict[tuple, LiveFigures] = OrderedDict()
_LIVE_CACHE_SIZE = 64
_LIVE_LOCK = threading.Lock()


def live_figures(metrics: pd.DataFrame, threshold: float, algo: str, schedule: str) -> LiveFigures:
    """The live charts for ``metrics``, built again only when the metrics changed.

    The Train page redraws a running run's charts every 1-5 s (``launch.live_refresh``), not always in step
    with its epochs, and building the four figures took ~0.4 s of the server's CPU (measured on a 2x500 MNIST
    run with 30 metric rows): on a 2-core machine that slowed the training the page shows. Identical metrics
    (by a hash of their values) give the same figures, for every viewer of the run. Treat the figures as
    read-only.
    """
    key = (int(pd.util.hash_pandas_object(metrics, index=True).sum()), len(metrics), tuple(metrics.columns),
           float(threshold), algo, schedule)
    with _LIVE_LOCK:  # Streamlit runs each viewer's session in its own thread
        cached = _LIVE_CACHE.get(key)
        if cached is not None:
            _LIVE_CACHE.move_to_end(key)
            return cached
    figures = LiveFigures(goodness_figure(metrics, threshold, algo), loss_figure(metrics, algo),
                          accuracy_figure(metrics, algo), layer_accuracy_figure(metrics, algo, schedule))
    with _LIVE_LOCK:
        _LIVE_CACHE[key] = figures
        while len(_LIVE_CACHE) > _LIVE_CACHE_SIZE:
            _LIVE_CACHE.popitem(last=False)
    return figures
