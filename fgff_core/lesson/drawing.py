"""Step 5's own digit: an 8x8 grid of pixel values, a drawing or an uploaded picture as a network input.

A drawing comes from the browser's canvas as a PNG data URL (``data:image/png;base64,...``): strokes on a
transparent background. ``drawing_to_image`` checks it (type, prefix, size, a readable PNG of sane
dimensions) before decoding, so what a browser sends can only ever give a ``ValueError``;
``drawing_to_pixels`` then down-samples it with ``image_to_pixels``, the same rule as an uploaded picture.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.loading import Dataset

DIGITS_MAX_PIXEL = 16.0  # scikit-learn digits: each pixel counts the ink in a 4x4 block, 0..16

# The canvas: a square bitmap and a pen width in its pixels. The digits' strokes are bold: about 1.3 of the
# ~6.5 rows a digit spans, a fifth of its height. A digit drawn across most of the 280-pixel canvas (about
# 200 pixels tall) with a 32-pixel pen comes out of ``image_to_pixels`` with strokes of 13-16 like theirs;
# a 20-pixel pen leaves a horizontal stroke at 5-9, a faint ghost of the dataset's.
CANVAS_SIZE = 280
CANVAS_STROKE = 32
DRAWING_PREFIX = "data:image/png;base64,"
MAX_DRAWING_CHARS = 2_000_000  # a 280x280 drawing is 5-20 kB; far more is not a drawing
MAX_DRAWING_SIDE = 2048


def pixels_to_input(pixels: np.ndarray, data: Dataset) -> Tensor:
    """An 8x8 array of digits pixel values (0..16, ink high) as a network input (1, 64), normalised
    with the digits training set's mean and std exactly like ``load_dataset`` does."""
    arr = np.asarray(pixels, dtype=np.float32)
    if arr.shape != tuple(data.image_shape[1:]):
        raise ValueError(f"pixels: expected shape {tuple(data.image_shape[1:])}, got {arr.shape}")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > DIGITS_MAX_PIXEL:
        raise ValueError(f"pixels: values must lie in [0, {DIGITS_MAX_PIXEL:g}]")
    mean, std = data.mean[0], data.std[0]
    return torch.from_numpy(((arr.reshape(1, -1) - mean) / std).astype(np.float32))


def input_to_pixels(x: Tensor, data: Dataset) -> np.ndarray:
    """A network input (1, 64) back to the 8x8 grid of whole digits pixel values (0..16) it came from."""
    pixels = np.rint(data.denormalise(x)[0, 0].numpy())
    return np.clip(pixels, 0, DIGITS_MAX_PIXEL).astype(int)


def image_to_pixels(image: Any, size: int = 8) -> np.ndarray:
    """A picture (PIL image or array, any size, colour or grey, with or without alpha) as an 8x8
    digits-style array: ink bright on a dark background, cropped to the ink, centred, 0..16.

    Dark ink on a light background (a scanned or photographed digit) is inverted; a transparent
    background (a canvas drawing) counts as no ink. An empty picture gives all zeros.
    """
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image).astype(np.uint8))
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        # Strokes on a transparent background: the opacity is the ink.
        ink = alpha if alpha.min() < 1.0 else _ink_from_grey(rgba[..., :3].mean(axis=2))
    else:
        ink = _ink_from_grey(np.asarray(img.convert("L"), dtype=np.float32) / 255.0)
    if ink.max() <= 1e-3:
        return np.zeros((size, size), dtype=np.float32)
    rows, cols = np.nonzero(ink > 0.1 * ink.max())
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = ink.shape
    side = int(math.ceil(max(h, w) * 1.25))  # a margin, as the digits have around the stroke
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top:top + h, left:left + w] = ink
    small = Image.fromarray((square * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BOX)
    out = np.asarray(small, dtype=np.float32) / 255.0
    return (out / out.max() * DIGITS_MAX_PIXEL).astype(np.float32)


def _ink_from_grey(grey: np.ndarray) -> np.ndarray:
    """Ink = the minority brightness: a mostly light picture has dark ink, so it is inverted."""
    return 1.0 - grey if np.median(grey) > 0.5 else grey


def drawing_to_image(payload: Any) -> Any:
    """The canvas's payload, a PNG data URL, as a decoded PIL image (RGBA).

    Raises ``ValueError`` naming ``drawing`` for anything else: not a string, another prefix, more than
    ``MAX_DRAWING_CHARS`` characters, bad base64, not a PNG, a side outside 1..``MAX_DRAWING_SIDE``
    (checked from the header, before the pixels are decoded).
    """
    from PIL import Image

    if not isinstance(payload, str):
        raise ValueError(f"drawing: expected a PNG data URL (a string), got {type(payload).__name__}")
    if not payload.startswith(DRAWING_PREFIX):
        raise ValueError(f"drawing: expected a PNG data URL starting with {DRAWING_PREFIX!r}")
    if len(payload) > MAX_DRAWING_CHARS:
        raise ValueError(f"drawing: {len(payload):,} characters, more than the {MAX_DRAWING_CHARS:,} a drawing "
                         "can have")
    try:
        raw = base64.b64decode(payload[len(DRAWING_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("drawing: the data URL is not valid base64") from exc
    try:
        img = Image.open(io.BytesIO(raw))
        if img.format != "PNG":
            raise ValueError(f"drawing: expected a PNG image, got {img.format}")
        w, h = img.size
        if not (1 <= w <= MAX_DRAWING_SIDE and 1 <= h <= MAX_DRAWING_SIDE):
            raise ValueError(f"drawing: {w}x{h} pixels; each side must lie in [1, {MAX_DRAWING_SIDE}]")
        return img.convert("RGBA")
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:  # PIL: unreadable or truncated
        raise ValueError("drawing: not a readable PNG image") from exc


def drawing_to_pixels(payload: Any, size: int = 8) -> np.ndarray:
    """The canvas's payload as an 8x8 digits-style array (``image_to_pixels`` of ``drawing_to_image``)."""
    return image_to_pixels(drawing_to_image(payload), size)
