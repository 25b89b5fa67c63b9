"""What the network sees, as Plotly figures: labelled samples (paper Fig. 2) and the prediction rule.

Forward-Forward writes the label into the first 10 inputs of each image (one-hot times the label
value): with the true label it is a positive sample, with a wrong one a negative sample. At test
time every one of the 10 candidate labels is written in turn and the label with the highest total
goodness wins. No Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..engine.model import embed_labels
from ..engine.training import draw_negative_labels
from ..vocabulary import algo_label, trains_factors
from .theme import NEGATIVE_COLOR, POSITIVE_COLOR, algo_color, styled

LABEL_SLOT_COLOR = "#ffbf00"  # outline of the label slots (the first n_classes inputs)


@dataclass(frozen=True)
class SamplePairs:
    """Positive and negative versions of the same images, flattened, in the network's input space."""

    index: np.ndarray  # (N,) row in the split
    labels: np.ndarray  # (N,) true labels
    neg_labels: np.ndarray  # (N,) wrong labels, uniform over the other classes
    positive: np.ndarray  # (N, D) images with the true label embedded
    negative: np.ndarray  # (N, D) images with the wrong label embedded
    image_shape: tuple[int, ...]  # (C, H, W)
    n_classes: int


def sample_pairs(x: torch.Tensor, y: torch.Tensor, image_shape: tuple[int, ...], label_value: float,
                 n: int = 8, seed: int = 0, n_classes: int = 10) -> SamplePairs:
    """``n`` samples drawn with ``seed``, each embedded with its label and with a random wrong label.

    ``x`` is the normalised, flattened data (as in ``Dataset``); the label value is written in
    that same space, exactly as training does.
    """
    if n < 1:
        raise ValueError(f"n: expected at least 1 sample, got {n}")
    gen = torch.Generator().manual_seed(seed)
    n = min(n, len(x))
    idx = torch.randperm(len(x), generator=gen)[:n]
    xs, ys = x[idx].cpu(), y[idx].cpu()
    y_neg = draw_negative_labels(ys, n_classes, gen)
    return SamplePairs(idx.numpy(), ys.numpy(), y_neg.numpy(),
                       embed_labels(xs, ys, label_value, n_classes).numpy(),
                       embed_labels(xs, y_neg, label_value, n_classes).numpy(),
                       tuple(image_shape), n_classes)


def label_slot_pixels(image_shape: tuple[int, ...], n_classes: int = 10) -> list[tuple[int, int, int]]:
    """(channel, row, column) of each label slot: the first ``n_classes`` inputs of the flattened image."""
    c, h, w = image_shape
    return [(k // (h * w), (k % (h * w)) // w, k % w) for k in range(n_classes)]


def _image_trace(flat: np.ndarray, image_shape: tuple[int, ...]) -> go.BaseTraceType:
    c, h, w = image_shape
    img = flat.reshape(c, h, w)
    if c == 1:
        return go.Heatmap(z=img[0], colorscale="gray", showscale=False, hovertemplate="row %{y}, col %{x}: "
                          "%{z:.2f}<extra></extra>")
    lo, hi = float(img.min()), float(img.max())
    rgb = ((img - lo) / (hi - lo + 1e-12) * 255).clip(0, 255).astype(np.uint8).transpose(1, 2, 0)
    return go.Image(z=rgb)


def image_figure(flat: np.ndarray, image_shape: tuple[int, ...], title: str, height: int = 280) -> go.Figure:
    """One flattened input drawn as an image, as the network receives it."""
    fig = go.Figure(_image_trace(np.asarray(flat), image_shape))
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed", scaleanchor="x",
                     constrain="domain")
    styled(fig).update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10),
                      title=dict(text=title, x=0.0, xanchor="left"))
    return fig


def samples_figure(pairs: SamplePairs, max_columns: int = 8) -> go.Figure:
    """Paper Fig. 2 for real data: top row positive samples, bottom row negative, label slots outlined.

    The label slots (first 10 inputs) get a thin amber outline; the slot holding the written label
    gets a thick green (positive) or purple (negative) box.
    """
    n = min(len(pairs.labels), max_columns)
    titles = [f"positive: label {pairs.labels[i]}" for i in range(n)]
    titles += [f"negative: label {pairs.neg_labels[i]}" for i in range(n)]
    fig = make_subplots(rows=2, cols=n, subplot_titles=titles, horizontal_spacing=0.015, vertical_spacing=0.12)
    slots = label_slot_pixels(pairs.image_shape, pairs.n_classes)
    for row, (images, labels, color) in enumerate(
            [(pairs.positive, pairs.labels, POSITIVE_COLOR), (pairs.negative, pairs.neg_labels, NEGATIVE_COLOR)],
            start=1):
        for col in range(1, n + 1):
            fig.add_trace(_image_trace(images[col - 1], pairs.image_shape), row=row, col=col)
            for k, (_, r, cc) in enumerate(slots):
                hot = k == int(labels[col - 1])
                fig.add_shape(type="rect", x0=cc - 0.5, x1=cc + 0.5, y0=r - 0.5, y1=r + 0.5, row=row, col=col,
                              line=dict(color=color if hot else LABEL_SLOT_COLOR, width=3 if hot else 1))
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                     scaleanchor="x", constrain="domain")
    for i in range(2, 2 * n + 1):  # every panel square, not only the first
        fig.update_yaxes(scaleanchor=f"x{i}", row=(i - 1) // n + 1, col=(i - 1) % n + 1)
    styled(fig).update_layout(height=360, margin=dict(l=10, r=10, t=60, b=10),
                      title=dict(text="Positive (true label) and negative (wrong label) samples; "
                                      "label slots outlined", x=0.0, xanchor="left"))
    fig.update_annotations(font_size=11)
    return fig


def label_goodness_figure(g_with: np.ndarray, g_without: np.ndarray | None, true_label: int | None = None,
                          algo: str = "fgff") -> go.Figure:
    """Total goodness of one sample for each of the candidate labels (the prediction rule, made visible).

    Bars: with significance (eq. 3, the algorithm's colour) and, for FGFF, without (eq. 2). The
    predicted label is the tallest bar of each series; the true label is marked on the axis.
    """
    g_with = np.asarray(g_with, dtype=float).ravel()
    labels = [str(k) for k in range(len(g_with))]
    if true_label is not None:
        labels[true_label] = f"{true_label} (true)"
    fig = go.Figure()
    name = algo_label(algo)
    if trains_factors(algo):
        name = f"{name}: with significance"
    fig.add_trace(go.Bar(x=labels, y=g_with, name=name,
                         marker_color=algo_color(algo),
                         marker_line=dict(color="black", width=[2 if k == g_with.argmax() else 0
                                                               for k in range(len(g_with))])))
    if g_without is not None and trains_factors(algo):
        g_without = np.asarray(g_without, dtype=float).ravel()
        fig.add_trace(go.Bar(x=labels, y=g_without, name="without significance", marker_color=algo_color("ff"),
                             opacity=0.6,
                             marker_line=dict(color="black", width=[2 if k == g_without.argmax() else 0
                                                                   for k in range(len(g_without))])))
    pred = int(g_with.argmax())
    verdict = "" if true_label is None else (" (correct)" if pred == true_label else f" (true: {true_label})")
    styled(fig).update_layout(barmode="group", height=340, margin=dict(l=60, r=20, t=60, b=50),
                      legend=dict(orientation="h", y=-0.25),
                      title=dict(text=f"Goodness for each candidate label: predicted {pred}{verdict}",
                                 x=0.0, xanchor="left"))
    fig.update_xaxes(title_text="candidate label written into the input")
    fig.update_yaxes(title_text="goodness summed over layers")
    return fig
