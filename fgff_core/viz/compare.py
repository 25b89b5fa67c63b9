"""Figures of the Compare page: a metric's curves per group (FF, FGFF, ...) with the spread over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from ..config.values import check_choice
from ..format import MISSING, PERCENT_DIGITS
from ..vocabulary import ALGORITHM_LABELS
from .theme import ALGO_COLORS, styled

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
    "layer_train_acc": "Train accuracy of the layer on its own (evaluation subset)",
    "layer_test_acc": "Test accuracy of the layer on its own (evaluation subset)",
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
    as "<group> seeds" (integers), no row without any value, and the groups' means and differences ("FGFF - FF")
    before their sd and seeds."""
    shown = table.astype(float).copy()
    counts = [c for c in shown.columns if c.endswith(" n")]
    groups = [c for c in shown.columns if not c.endswith((" n", " sd")) and " - " not in c]
    values = [c for c in shown.columns if c not in counts]
    shown = shown.dropna(how="all", subset=values)
    acc_rows = [m for m in shown.index if is_accuracy(m)]
    shown.loc[acc_rows, values] = 100.0 * shown.loc[acc_rows, values]
    for c in counts:
        shown[c] = shown[c].astype("Int64")
    shown = shown.rename(columns={c: c[:-2] + " seeds" for c in counts})
    # The groups' means and their differences first: on a projector the columns after them run off the screen.
    first = [c for c in shown.columns if c in groups or " - " in c]
    shown = shown[first + [c for c in shown.columns if c not in first]]
    shown.index = [FINAL_METRIC_LABELS.get(m, m) for m in shown.index]
    return shown


SEEDS_ROW = "Seeds"  # the compact table's last row: how many runs (one per seed) each group's numbers average


def final_table_text(shown: pd.DataFrame) -> pd.DataFrame:
    """``final_table_for_display`` as a page shows it, narrow enough for a phone: one column per group and per
    difference, a group of several seeds as "mean ± sd" in one cell (its seeds in a last row, ``SEEDS_ROW``; a
    row with fewer says so in its cell), accuracies (%) with ``format.PERCENT_DIGITS`` decimals, times with 3,
    differences signed, and a missing value (FF's number without s) as ``format.MISSING``, never "None"."""
    sds = {c[:-len(" sd")]: c for c in shown.columns if c.endswith(" sd")}
    seeds = {c[:-len(" seeds")]: c for c in shown.columns if c.endswith(" seeds")}
    accuracy_rows = {label for metric, label in FINAL_METRIC_LABELS.items() if is_accuracy(metric)}
    digits = [PERCENT_DIGITS if title in accuracy_rows else 3 for title in shown.index]

    def number(value: object, places: int, sign: bool = False) -> str:
        if pd.isna(value):
            return MISSING
        rounded = round(float(value), places) + 0.0  # + 0.0: no "-0.000" for a tiny negative difference
        return f"{rounded:{'+' if sign else ''}.{places}f}"

    columns: dict[str, list[str]] = {}
    for c in (c for c in shown.columns if c not in sds.values() and c not in seeds.values()):
        difference = " - " in c
        cells = [number(v, d, sign=difference) for v, d in zip(shown[c], digits)]
        runs = shown[seeds[c]] if c in seeds else pd.Series(1, index=shown.index)
        most = int(runs.max()) if not difference else None
        if c in sds:
            spread = [MISSING if pd.isna(sd) else number(sd, d) for sd, d in zip(shown[sds[c]], digits)]
            cells = [cell if sd == MISSING else f"{cell} ± {sd}" for cell, sd in zip(cells, spread)]
            cells = [cell if cell == MISSING or pd.isna(n) or int(n) == most
                     else f"{cell} ({int(n)} seed{'s' * (int(n) != 1)})" for cell, n in zip(cells, runs)]
        columns[c] = [*cells, "" if difference else str(most)]
    return pd.DataFrame(columns, index=[*shown.index, SEEDS_ROW])


# Value columns a phone (390 px) shows in full beside the wrapped metric names: FF, FGFF and FGFF - FF fit; with four
# groups and their three differences (seven columns) the last ones were off the screen.
PHONE_TABLE_COLUMNS = 4


def final_table_parts(text: pd.DataFrame) -> list[pd.DataFrame]:
    """``final_table_text``'s table as a page shows it: whole where it has at most ``PHONE_TABLE_COLUMNS`` columns,
    else two tables, the groups' values (with their seeds row), then the differences (without it)."""
    if len(text.columns) <= PHONE_TABLE_COLUMNS:
        return [text]
    differences = [c for c in text.columns if " - " in c]
    values = [c for c in text.columns if c not in differences]
    return [part for part in (text[values], text[differences].drop(index=SEEDS_ROW)) if len(part.columns)]


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
    styled(fig).update_layout(hovermode="x unified",
                      title=dict(text=title or metric_label(metric), subtitle=dict(text=band)),
                      xaxis_title_text=STEP_AXIS, yaxis_title_text=metric_label(metric), legend_title_text="",
                      # Below the plot: above it, a legend wrapping on a narrow screen ran over the title.
                      legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0.0),
                      margin=dict(t=80, b=110, l=60, r=20), height=440)
    if is_accuracy(metric):
        fig.update_yaxes(tickformat=".0%", range=[0, 1.02])  # always the whole 0-100 % scale
    return fig
