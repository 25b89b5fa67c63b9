"""One palette and one look for every chart: FF, FGFF, MF and BP keep their colours on every page, and
``styled`` gives each figure readable fonts (every builder calls it).

The algorithms' names are ``fgff_core.vocabulary.ALGORITHM_LABELS``."""

from __future__ import annotations

import plotly.graph_objects as go

ALGO_COLORS = {"ff": "#1f77b4", "fgff": "#d62728", "mf": "#ff7f0e", "bp": "#7f7f7f"}
POSITIVE_COLOR = "#2ca02c"  # positive data / positive goodness
NEGATIVE_COLOR = "#9467bd"  # negative data / negative goodness
THRESHOLD_COLOR = "#444444"
# Significance factors are centred on 1 (their initial value) and can go below 0.
SIGNIFICANCE_COLORSCALE = "RdBu_r"
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
# One colour per layer (the layers of one run, where its algorithm's colour cannot tell them apart).
LAYER_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
LAYER_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "cross", "star", "pentagon"]
TEMPLATE = "plotly_white"
# Streamlit's chart theme draws ticks at 12 px in a light grey (rgb(128, 132, 149)), hard to read on a projector;
# a figure's own layout values win over it.
TEXT_COLOR = "#1f2430"  # the app's text colour (.streamlit/config.toml)
TICK_FONT = dict(size=13, color="#2b2f3a")
AXIS_TITLE_FONT = dict(size=14, color=TEXT_COLOR)
LEGEND_FONT = dict(size=13, color=TEXT_COLOR)
CHART_BACKGROUND = "#ffffff"
GRID_COLOR, ZERO_LINE_COLOR = "#e6e8ec", "#c4c8d0"  # light on the white card (the dark theme's grid is near black)


def styled(fig: go.Figure) -> go.Figure:
    """``fig`` with the app's chart look, in place (returned for chaining): the template, ticks of 13 px in a dark
    grey and axis titles of 14 px on every axis (subplots too), legends of 13 px, a white background (in the dark
    theme too), colour bars' ticks as the axes', the toolbar upright. Call it after the figure's axes and colour
    bars exist (``make_subplots`` creates the axes up front); set a title's text afterwards with ``title_text=``
    (``title="..."`` replaces its font)."""
    # The toolbar (zoom, pan, download) stands upright at the right edge: across the top, on a phone, it covered
    # the titles.
    # A white card in Streamlit's dark theme too: the dark text above stays readable on it.
    # A legend's title too (Streamlit's pale grey otherwise: "removed first", "class").
    fig.update_layout(template=TEMPLATE, font=dict(color=TEXT_COLOR),
                      legend=dict(font=LEGEND_FONT, title_font=LEGEND_FONT),
                      title=dict(font=dict(color=TEXT_COLOR)), paper_bgcolor=CHART_BACKGROUND,
                      plot_bgcolor=CHART_BACKGROUND, modebar=dict(orientation="v"))
    axes = dict(tickfont=TICK_FONT, title_font=AXIS_TITLE_FONT, gridcolor=GRID_COLOR, zerolinecolor=ZERO_LINE_COLOR)
    fig.update_xaxes(**axes)
    fig.update_yaxes(**axes)
    for trace in fig.data:  # a heatmap's colour bar: its ticks were Plotly's 12 px
        if "colorbar" in trace:
            trace.colorbar.tickfont = TICK_FONT
    return fig


MIN_TEXT_CONTRAST = 4.5  # WCAG 2's AA ratio for normal text: what "readable" means for a chart's ticks


def _channels(color: str) -> tuple[float, float, float]:
    """``#rrggbb`` or a CSS ``rgb(r, g, b)`` / ``rgba(r, g, b, a)`` as three 0-255 channels."""
    text = color.strip()
    if text.startswith("#") and len(text) == 7:
        return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    if text.startswith("rgb") and "(" in text and text.endswith(")"):
        parts = text[text.index("(") + 1:-1].replace("/", ",").replace(" ", ",").split(",")
        values = [float(p) for p in parts if p]
        if len(values) >= 3:
            return values[0], values[1], values[2]
    raise ValueError(f"colour must be '#rrggbb' or 'rgb(r, g, b)', got {color!r}")


def _luminance(color: str) -> float:
    linear = [(c / 255) / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4
              for c in _channels(color)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2's contrast ratio of two opaque colours, from 1 (the same) to 21 (black on white)."""
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def algo_color(algo: str) -> str:
    return ALGO_COLORS.get(algo, "#333333")
