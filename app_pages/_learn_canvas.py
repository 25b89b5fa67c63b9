"""The drawing canvas of the Learn page's step 5: a Streamlit custom component (``st.components.v2``).

A helper of ``_learn_draw.py`` only (not a page). Its HTML, CSS and JavaScript are the files
``assets/digit_canvas.{html,css,js}``, passed inline (no build step, no package): the component renders
in the page's own DOM (a shadow root, not an iframe), draws with pointer events and, when a stroke ends,
sets its state ``drawing`` to a PNG data URL of the whole canvas (``None`` after Clear). Setting it reruns
the fragment that mounts the canvas; ``fgff_core.lesson.drawing_to_pixels`` turns the URL into pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from fgff_core import lesson

ASSETS = Path(__file__).resolve().parents[1] / "assets"
COMPONENT_NAME = "fgff_digit_canvas"


def _asset(suffix: str) -> str:
    return (ASSETS / f"digit_canvas.{suffix}").read_text(encoding="utf-8")


_canvas = st.components.v2.component(COMPONENT_NAME, html=_asset("html"), css=_asset("css"), js=_asset("js"))


def digit_canvas(key: str) -> Any:
    """Mount the canvas; return what the browser last sent as ``drawing`` (a data URL, ``None`` before the
    first stroke or after Clear). Unchecked: the caller validates it with ``lesson.drawing_to_pixels``."""
    result = _canvas(key=key, data={"size": lesson.CANVAS_SIZE, "stroke": lesson.CANVAS_STROKE},
                     default={"drawing": None}, on_drawing_change=lambda: None, width="stretch")
    return result.get("drawing")
