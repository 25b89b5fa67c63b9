"""Step 5's "Your own digit" panel of the Learn page: upload a picture, or edit the 8x8 pixels.

A helper of ``learn.py`` only (not a page): widgets and drawing; ``fgff_core.lesson`` turns the
picture into a network input. No drawing canvas: streamlit-drawable-canvas 0.13 installs and
renders with this Streamlit, but a stroke drawn in headless Chromium never reached the app, so the
page does not promise drawing (``lesson.image_to_pixels`` takes a canvas image once one works).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from torch import Tensor

from fgff_core import lesson
from fgff_core.data import Dataset
from fgff_core.engine.model import FFNet
from fgff_core.viz import lesson as vlesson
from fgff_core.viz import samples

IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]


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


def own_digit_panel(model: FFNet, data: Dataset, xi: Tensor, index: int, algo: str) -> None:
    """The panel: an uploaded picture wins over the editable pixels of the test sample."""
    st.subheader("Your own digit")
    st.caption("Upload a picture of a digit, or edit the 8x8 pixels (0 = background, 16 = full ink); the network "
               "scores it for each label.")
    pixels = _uploaded_pixels()
    if pixels is None:
        pixels = _grid_pixels(xi, data, index)
    try:
        x_own = lesson.pixels_to_input(pixels, data)
    except ValueError as exc:
        st.error(str(exc))
        return
    st.plotly_chart(vlesson.pixels_figure(pixels, "what the network gets"), key="step5_own_image")
    own_sig, own_raw = lesson.label_scores(model, x_own)
    st.plotly_chart(samples.label_goodness_figure(own_sig, own_raw, None, algo), key="step5_own_scores")
