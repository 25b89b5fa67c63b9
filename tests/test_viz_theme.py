"""The chart look's colours: the contrast ratio the screenshot test judges ticks by, and the styled text on its card."""

import plotly.graph_objects as go
import pytest

from fgff_core.viz import theme


def test_contrast_ratio_matches_wcag_reference_values():
    assert theme.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert theme.contrast_ratio("rgb(255, 255, 255)", "#ffffff") == pytest.approx(1.0)
    # Streamlit's own tick grey on white: WCAG calculators give 3.7, under the 4.5 that normal text needs.
    assert theme.contrast_ratio("rgb(128, 132, 149)", "rgba(255, 255, 255, 1)") == pytest.approx(3.7, abs=0.05)
    assert theme.contrast_ratio("#ffffff", "#000000") == theme.contrast_ratio("#000000", "#ffffff")


def test_contrast_ratio_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="colour must be"):
        theme.contrast_ratio("transparent", "#ffffff")


def test_styled_text_is_readable_on_its_own_card():
    fig = theme.styled(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])))
    card = fig.layout.paper_bgcolor
    fig.update_layout(legend={"title": {"text": "class"}})  # as the t-SNE and pruning charts name their legends
    for color in (fig.layout.xaxis.tickfont.color, fig.layout.yaxis.title.font.color, fig.layout.font.color,
                  fig.layout.legend.title.font.color):
        assert theme.contrast_ratio(color, card) >= theme.MIN_TEXT_CONTRAST, color


def test_styled_gives_a_heatmaps_colour_bar_the_axes_tick_font():
    fig = theme.styled(go.Figure(go.Heatmap(z=[[0, 1], [1, 0]])))
    assert fig.data[0].colorbar.tickfont.size == theme.TICK_FONT["size"] >= 13  # Plotly draws 12 px
