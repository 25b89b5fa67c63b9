"""Figures for issue 34: pruning curves (accuracy over the fraction of neurons kept, one line per order,
the random order as its mean with a band of one standard deviation), the neurons x classes heatmap of
class preference, and layer 1's input weights as images with their label columns apart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.ablation_result import ORDER_TEXT, REMOVAL_TEXT, RULE_TEXT, AblationResult
from ..analysis.neurons import ClassPreference, WeightImage
from .theme import styled

ORDER_COLORS = {"s": "#d62728", "abs_s": "#ff7f0e", "activity": "#2ca02c", "weight_norm": "#1f77b4",
                "random": "#7f7f7f"}


def ablation_figure(result: AblationResult, layer: int | None, removal: str, rule: str) -> go.Figure:
    """Test accuracy (%) over the fraction kept (%, 100 on the left) for every order of one scope
    (``layer`` None: the network), one kind of removal and one prediction rule."""
    fig = go.Figure()
    scope = "network"
    for curve in (c for c in result.curves if (c.layer, c.removal, c.rule) == (layer, removal, rule)):
        scope = curve.scope
        x = [100.0 * k / curve.n_neurons for k in curve.kept]
        y = np.array(curve.accuracy) * 100.0
        color = ORDER_COLORS[curve.order]
        if curve.order == "random" and any(curve.spread):
            band = np.array(curve.spread) * 100.0
            fig.add_trace(go.Scatter(x=x + x[::-1], y=list(y + band) + list((y - band)[::-1]), fill="toself",
                                     fillcolor="rgba(127,127,127,0.2)", line={"width": 0}, hoverinfo="skip",
                                     showlegend=False))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=ORDER_TEXT[curve.order],
                                 line={"color": color}, hovertemplate="%{x:.0f} % kept: %{y:.2f} %<extra></extra>"))
    styled(fig).update_layout(title_text=f"{scope.capitalize()}: {REMOVAL_TEXT[removal]}, {RULE_TEXT[rule]}",
                      xaxis={"title": {"text": "neurons kept (%)"}, "autorange": "reversed"},
                      yaxis={"title": {"text": "test accuracy (%)"}}, legend={"title": {"text": "removed first"}})
    return fig


def class_preference_figure(pref: ClassPreference, class_names: Sequence[str] | None = None) -> go.Figure:
    """Mean squared activation per true class (columns) of each neuron (rows, sorted by factor s), each row
    scaled to its own maximum so that preference, not overall activity, shows; the selectivity in the hover."""
    m = pref.mean_square
    top = m.max(axis=1, keepdims=True)
    scaled = np.divide(m, top, out=np.zeros_like(m), where=top > 0)
    names = list(class_names) if class_names is not None else [str(c) for c in range(m.shape[1])]
    rows = [f"{j} (s={s:.2f})" for j, s in zip(pref.neurons, pref.factors)]
    custom = np.repeat(pref.selectivity[:, None], m.shape[1], axis=1)
    fig = go.Figure(go.Heatmap(z=scaled, x=names, y=rows, colorscale="Viridis", customdata=custom,
                               colorbar={"title": "share of<br>row max"},
                               hovertemplate="neuron %{y}, class %{x}: %{z:.2f} of its max; "
                                             "selectivity %{customdata:.2f}<extra></extra>"))
    rho = "n/a" if np.isnan(pref.spearman) else f"{pref.spearman:+.2f}"
    styled(fig).update_layout(title_text=f"Layer {pref.layer + 1}: class preference "
                                               f"(Spearman of selectivity with s: {rho})",
                      xaxis_title_text="true class", yaxis_title_text="neuron (sorted by s)")
    return fig


def weight_images_figure(images: Sequence[WeightImage], columns: int = 4) -> go.Figure:
    """Layer 1's input weights as images (blue negative, red positive; grey where the label is written),
    one panel per chosen neuron, titled with why it was chosen and its s; the label columns' weights in
    the hover of the panel's title row."""
    rows = max(1, -(-len(images) // columns))
    titles = [f"{w.kind}: {w.neuron} (s={w.factor:.2f})" for w in images]
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.08)
    for i, w in enumerate(images):
        image = w.image if w.image.ndim == 2 else np.nanmean(w.image, axis=2)  # colour: the channels' mean
        bound = float(np.nanmax(np.abs(image))) or 1.0
        fig.add_trace(go.Heatmap(z=image[::-1], zmin=-bound, zmax=bound, zmid=0, colorscale="RdBu_r",
                                 showscale=False, customdata=np.full(image.shape, str(np.round(w.label_weights, 3))),
                                 hovertemplate="weight %{z:.3f}<br>label columns: %{customdata}<extra></extra>"),
                      row=i // columns + 1, col=i % columns + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, constrain="domain")
    for i in range(len(images)):  # every panel square on its own axes (all anchored to the first squeezed it)
        fig.update_yaxes(scaleanchor="x" if i == 0 else f"x{i + 1}", row=i // columns + 1, col=i % columns + 1)
    styled(fig).update_layout(height=220 * rows, title_text="Layer 1: input weights as images")
    return fig
