"""MNIST-family IDX files (MNIST, Fashion-MNIST) read with numpy: no torchvision import, no pickle.

The format (yann.lecun.com/exdb/mnist): a 4-byte big-endian magic number, ``0x0000080D`` where ``08``
says unsigned bytes and ``D`` the number of dimensions (3 for images, 1 for labels), then ``D``
big-endian uint32 sizes, then the bytes. A folder holds the four files of the standard release, each
as ``<name>.gz`` or unpacked as ``<name>`` (the unpacked one is read when both are there).

Importing torchvision just to parse these costs seconds on every cold start (the CLI, each Ray worker),
so the loader reads them here; torchvision is kept for downloading (``data.py``).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import NamedTuple

import numpy as np

IMAGES, LABELS = 3, 1  # dimensions of the two kinds of file
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


class IdxSplits(NamedTuple):
    """Images (N, rows, cols) and labels (N,) of both splits, as stored (uint8)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def file_names() -> list[str]:
    """The four files of a release, without ``.gz``."""
    return [name for pair in SPLITS.values() for name in pair]


def has_files(folder: Path) -> bool:
    """Whether ``folder`` holds all four files (each packed or unpacked)."""
    return all(_path(folder, name) is not None for name in file_names())


def read_array(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array in the IDX file ``path`` (``.gz`` or not), checked against its header.

    Raises ``ValueError`` naming the file when the magic number, the number of dimensions or the size
    does not match (a truncated download, a file of another kind).
    """
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:  # a truncated .gz stream ends early
        raise ValueError(f"{path.name}: cannot read it as an IDX file ({exc})") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise ValueError(f"{path.name}: not an IDX file of unsigned bytes with {ndim} dimension(s) "
                         f"(magic 0x0000080{ndim:X} expected)")
    shape = tuple(int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(f"{path.name}: {len(raw)} bytes, expected {expected} for shape {shape} "
                         "(truncated or corrupt; replace the file)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_folder(folder: Path) -> IdxSplits:
    """Both splits from the four files in ``folder`` (see ``has_files``)."""
    arrays = []
    for images_name, labels_name in SPLITS.values():
        images = read_array(_path(folder, images_name), IMAGES)
        labels = read_array(_path(folder, labels_name), LABELS)
        if len(images) != len(labels):
            raise ValueError(f"{images_name}: {len(images)} images but {labels_name} has {len(labels)} labels")
        arrays += [images, labels]
    return IdxSplits(*arrays)


def _path(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None
