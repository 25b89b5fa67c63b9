"""CIFAR-10 from local files: torchvision's python version, or the binary version without pickle.

The binary version (``cifar-10-binary.tar.gz`` on the CIFAR site) holds ``cifar-10-batches-bin/``:
``data_batch_1.bin`` ... ``data_batch_5.bin`` and ``test_batch.bin``, each a run of 3073-byte
records: one label byte, then the 1024 red, 1024 green and 1024 blue values of a 32x32 image. It is
read here from the extracted folder or straight from the archive (into memory: the data folder may
be read-only, and nothing is extracted, so no archive member can write anywhere). Nothing is ever
unpickled; torchvision's python version is left to torchvision, which checks its MD5s first.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

BIN_FOLDER = "cifar-10-batches-bin"
PY_FOLDER = "cifar-10-batches-py"
ARCHIVE_NAMES = ("cifar-10-binary.tar.gz", "cifar-10-binary.tgz", "cifar-10-binary.tar")
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
PIXELS = 3 * 32 * 32
RECORD = 1 + PIXELS
MAX_FILE_BYTES = 20_000 * RECORD  # twice the official 10,000 records: a bigger member is not CIFAR-10


class CifarFormatError(ValueError):
    """A CIFAR-10 binary file that is missing, truncated or of the wrong size."""


class Arrays(NamedTuple):
    """Raw pixels in [0, 1], flattened channel-major (like ToTensor), and labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def has_python_version(folder: Path) -> bool:
    """Whether ``folder`` holds torchvision's python version (read by torchvision, which checks it)."""
    return (folder / PY_FOLDER / "data_batch_1").is_file()


def damaged_python_version(folder: Path) -> CifarFormatError:
    """The error for a python version that torchvision refuses: a batch file fails its MD5 check."""
    return CifarFormatError(f"CIFAR-10: {folder / PY_FOLDER} fails torchvision's checksum check (a batch file is "
                            "damaged, truncated or not CIFAR-10's); replace it, or use the binary version instead")


def find_binary(folder: Path) -> Callable[[], Arrays] | None:
    """A reader for the binary version in ``folder`` (the extracted folder, else the archive), or None."""
    if (folder / BIN_FOLDER / TRAIN_FILES[0]).is_file():
        return lambda: read_binary_folder(folder / BIN_FOLDER)
    for name in ARCHIVE_NAMES:
        if (folder / name).is_file():
            return lambda archive=folder / name: read_binary_archive(archive)
    return None


def read_binary_folder(folder: Path) -> Arrays:
    """The binary version from an extracted ``cifar-10-batches-bin/`` folder."""
    blobs = {}
    for name in (*TRAIN_FILES, TEST_FILE):
        path = folder / name
        if not path.is_file():
            raise CifarFormatError(f"CIFAR-10: {path} is missing (expected {', '.join((*TRAIN_FILES, TEST_FILE))})")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CifarFormatError(_size_message(str(path), size, 10_000 * RECORD))
        blobs[str(path)] = path.read_bytes()
    return _decode(blobs)


def read_binary_archive(archive: Path) -> Arrays:
    """The binary version straight from its ``.tar.gz``: the six batch files are read into memory by
    name; nothing is extracted."""
    wanted = {f"{BIN_FOLDER}/{name}": name for name in (*TRAIN_FILES, TEST_FILE)}
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                key = member.name.removeprefix("./")
                if key not in wanted or not member.isfile():
                    continue
                label = f"{archive.name}:{key}"
                if member.size > MAX_FILE_BYTES:
                    raise CifarFormatError(_size_message(label, member.size, 10_000 * RECORD))
                handle = tar.extractfile(member)
                blobs[label] = handle.read() if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CifarFormatError(f"CIFAR-10: {archive} is not a readable tar archive ({exc})") from None
    missing = [k for k in wanted if f"{archive.name}:{k}" not in blobs]
    if missing:
        raise CifarFormatError(f"CIFAR-10: {archive} lacks {', '.join(missing)}")
    return _decode({f"{archive.name}:{k}": blobs[f"{archive.name}:{k}"] for k in wanted})  # train 1-5, test


def _size_message(label: str, size: int, expected: int) -> str:
    return (f"CIFAR-10: {label} has {size:,} bytes; expected {expected:,} ({expected // RECORD:,} records of "
            f"{RECORD:,} bytes: a label byte and 3x32x32 pixels). The file is truncated or not CIFAR-10.")


def _decode(blobs: dict[str, bytes]) -> Arrays:
    """Six batch files (five train, then test, in that order) to arrays. All must hold the same
    whole number of records, as in the official distribution (10,000 each)."""
    sizes = [len(b) for b in blobs.values()]
    expected = max(set(sizes), key=sizes.count)  # what most files agree on: 30,730,000 for CIFAR-10
    if expected % RECORD or expected == 0:
        expected = 10_000 * RECORD
    for label, blob in blobs.items():
        if len(blob) != expected:
            raise CifarFormatError(_size_message(label, len(blob), expected))
    parts = []
    for label, blob in blobs.items():
        records = np.frombuffer(blob, dtype=np.uint8).reshape(-1, RECORD)
        y = records[:, 0].astype(np.int64)
        if y.max(initial=0) > 9:
            raise CifarFormatError(f"CIFAR-10: {label} has a label {int(y.max())}; labels are 0 to 9")
        parts.append((records[:, 1:], y))
    train, test = parts[:len(TRAIN_FILES)], parts[len(TRAIN_FILES)]
    return Arrays(_unit(np.concatenate([x for x, _ in train])), np.concatenate([y for _, y in train]),
                  _unit(test[0]), test[1])


def _unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1], with one float copy."""
    out = pixels.astype(np.float32)
    out /= 255.0
    return out
