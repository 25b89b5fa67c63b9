"""Figures of the Compare page: a metric's curves per group (FF, FGFF, ...) with the spread over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from ..config.values import check_choice
from ..format import MISSING
from ..vocabulary import ALGORITHM_LABELS
from .theme import ALGO_COLORS, TEMPLATE

# Axis titles with units, keyed by the metric names of events.py.
METRIC_LABELS = {
    "loss": "Layer loss (per sample)",
    "g_pos": "Goodness, positive data (mean of s·h², eq. 3)",
    "g_neg": "Goodness, negative data (mean of s·h², eq. 3)",
    "g_pos_no_significance": "Goodness, positive data, no significance (mean of h², eq. 2)",
    "g_neg_no_significance": "Goodness, negative data, no significance (mean of h², eq. 2)",
    "train_acc": "Train accuracy (evaluation subset)",
    "test_acc": "Test accuracy (evaluation subset)",
    "train_acc_no_significance": "Train accuracy without significance",
    "test_acc_no_significance": "Test accuracy without significance",
}
# Row titles of the final-metrics table (full test/train sets at the end of training).
FINAL_METRIC_LABELS = {
    "test_acc": "Test accuracy (%)",
    "test_acc_no_significance": "Test accuracy without significance (%)",
    "train_acc": "Train accuracy (%)",
    "train_acc_no_significance": "Train accuracy without significance (%)",
    "train_seconds": "Training time (s)",
    "epoch_seconds_median": "Time per layer-epoch, median (s)",
}
SPREADS = ("std", "min-max", "none")
STEP_AXIS = "Step (layer-epochs, in training order)"
_EXTRA_COLORS = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]  # none of ALGO_COLORS


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def is_accuracy(metric: str) -> bool:
    return "acc" in metric


def final_table_for_display(table: pd.DataFrame) -> pd.DataFrame:
    """``compare.final_metrics_table`` for people: accuracies in %, readable row titles, the run counts
    as "<group> seeds" (integers), and no row without any value."""
    shown = table.astype(float).copy()
    counts = [c for c in shown.columns if c.endswith(" n")]
    values = [c for c in shown.columns if c not in counts]
    shown = shown.dropna(how="all", subset=values)
    acc_rows = [m for m in shown.index if is_accuracy(m)]
    shown.loc[acc_rows, values] = 100.0 * shown.loc[acc_rows, values]
    for c in counts:
        shown[c] = shown[c].astype("Int64")
    shown = shown.rename(columns={c: c[:-2] + " seeds" for c in counts})
    shown.index = [FINAL_METRIC_LABELS.get(m, m) for m in shown.index]
    return shown


def final_table_styled(shown: pd.DataFrame) -> Styler:
    """``final_table_for_display`` as a page shows it: values with 3 decimals, run counts whole, and a missing
    value (FF's number without s, a group's sd of one finished run) as ``format.MISSING``, never "None"."""
    counts = [c for c in shown.columns if c.endswith(" seeds")]
    values = [c for c in shown.columns if c not in counts]
    return (shown.style.format("{:.3f}", subset=values, na_rep=MISSING)
            .format("{:.0f}", subset=counts, na_rep=MISSING))


def group_colors(groups: Sequence[str]) -> dict[str, str]:
    """FF, FGFF, MF and BP keep their theme colours; other group labels get distinct ones."""
    by_label = {label: ALGO_COLORS[algo] for algo, label in ALGORITHM_LABELS.items()}
    out, extra = {}, iter(_EXTRA_COLORS * 4)
    for g in groups:
        out[g] = by_label.get(g) or next(extra)
    return out


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def curves_figure(agg: pd.DataFrame, metric: str, spread: str = "std", colors: Mapping[str, str] | None = None,
                  title: str | None = None) -> go.Figure:
    """Mean curve per group with a band: +-1 std or min-max over the group's runs (seeds).

    ``agg`` is ``compare.aggregate_curves`` output. Dotted vertical lines mark where a new layer
    starts (greedy schedule).
    """
    check_choice("spread", spread, SPREADS)
    groups = list(dict.fromkeys(agg["group"])) if not agg.empty else []
    colors = dict(colors or group_colors(groups))
    fig = go.Figure()
    for g in groups:
        part = agg[agg["group"] == g]
        color = colors.get(g, "#333333")
        n_runs = int(part["n"].max())
        if spread != "none" and n_runs > 1:
            lo, hi = ((part["mean"] - part["std"], part["mean"] + part["std"]) if spread == "std"
                      else (part["min"], part["max"]))
            fig.add_trace(go.Scatter(x=part["step"], y=hi, mode="lines", line=dict(width=0), showlegend=False,
                                     hoverinfo="skip", legendgroup=g))
            fig.add_trace(go.Scatter(x=part["step"], y=lo, mode="lines", line=dict(width=0), fill="tonexty",
                                     fillcolor=_rgba(color, 0.2), showlegend=False, hoverinfo="skip",
                                     legendgroup=g))
        name = f"{g} (mean of {n_runs})" if n_runs > 1 else g
        custom = part[["layer", "epoch", "n"]].assign(layer=part["layer"] + 1)
        fig.add_trace(go.Scatter(x=part["step"], y=part["mean"], mode="lines", name=name, legendgroup=g,
                                 line=dict(color=color, width=2), customdata=custom,
                                 hovertemplate=(f"<b>{g}</b><br>step %{{x}} (layer %{{customdata[0]}}, "
                                                "epoch %{customdata[1]})<br>%{y:.4g} over %{customdata[2]} run(s)"
                                                "<extra></extra>")))
    if not agg.empty:
        starts = agg.groupby("layer")["step"].min().sort_index()
        for layer, step in starts.items():
            if step > starts.iloc[0]:
                fig.add_vline(x=step - 0.5, line=dict(color="#999999", dash="dot", width=1),
                              annotation_text=f"layer {int(layer) + 1}", annotation_position="top left")
    band = {"std": "band: ±1 std over seeds", "min-max": "band: min-max over seeds", "none": "no band"}[spread]
    fig.update_layout(template=TEMPLATE, hovermode="x unified",
                      title=dict(text=title or metric_label(metric), subtitle=dict(text=band)),
                      xaxis_title=STEP_AXIS, yaxis_title=metric_label(metric), legend_title_text="",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
                      margin=dict(t=90, b=40, l=60, r=20), height=400)
    if is_accuracy(metric):
        fig.update_yaxes(tickformat=".0%", range=[0, 1.02])  # always the whole 0-100 % scale
    return fig
