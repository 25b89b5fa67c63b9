"""One palette for every chart: FF, FGFF, MF and BP keep their colours on every page.

The algorithms' names are ``fgff_core.vocabulary.ALGORITHM_LABELS``."""

from __future__ import annotations

ALGO_COLORS = {"ff": "#1f77b4", "fgff": "#d62728", "mf": "#ff7f0e", "bp": "#7f7f7f"}
POSITIVE_COLOR = "#2ca02c"  # positive data / positive goodness
NEGATIVE_COLOR = "#9467bd"  # negative data / negative goodness
THRESHOLD_COLOR = "#444444"
# Significance factors are centred on 1 (their initial value) and can go below 0.
SIGNIFICANCE_COLORSCALE = "RdBu_r"
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
TEMPLATE = "plotly_white"


def algo_color(algo: str) -> str:
    return ALGO_COLORS.get(algo, "#333333")
