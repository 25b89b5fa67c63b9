"""Figures of the Significance page: the significance matrix (layers x neurons) over training.

Factors start at 1 (footnote 1 of the paper) and can go below 0, so the colour scale diverges
around 1 (``zmid=1``): red above 1, blue below, white at 1. Layers are shown 1-based.

The history of a run is ``history[layer]`` = array (epochs, neurons): the layer's factors after each
of its epochs (``RunStore.significance``). With the greedy schedule, layer 2's epoch 1 comes after
all of layer 1's epochs, so "epoch e" means "each layer after its e-th epoch".
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..config.values import check_choice
from .theme import NEGATIVE_COLOR, POSITIVE_COLOR, SIGNIFICANCE_COLORSCALE, styled

SCALES = ("global", "per-layer")
# Colour-bar titles in words (the formula of the per-layer scale is in colour_values' docstring).
GLOBAL_SCALE_TITLE = "significance<br>factor"
PER_LAYER_SCALE_TITLE = "factor, spread<br>per layer<br>(1 = unchanged)"
MAX_FRAMES = 40
FLAT = 1e-6  # largest |s - 1| below which the factors count as all equal to 1
_LAYER_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def n_epochs(history: Sequence[np.ndarray]) -> int:
    """The most epochs any layer has recorded (0 for an empty history)."""
    return max((len(h) for h in history), default=0)


def significance_at(history: Sequence[np.ndarray], epoch: int | None = None) -> list[np.ndarray | None]:
    """Each layer's factors after its ``epoch``-th epoch (1-based; None = latest).

    A layer that has not reached that epoch yet (a live greedy run) gives its latest snapshot, or
    None when it has not started.
    """
    out: list[np.ndarray | None] = []
    for h in history:
        h = np.asarray(h)
        if h.ndim != 2 or len(h) == 0:
            out.append(None)
            continue
        e = len(h) if epoch is None else min(max(int(epoch), 1), len(h))
        out.append(h[e - 1])
    return out


def significance_matrix(rows: Sequence[np.ndarray | None], sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(values, neuron ids), both (layers, max width), padded with NaN / -1.

    ``sort``: each layer's neurons in decreasing order of factor (the column then is a rank, the
    neuron id travels along for the hover text).
    """
    width = max((len(r) for r in rows if r is not None), default=0)
    z = np.full((len(rows), width), np.nan)
    ids = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        if r is None:
            continue
        r = np.asarray(r, dtype=float)
        order = np.argsort(-r, kind="stable") if sort else np.arange(len(r))
        z[i, :len(r)] = r[order]
        ids[i, :len(r)] = order
    return z, ids


def colour_values(z: np.ndarray, scale: str = "global") -> tuple[np.ndarray, float, float, str]:
    """What the heatmap colours: (values, zmin, zmax, colourbar title), symmetric around 1.

    ``global``: the factors themselves, one range for all layers. ``per-layer``: each layer's
    deviation from 1 divided by that layer's largest deviation, so that a layer with small
    factors still shows its pattern (hover text keeps the real values).
    """
    check_choice("scale", scale, SCALES)
    dev = z - 1.0
    if scale == "global":
        m = float(np.nanmax(np.abs(dev))) if np.isfinite(dev).any() else 0.0
        m = m if m > FLAT else 1.0  # all factors at 1 (FF): a plain 0..2 range, not one of +-1e-9
        return z, 1.0 - m, 1.0 + m, GLOBAL_SCALE_TITLE
    with warnings.catch_warnings():  # a layer not started yet is all NaN: keep it NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmax(np.abs(dev), axis=1, keepdims=True) if dev.size else np.ones((len(z), 1))
    m = np.where(np.isfinite(m) & (m > 0), m, 1.0)
    return 1.0 + dev / m, 0.0, 2.0, PER_LAYER_SCALE_TITLE


def _heatmap_trace(rows: Sequence[np.ndarray | None], scale: str, sort: bool) -> go.Heatmap:
    z, ids = significance_matrix(rows, sort)
    colour, zmin, zmax, cbar = colour_values(z, scale)
    custom = np.dstack([np.where(ids >= 0, ids, np.nan), z])
    layer_names = [f"layer {i + 1}" for i in range(len(rows))]
    x_name = "rank" if sort else "neuron"
    return go.Heatmap(z=colour, x=np.arange(z.shape[1]), y=layer_names, customdata=custom,
                      colorscale=SIGNIFICANCE_COLORSCALE, zmid=1.0, zmin=zmin, zmax=zmax,
                      # Three ticks, both ends and 1 (white, the initial value): the bar of a two-layer net is
                      # short, and Plotly's five ticks of 13 px ran into each other there.
                      colorbar=dict(title=dict(text=cbar), tickvals=[zmin, 1.0, zmax],
                                    ticktext=[f"{v:.3g}" for v in (zmin, 1.0, zmax)]),
                      hovertemplate=(f"%{{y}}, {x_name} %{{x}}<br>neuron %{{customdata[0]}}<br>"
                                     "factor s = %{customdata[1]:.4f}<extra></extra>"))


def _heatmap_layout(fig: go.Figure, title: str, sort: bool, n_layers: int) -> None:
    styled(fig).update_layout(title_text=title, margin=dict(t=60, b=40, l=70, r=20),
                      height=max(220, 110 + 60 * n_layers),
                      xaxis_title_text="neurons sorted by factor (rank)" if sort else "neuron index",
                      yaxis_title_text="layer")
    fig.update_yaxes(autorange="reversed")


def significance_heatmap(history: Sequence[np.ndarray], epoch: int | None = None, scale: str = "global",
                         sort: bool = False, title: str | None = None) -> go.Figure:
    """The significance matrix after ``epoch`` (None = latest) as a layers x neurons heatmap."""
    rows = significance_at(history, epoch)
    fig = go.Figure(_heatmap_trace(rows, scale, sort))
    shown = n_epochs(history) if epoch is None else min(int(epoch), n_epochs(history))
    _heatmap_layout(fig, title or f"Significance matrix after epoch {shown}", sort, len(rows))
    return fig


def frame_epochs(total: int, max_frames: int = MAX_FRAMES) -> list[int]:
    """At most ``max_frames`` evenly spaced epochs from 1 to ``total`` (both included)."""
    if total <= 0:
        return []
    return sorted({int(round(e)) for e in np.linspace(1, total, min(total, max_frames))})


def significance_animation(history: Sequence[np.ndarray], scale: str = "global", sort: bool = False,
                           title: str = "Significance matrix over training",
                           max_frames: int = MAX_FRAMES) -> go.Figure:
    """The heatmap with a play button and an epoch slider (client-side plotly frames).

    With ``scale="global"`` the range is the one of the whole history, so colours are comparable
    between frames.
    """
    epochs = frame_epochs(n_epochs(history), max_frames)
    if not epochs:
        return significance_heatmap(history, None, scale, sort, title)
    traces = [_heatmap_trace(significance_at(history, e), scale, sort) for e in epochs]
    if scale == "global":
        all_z = np.concatenate([np.ravel(h) for h in history if np.size(h)])
        m = float(np.max(np.abs(all_z - 1.0)))
        m = m if m > FLAT else 1.0
        for t in traces:
            t.update(zmin=1.0 - m, zmax=1.0 + m)
    fig = go.Figure(traces[-1], frames=[go.Frame(data=[t], name=str(e)) for t, e in zip(traces, epochs)])
    steps = [dict(method="animate", label=str(e), args=[[str(e)], dict(mode="immediate", frame=dict(
        duration=0, redraw=True), transition=dict(duration=0))]) for e in epochs]
    fig.update_layout(
        # The Play/Pause buttons sit left of the slider, on its row, so the two never overlap.
        sliders=[dict(active=len(epochs) - 1, steps=steps, currentvalue=dict(prefix="epoch "), x=0.14, len=0.86,
                      y=0, yanchor="top", pad=dict(t=50, b=10))],
        updatemenus=[dict(type="buttons", showactive=False, direction="left", x=0.12, y=0, xanchor="right",
                          yanchor="top", pad=dict(t=62, r=10),
                          buttons=[dict(label="Play", method="animate",
                                        args=[None, dict(frame=dict(duration=150, redraw=True), fromcurrent=False,
                                                         transition=dict(duration=0))]),
                                   dict(label="Pause", method="animate",
                                        args=[[None], dict(mode="immediate", frame=dict(duration=0))])])])
    _heatmap_layout(fig, title, sort, len(history))
    fig.update_layout(height=max(320, 200 + 60 * len(history)), margin=dict(b=120))
    return fig


def significance_histogram(history: Sequence[np.ndarray], epoch: int | None = None,
                           title: str | None = None) -> go.Figure:
    """Distribution of the factors per layer after ``epoch``, with a line at 1 (the initial value)."""
    rows = significance_at(history, epoch)
    fig = go.Figure()
    for i, r in enumerate(rows):
        if r is None:
            continue
        fig.add_trace(go.Histogram(x=r, name=f"layer {i + 1}", opacity=0.6, nbinsx=40,
                                   marker_color=_LAYER_COLORS[i % len(_LAYER_COLORS)]))
    fig.add_vline(x=1.0, line=dict(color="#444444", dash="dash", width=1), annotation_text="initial value 1")
    styled(fig).update_layout(barmode="overlay", title_text=title or "Factors per layer",
                      xaxis_title_text="significance factor s", yaxis_title_text="neurons (count)",
                      margin=dict(t=60, b=40, l=60, r=20), height=320, legend_title_text="")
    return fig


def activity_scatter(activity: pd.DataFrame, correlation: pd.DataFrame | None = None,
                     title: str = "Factor vs. positive - negative activity") -> go.Figure:
    """One panel per layer: each neuron's factor (x) against its mean h² on positive minus
    negative test data (y). ``activity`` is ``inspect.neuron_activity`` output; ``correlation``
    (``inspect.activity_correlation``) puts Spearman's rho in the panel titles."""
    layers = sorted(activity["layer"].unique()) if not activity.empty else []
    rho = {} if correlation is None else dict(zip(correlation["layer"], correlation["spearman"]))
    titles = [f"layer {int(i) + 1}" + (f", ρ = {rho[i]:.2f}" if np.isfinite(rho.get(i, np.nan)) else "")
              for i in layers]
    fig = make_subplots(rows=1, cols=max(1, len(layers)), subplot_titles=titles or None, shared_yaxes=False)
    for col, layer in enumerate(layers, start=1):
        part = activity[activity["layer"] == layer]
        color = np.where(part["activity_diff"] >= 0, POSITIVE_COLOR, NEGATIVE_COLOR)
        fig.add_trace(go.Scatter(x=part["significance"], y=part["activity_diff"], mode="markers",
                                 marker=dict(color=color, size=6, opacity=0.75), showlegend=False,
                                 customdata=part[["neuron", "pos_activity", "neg_activity"]],
                                 hovertemplate=("neuron %{customdata[0]}<br>factor s = %{x:.4f}<br>"
                                                "pos h² = %{customdata[1]:.4g}, neg h² = %{customdata[2]:.4g}"
                                                "<br>pos - neg = %{y:.4g}<extra></extra>")), row=1, col=col)
        fig.add_hline(y=0, line=dict(color="#999999", width=1), row=1, col=col)
        fig.update_xaxes(title_text="significance factor s", row=1, col=col)
    fig.update_yaxes(title_text="mean h², positive - negative", row=1, col=1)
    styled(fig).update_layout(title_text=title, margin=dict(t=80, b=40, l=60, r=20), height=360)
    return fig
