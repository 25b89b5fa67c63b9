"""Figures of the Features page: a layer's 2-D t-SNE map, coloured by class (as the paper's Figs. 4-5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ..analysis.embeddings import Embedding
from ..format import percent
from .theme import CLASS_COLORS, styled


def score_text(emb: Embedding) -> str:
    """The three separation scores on one line."""
    return (f"silhouette {emb.silhouette:.3f} · 5-NN acc. (2-D) {percent(emb.knn_accuracy_2d, 1)} · "
            f"5-NN acc. (layer space) {percent(emb.knn_accuracy_layer, 1)}")


def embedding_figure(emb: Embedding, title: str | None = None, class_names: Sequence[str] | None = None,
                     show_scores: bool = True) -> go.Figure:
    """Scatter of the t-SNE map, one trace (legend entry) per class, consistent class colours."""
    fig = go.Figure()
    for c in np.unique(emb.labels):
        mask = emb.labels == c
        name = class_names[int(c)] if class_names is not None and int(c) < len(class_names) else str(int(c))
        fig.add_trace(go.Scattergl(x=emb.points[mask, 0], y=emb.points[mask, 1], mode="markers", name=name,
                                   marker=dict(color=CLASS_COLORS[int(c) % len(CLASS_COLORS)], size=5, opacity=0.8),
                                   customdata=emb.indices[mask],
                                   hovertemplate=f"class {name}<br>test sample %{{customdata}}<extra></extra>"))
    head = title or f"Layer {emb.layer + 1}: t-SNE of positive-data features"
    if show_scores:
        head = f"{head}<br><sup>{score_text(emb)} · {len(emb.points)} test samples</sup>"
    styled(fig).update_layout(title_text=head, legend_title_text="class", height=500,
                      legend=dict(orientation="h", yanchor="top", y=-0.15, xanchor="left", x=0),
                      margin=dict(t=80, b=40, l=50, r=20),
                      xaxis_title_text="t-SNE 1 (no unit)", yaxis_title_text="t-SNE 2 (no unit)")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
