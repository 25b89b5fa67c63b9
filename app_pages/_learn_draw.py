"""Step 5's "Your own digit" panel of the Learn page: draw (canvas), upload, or edit the 8x8 pixels.

A helper of ``learn.py`` only (not a page): widgets and drawing; ``fgff_core.lesson`` turns the
picture into a network input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from torch import Tensor

from fgff_core import lesson
from fgff_core.data import Dataset
from fgff_core.model import FFNet
from fgff_core.viz import lesson as vlesson
from fgff_core.viz import samples

try:  # a drawing canvas (streamlit-drawable-canvas, in requirements.txt); the grid editor works without it
    from streamlit_drawable_canvas import st_canvas
except Exception:  # noqa: BLE001 - not installed, or installed after this server started (not registered)
    st_canvas = None

IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]
CANVAS_PX = 200


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


def _drawn_pixels() -> np.ndarray | None:
    st.caption("Draw a digit with the mouse (or a finger):")
    drawn = st_canvas(stroke_width=18, stroke_color="#FFFFFF", background_color="#000000", height=CANVAS_PX,
                      width=CANVAS_PX, drawing_mode="freedraw", key="w_canvas", return_image_data=True)
    image = drawn.image_data if drawn is not None else None
    if image is not None and np.asarray(image)[..., :3].max() > 0:
        return lesson.image_to_pixels(np.asarray(image))
    return None


def _grid_pixels(xi: Tensor, data: Dataset, index: int) -> np.ndarray:
    start = lesson.input_to_pixels(xi, data)
    column = st.column_config.NumberColumn(min_value=0, max_value=int(lesson.DIGITS_MAX_PIXEL), step=1, width=40)
    grid = st.data_editor(pd.DataFrame(start, columns=[str(c) for c in range(8)]), key=f"w_grid_{index}",
                          hide_index=True, width="content", column_config={str(c): column for c in range(8)})
    return grid.to_numpy(dtype=float, na_value=0.0)


def own_digit_panel(model: FFNet, data: Dataset, xi: Tensor, index: int, algo: str) -> None:
    """The panel: a drawing wins over an upload, which wins over the editable pixels of the test sample."""
    st.subheader("Your own digit")
    ways = "Draw a digit, upload a picture" if st_canvas is not None else "Upload a picture"
    st.caption(f"{ways} or edit the 8x8 pixels (0 = background, 16 = full ink); the network scores it for each "
               "label.")
    pixels = _drawn_pixels() if st_canvas is not None else None
    if pixels is None:
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
