"""Figures of the Learn page (teach mode). Data in, Plotly figure out; no Streamlit, no training here.

The numbers come from ``fgff_core.lesson``; colours from ``theme`` (positive data green, negative
purple, threshold dark grey, FF blue, FGFF red).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..format import percent
from ..lesson import ROLES, AccuracyBar, GoodnessDistribution, LayerView
from ..vocabulary import algo_label
from .samples import LABEL_SLOT_COLOR, label_slot_pixels
from .theme import NEGATIVE_COLOR, POSITIVE_COLOR, THRESHOLD_COLOR, algo_color, styled

ROLE_COLORS = {ROLES[0]: "#d62728", ROLES[1]: "#6baed6", ROLES[2]: "#08306b", ROLES[3]: "#bbbbbb"}


def _square_axes(fig: go.Figure) -> None:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                     scaleanchor="x", constrain="domain")


def positive_negative_figure(x_pos: np.ndarray, x_neg: np.ndarray, true_label: int, wrong_label: int,
                             image_shape: tuple[int, ...], n_classes: int = 10) -> go.Figure:
    """The same image twice, as the network receives it: with the true label (positive) and a wrong
    one (negative) written into the first ``n_classes`` inputs (label slots outlined, the written
    slot boxed in green or purple)."""
    _, h, w = image_shape
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=(f"positive: true label {true_label}", f"negative: wrong label {wrong_label}"))
    slots = label_slot_pixels(image_shape, n_classes)
    for col, (flat, label, color) in enumerate([(x_pos, true_label, POSITIVE_COLOR),
                                                (x_neg, wrong_label, NEGATIVE_COLOR)], start=1):
        img = np.asarray(flat, dtype=float).reshape(h, w)
        fig.add_trace(go.Heatmap(z=img, colorscale="gray", showscale=False, zmin=float(min(x_pos.min(), x_neg.min())),
                                 zmax=float(max(x_pos.max(), x_neg.max())),
                                 hovertemplate="row %{y}, col %{x}: %{z:.2f}<extra></extra>"), row=1, col=col)
        for k, (_, r, c) in enumerate(slots):
            hot = k == int(label)
            fig.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5, row=1, col=col,
                          line=dict(color=color if hot else LABEL_SLOT_COLOR, width=4 if hot else 1))
    _square_axes(fig)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    styled(fig).update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def activations_figure(view: LayerView) -> go.Figure:
    """Each neuron's contribution w_j h_j^2 to the goodness, for the positive and the negative input.

    The goodness is the mean of these bars (eq. 3; eq. 2 when every w_j is 1), drawn as a line for
    each, with the threshold between them.
    """
    pos = view.significance * view.h_pos ** 2
    neg = view.significance * view.h_neg ** 2
    neurons = np.arange(len(pos))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=neurons, y=pos, name="positive (true label)", marker_color=POSITIVE_COLOR,
                         hovertemplate="neuron %{x}: s·h² = %{y:.3f}<extra>positive</extra>"))
    fig.add_trace(go.Bar(x=neurons, y=neg, name="negative (wrong label)", marker_color=NEGATIVE_COLOR,
                         hovertemplate="neuron %{x}: s·h² = %{y:.3f}<extra>negative</extra>"))
    # The three lines are named in the legend, not by labels on the lines: close values (an untrained
    # layer has g_pos close to g_neg) would print the labels on top of each other.
    for value, color, text, dash in [(view.g_pos, POSITIVE_COLOR, f"g_pos = {view.g_pos:.3f}", "dot"),
                                     (view.g_neg, NEGATIVE_COLOR, f"g_neg = {view.g_neg:.3f}", "dot"),
                                     (view.threshold, THRESHOLD_COLOR, f"threshold = {view.threshold:g}", "dash")]:
        fig.add_hline(y=value, line=dict(color=color, dash=dash, width=2))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=text, hoverinfo="skip",
                                 line=dict(color=color, dash=dash, width=2)))
    styled(fig).update_layout(barmode="group", height=380, margin=dict(l=60, r=20, t=50, b=110),
                      legend=dict(orientation="h", y=-0.22, x=0, yanchor="top"),
                      title=dict(text=f"Layer {view.layer + 1}: each neuron's share of the goodness", x=0,
                                 xanchor="left", y=0.99))
    fig.update_xaxes(title_text="neuron", dtick=1 if len(pos) <= 40 else None)
    fig.update_yaxes(title_text="s · h² (goodness = mean of the bars)")
    return fig


def distributions_figure(dists: Sequence[GoodnessDistribution], threshold: float,
                         layer_titles: Sequence[str] | None = None, bins: int = 40) -> go.Figure:
    """Per layer, histograms of the goodness of positive and negative data with the threshold.

    As a layer learns, its green (positive) mass moves right of the threshold and its purple
    (negative) mass left of it.
    """
    n = len(dists)
    titles = list(layer_titles) if layer_titles else [f"layer {d.layer + 1}" for d in dists]
    # Two lines ("layer 1" over "waiting (untrained)"): on a phone, side-by-side titles on one line ran together.
    titles = [t.replace(": ", "<br>", 1) for t in titles]
    fig = make_subplots(rows=1, cols=n, subplot_titles=titles, horizontal_spacing=0.1)  # room for the counts
    for col, d in enumerate(dists, start=1):
        hi = float(max(np.quantile(d.g_pos, 0.99), np.quantile(d.g_neg, 0.99), threshold * 1.5))
        size = hi / bins if hi > 0 else 1.0
        for values, name, color in [(d.g_pos, "positive data", POSITIVE_COLOR),
                                    (d.g_neg, "negative data", NEGATIVE_COLOR)]:
            fig.add_trace(go.Histogram(x=np.clip(values, None, hi), name=name, marker_color=color, opacity=0.6,
                                       xbins=dict(start=0, end=hi + size, size=size), legendgroup=name,
                                       showlegend=col == 1,
                                       hovertemplate="goodness %{x}<br>%{y} samples<extra>" + name + "</extra>"),
                          row=1, col=col)
        fig.add_vline(x=threshold, line=dict(color=THRESHOLD_COLOR, dash="dash", width=2), row=1, col=col)
        # The whole binned range (hi is at least 1.5 x the threshold): the threshold line never sits on the edge,
        # where the next layer's tick labels ran into it on a phone.
        fig.update_xaxes(title_text="goodness", range=[0, hi + size], row=1, col=col)
    fig.update_yaxes(tickformat="~s")  # 1000 -> "1k": short tick labels
    fig.update_yaxes(title_text="samples", row=1, col=1)
    styled(fig).update_layout(barmode="overlay", height=380, margin=dict(l=60, r=20, t=80, b=100),
                      legend=dict(orientation="h", y=-0.25, x=0, yanchor="top"))  # below: clear of the titles
    return fig


def training_curves_figure(history: pd.DataFrame, evals: pd.DataFrame, threshold: float,
                           epochs_per_layer: int, n_layers: int) -> go.Figure:
    """Mean positive and negative goodness per layer-epoch (left) and test accuracy (right).

    The x axis counts layer-epochs of the greedy schedule; dotted lines mark where a layer ends
    and the next starts.
    """
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.1,
                        # two lines each: on one line they ran together on a phone
                        subplot_titles=("mean goodness of<br>the layer being trained",
                                        "test accuracy<br>(eval subset)"))
    total = epochs_per_layer * n_layers
    if not history.empty:
        for col, name, color in [("g_pos", "positive", POSITIVE_COLOR), ("g_neg", "negative", NEGATIVE_COLOR)]:
            fig.add_trace(go.Scatter(x=history["step"], y=history[col], mode="lines", name=f"{name} goodness",
                                     line=dict(color=color)), row=1, col=1)
    if not evals.empty:
        fig.add_trace(go.Scatter(x=evals["step"], y=evals["test_acc"] * 100, mode="lines+markers",
                                 name="test accuracy", line=dict(color="#333333"), marker=dict(size=4)), row=1, col=2)
    fig.add_hline(y=threshold, line=dict(color=THRESHOLD_COLOR, dash="dash"), row=1, col=1)
    for k in range(1, n_layers):
        for col in (1, 2):
            fig.add_vline(x=k * epochs_per_layer + 0.5, line=dict(color="#999999", dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text="layer-epoch (greedy: layer 1, then layer 2, ...)", range=[0, total + 1], row=1, col=1)
    fig.update_xaxes(title_text="layer-epoch", range=[0, total + 1], row=1, col=2)
    fig.update_yaxes(title_text="goodness", row=1, col=1)
    fig.update_yaxes(title_text="%", range=[0, 100], row=1, col=2)
    styled(fig).update_layout(height=340, margin=dict(l=60, r=20, t=80, b=50),
                      legend=dict(orientation="h", y=-0.3, x=0))
    return fig


def factors_figure(roles: pd.DataFrame, algo: str) -> go.Figure:
    """Each layer's significance factors, neurons sorted by factor, coloured by role (section III.E).

    Hover shows the neuron's mean squared activity on positive minus negative data.
    """
    layers = sorted(roles["layer"].unique())
    fig = make_subplots(rows=1, cols=len(layers), subplot_titles=[f"layer {i + 1}" for i in layers],
                        horizontal_spacing=0.08)
    shown: set[str] = set()
    for col, layer in enumerate(layers, start=1):
        part = roles[roles["layer"] == layer].sort_values("significance", ascending=False).reset_index(drop=True)
        for role in ROLES:
            sel = part[part["role"] == role]
            if sel.empty:
                continue
            fig.add_trace(go.Bar(x=sel.index, y=sel["significance"], name=role, marker_color=ROLE_COLORS[role],
                                 legendgroup=role, showlegend=role not in shown,
                                 customdata=np.stack([sel["neuron"], sel["activity_diff"]], axis=1),
                                 hovertemplate="neuron %{customdata[0]}: s = %{y:.3f}<br>pos - neg activity "
                                               "%{customdata[1]:.3f}<extra>" + role + "</extra>"),
                          row=1, col=col)
            shown.add(role)
        fig.add_hline(y=1.0, line=dict(color=THRESHOLD_COLOR, dash="dash", width=1), row=1, col=col)
        fig.add_hline(y=0.0, line=dict(color="#000000", width=1), row=1, col=col)
        fig.update_xaxes(title_text="neurons, sorted by factor", showticklabels=False, row=1, col=col)
    fig.update_yaxes(title_text="factor s", row=1, col=1)
    styled(fig).update_layout(height=320, margin=dict(l=60, r=20, t=70, b=50), bargap=0.1,
                      legend=dict(orientation="h", y=-0.25, x=0),
                      title=dict(text=f"{algo_label(algo)}: significance factor of each neuron",
                                 x=0, xanchor="left"))
    return fig


def accuracy_figure(bars: Sequence[AccuracyBar]) -> go.Figure:
    """Test accuracy bars, each in its algorithm's colour."""
    labels = [b.label for b in bars]
    values = [100 * b.accuracy for b in bars]
    colors = [algo_color(b.algo) for b in bars]
    fig = go.Figure(go.Bar(x=labels, y=values, marker_color=colors, text=[percent(b.accuracy, 1) for b in bars],
                           textposition="outside", hovertemplate="%{x}: %{y:.2f} %<extra></extra>"))
    styled(fig).update_layout(height=300, margin=dict(l=60, r=20, t=50, b=40),
                      title=dict(text="Test accuracy (whole digits test set)", x=0, xanchor="left"))
    fig.update_yaxes(title_text="%", range=[0, 105])
    return fig


def confusion_figure(matrix: np.ndarray, title: str = "Confusion matrix on the test set") -> go.Figure:
    """Rows: true label, columns: predicted label; counts written in the cells."""
    m = np.asarray(matrix)
    labels = [str(k) for k in range(m.shape[0])]
    fig = go.Figure(go.Heatmap(z=m, x=labels, y=labels, colorscale="Blues", showscale=False, text=m,
                               texttemplate="%{text}",
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_xaxes(title_text="predicted label", side="bottom", type="category")
    fig.update_yaxes(title_text="true label", autorange="reversed", type="category", scaleanchor="x")
    acc = np.trace(m) / max(m.sum(), 1)
    styled(fig).update_layout(height=420, margin=dict(l=60, r=20, t=50, b=50),
                      title=dict(text=f"{title}: {percent(acc, 1)} correct", x=0, xanchor="left"))
    return fig


def pixels_figure(pixels: np.ndarray, title: str) -> go.Figure:
    """An 8x8 digits-style image (0..16) as the network receives it, before normalisation."""
    fig = go.Figure(go.Heatmap(z=np.asarray(pixels), colorscale="gray", zmin=0, zmax=16, showscale=False,
                               hovertemplate="row %{y}, col %{x}: %{z:.1f}<extra></extra>"))
    _square_axes(fig)
    styled(fig).update_layout(height=260, margin=dict(l=10, r=10, t=40, b=10),
                      title=dict(text=title, x=0, xanchor="left"))
    return fig
