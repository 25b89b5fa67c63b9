"""Data augmentation for image datasets: random shifts ("jitter") of whole pixels.

``random_shift`` moves each image of a flattened batch by its own offset (dy, dx), each drawn uniformly from
``-max_shift..max_shift``, and fills the uncovered border with the background (the normalised value of a
zero pixel). Used by ``RunConfig.augment_shift``: every epoch sees freshly shifted training images.
"""

from __future__ import annotations

import torch
from torch import Tensor


def random_shift(x: Tensor, image_shape: tuple[int, ...], max_shift: int, background: Tensor,
                 generator: torch.Generator) -> Tensor:
    """``x`` (N, C*H*W) with each image shifted by a random (dy, dx) in [-max_shift, max_shift]^2.

    ``background``: the fill value per channel, shape (C,). Offsets come from ``generator`` (on the CPU), so
    a seeded run draws the same shifts on every device.
    """
    if max_shift < 0:
        raise ValueError(f"max_shift: must be >= 0, got {max_shift}")
    if max_shift == 0:
        return x
    c, h, w = image_shape
    n, k = len(x), max_shift
    images = x.reshape(n, c, h, w)
    fill = background.to(x.device, x.dtype).view(1, c, 1, 1)
    padded = fill.expand(n, c, h + 2 * k, w + 2 * k).clone()
    padded[:, :, k:k + h, k:k + w] = images
    offsets = torch.randint(-k, k + 1, (n, 2), generator=generator).to(x.device)
    out = torch.empty_like(images)
    # one slice per distinct offset: (2k+1)^2 copies of whole groups, no per-image Python loop
    code = (offsets[:, 0] + k) * (2 * k + 1) + (offsets[:, 1] + k)
    for value in code.unique().tolist():
        rows = (code == value).nonzero(as_tuple=True)[0]
        dy, dx = divmod(value, 2 * k + 1)
        # an image shifted by (dy - k, dx - k) reads the padded window that starts at (k - (dy - k), ...)
        top, left = 2 * k - dy, 2 * k - dx
        out[rows] = padded[rows, :, top:top + h, left:left + w]
    return out.reshape(n, -1)


def background_value(mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """The normalised value of a zero pixel per channel: what an image's empty border looks like."""
    return torch.tensor([-m / s for m, s in zip(mean, std)], dtype=torch.float32)
