"""The one atomic write: a file appears under its name complete, or not at all.

Everything is written to a hidden temporary file beside the target (``.<name>.<random>.tmp``, in the same
folder so that the rename cannot cross file systems), flushed to the disk, then renamed over the target
with ``os.replace``: a reader sees the old file or the whole new one, never half of one. On any error
(a full disk, a read-only folder, an exception in the caller's block, Ctrl-C) the temporary file is
removed and the target is untouched. A temporary file left by a killed process keeps the ``.tmp``
suffix that ``jobs.worker.remove_temp_files`` sweeps.

- ``atomic_write(path, data)``: bytes or text;
- ``atomic_open(path)``: a file object for writers that want one (``np.savez``, ``zipfile``, ``csv``);
- ``atomic_copy(src, dest)``: a copy of a file;
- ``atomic_path(path)``: the temporary path itself, for writers that only take a path.

Standard library only (no torch, no numpy): any layer may import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .format import size

TEMP_SUFFIX = ".tmp"
_MODES = ("wb", "w")


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A hidden name beside ``path`` that no other writer picks: ``.<name>.<8 hex digits>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # absent, or a folder that turned read-only
        path.unlink()


def _sync(path: Path) -> None:
    """Flush ``path``'s data to the disk before the rename publishes it (a crash then leaves no empty file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; when the block ends without an error, that file
    replaces ``path`` atomically. On an error it is removed and ``path`` is untouched."""
    target = Path(path)
    tmp = temp_path(target)
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None,
                newline: str | None = None) -> Iterator[IO[Any]]:
    """``open(path, mode)`` (``"wb"`` or ``"w"``) that publishes the file only when the block succeeds."""
    if mode not in _MODES:
        raise ValueError(f"mode: {mode!r} is not allowed; choose one of {', '.join(_MODES)}")
    binary = mode == "wb"
    with atomic_path(path) as tmp, open(tmp, "xb" if binary else "x", encoding=None if binary else encoding or "utf-8",
                                        newline=None if binary else newline) as handle:
        yield handle


def atomic_write(path: str | os.PathLike[str], data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, or text in ``encoding``) to ``path`` atomically; returns the path."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_open(path) as handle:
        handle.write(payload)
    return Path(path)


def atomic_copy(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Copy the file ``src`` to ``dest`` atomically; returns ``dest``."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dest)


MAX_CONFIG_BYTES = 1 << 20


def read_config_file(path: Path) -> dict[str, Any]:
    """A JSON config file as a dict; ``ValueError`` in one sentence for anything else."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist" if not path.exists() else "is not a file"
        raise ValueError(f"config: {path} {what}")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValueError(f"config: {path} is larger than {size(MAX_CONFIG_BYTES)}; a config is a small JSON object")
    try:
        values = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"config: {path} is not a JSON object ({type(exc).__name__})") from None
    if not isinstance(values, dict):
        raise ValueError(f"config: {path} holds JSON {type(values).__name__}, expected an object of field values")
    return values
