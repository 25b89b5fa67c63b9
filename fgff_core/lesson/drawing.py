"""Step 5's own digit: an 8x8 grid of pixel values, a drawing or an uploaded picture as a network input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.loading import Dataset

DIGITS_MAX_PIXEL = 16.0  # scikit-learn digits: each pixel counts the ink in a 4x4 block, 0..16


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
