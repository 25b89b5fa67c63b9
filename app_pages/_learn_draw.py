"""Step 5's "Your own digit" panel of the Learn page: draw a digit, upload a picture, or edit the 8x8 pixels.

A helper of ``learn.py`` only (not a page): widgets and drawing; ``fgff_core.lesson`` turns the
picture into a network input. The canvas (``_learn_canvas.py``, a ``st.components.v2`` component in the
page's own DOM) sends the drawing as a PNG data URL when a stroke ends; ``lesson.drawing_to_pixels``
checks it and down-samples it with ``lesson.image_to_pixels``, the rule an uploaded picture goes
through too. The panel is a fragment: a stroke reruns only the panel, not the page, so each label's
goodness answers the stroke at once. What is scored: a drawing with ink, else an uploaded picture,
else the test sample's pixels as edited in the grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from torch import Tensor

from app_pages._learn_canvas import digit_canvas
from fgff_core import lesson
from fgff_core.data import Dataset
from fgff_core.engine.model import FFNet
from fgff_core.viz import lesson as vlesson
from fgff_core.viz import samples
from fgff_core.vocabulary import trains_factors

IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]


def _drawn_pixels(drawing: Any) -> np.ndarray | None:
    """The drawing's 8x8 pixels, or None for no drawing, an empty one or one the browser sent damaged."""
    if drawing is None:
        return None
    try:
        pixels = lesson.drawing_to_pixels(drawing)
    except ValueError as exc:
        st.warning(f"This drawing could not be read ({exc}). Press Clear and draw again.")
        return None
    return pixels if pixels.any() else None


def _uploaded_pixels() -> np.ndarray | None:
    upload = st.file_uploader("Upload an image", type=IMAGE_TYPES, key="w_upload")
    if upload is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        return lesson.image_to_pixels(Image.open(upload))
    except (UnidentifiedImageError, OSError, ValueError):
        st.error(f"{upload.name} is not a picture this page can read: upload a PNG, JPEG, BMP, GIF or WebP image "
                 "of one digit.")
        return None


def _grid_pixels(xi: Tensor, data: Dataset, index: int) -> np.ndarray:
    start = lesson.input_to_pixels(xi, data)
    column = st.column_config.NumberColumn(min_value=0, max_value=int(lesson.DIGITS_MAX_PIXEL), step=1, width=40)
    grid = st.data_editor(pd.DataFrame(start, columns=[str(c) for c in range(8)]), key=f"w_grid_{index}",
                          hide_index=True, width="content", column_config={str(c): column for c in range(8)})
    return grid.to_numpy(dtype=float, na_value=0.0)


def _verdict(source: str, own_sig: np.ndarray, own_raw: np.ndarray, algo: str) -> str:
    text = f"Scored: {source}. Predicted **{int(np.argmax(own_sig))}**"
    if trains_factors(algo):
        text += f" with the significance factors, **{int(np.argmax(own_raw))}** without"
    return text + "."


@st.fragment
def own_digit_panel(model: FFNet, data: Dataset, xi: Tensor, index: int, algo: str) -> None:
    """The panel: a drawing wins over an uploaded picture, which wins over the editable pixels of the test
    sample. A fragment: its widgets (the canvas too) rerun only the panel."""
    st.subheader("Your own digit")
    st.caption("Draw one digit in the box with the mouse or a finger: when you lift it, the network scores your "
               "drawing for each label. Or upload a picture, or edit the 8x8 pixels (0 = background, 16 = full "
               "ink), below.")
    drawn = _drawn_pixels(digit_canvas("w_canvas"))
    with st.expander("Upload a picture or edit the 8x8 pixels", expanded=False):
        uploaded = _uploaded_pixels()
        edited = _grid_pixels(xi, data, index)
    if drawn is not None:
        pixels, source = drawn, "your drawing"
    elif uploaded is not None:
        pixels, source = uploaded, "your uploaded picture"
    else:
        pixels, source = edited, f"test sample {index}'s pixels (draw, upload or edit them)"
    try:
        x_own = lesson.pixels_to_input(pixels, data)
    except ValueError as exc:
        st.error(str(exc))
        return
    st.plotly_chart(vlesson.pixels_figure(pixels, "what the network gets"), key="step5_own_image")
    own_sig, own_raw = lesson.label_scores(model, x_own)
    st.caption(_verdict(source, own_sig, own_raw, algo))
    st.plotly_chart(samples.label_goodness_figure(own_sig, own_raw, None, algo), key="step5_own_scores")
