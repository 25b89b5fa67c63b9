"""Figures of the reproduction study: the learning-rate sweep and the budget curve, mean ± std over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import plotly.graph_objects as go

from ..vocabulary import algo_label
from .theme import algo_color, styled


class SeedCell(Protocol):
    """One point: accuracies (fractions) over seeds (``fgff_core.reproduce.cells.Cell``)."""

    values: list[float]

    @property
    def mean(self) -> float | None: ...

    @property
    def std(self) -> float | None: ...


def seed_curves(series: dict[str, tuple[str, Sequence[SeedCell]]], xs: Sequence[float], title: str,
                xlabel: str) -> go.Figure:
    """One line per series (mean ± std) and every seed as a faint point, on a log x axis.

    ``series``: name -> (algorithm, one cell per x). A name ending in ``_no_significance`` is drawn
    dashed in its algorithm's colour.
    """
    fig = go.Figure()
    for name, (algo, cells) in series.items():
        pts = [(x, c) for x, c in zip(xs, cells) if c.mean is not None]
        if not pts:
            continue
        colour = algo_color(algo)
        dashed = name.endswith("_no_significance")
        label = algo_label(algo) + (" without significance" if dashed else "")
        fig.add_scatter(x=[x for x, _ in pts], y=[c.mean * 100 for _, c in pts], name=f"{label}, mean ± std",
                        mode="lines+markers", line=dict(color=colour, dash="dash" if dashed else None),
                        error_y=dict(type="data", array=[(c.std or 0.0) * 100 for _, c in pts], visible=True))
        fig.add_scatter(x=[x for x, c in pts for _ in c.values], y=[v * 100 for _, c in pts for v in c.values],
                        mode="markers", marker=dict(color=colour, size=5, opacity=0.35), showlegend=False,
                        hoverinfo="skip")
    fig.update_layout(title=dict(text=title, font=dict(size=13)),
                      xaxis=dict(title_text=xlabel, type="log", tickvals=list(xs), ticktext=[f"{x:g}" for x in xs]),
                      yaxis=dict(title_text="accuracy (%)"), width=760, height=500,
                      # below the axis title: inside the plot it hid the points of a collapsed lr
                      legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"))
    return styled(fig)
