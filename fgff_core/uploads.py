"""An uploaded checkpoint, checked before the store opens it: what the file is not, in a sentence that
names the file the user picked and no server path. No Streamlit here."""

from __future__ import annotations

import re
from pathlib import Path

MAX_RUN_NAME = 200  # the store keeps at most this many characters of a run's name
_PICKLE_START = b"\x80"  # pickle protocol 2+ (torch.save's legacy format)
_ZIP_START = b"PK\x03\x04"  # torch.save's default zip container


def upload_problem(file_name: str, data: bytes) -> str | None:
    """Why ``data`` cannot be a safetensors checkpoint, or None when its header looks like one.

    A safetensors file starts with an 8-byte little-endian header length, then that many bytes of
    JSON beginning with ``{``.
    """
    if data.startswith(_ZIP_START) or data.startswith(_PICKLE_START):
        return (f"{file_name} is a PyTorch (torch.save / pickle) file, not a safetensors checkpoint: such files "
                "are refused because opening them can run code. Save the model with "
                "`python -m fgff_core train --save model.safetensors`, or download it from this app.")
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if size < 2 or size > len(data) - 8 or data[8:9] != b"{":
        return (f"{file_name} is not a safetensors checkpoint (it does not start with a safetensors header). "
                "Upload a .safetensors file saved by this app or by `python -m fgff_core train --save`.")
    return None


def without_paths(message: str, *paths: str | Path) -> str:
    """``message`` with the given server paths (and any absolute path under them) taken out."""
    for path in sorted((str(p) for p in paths), key=len, reverse=True):
        message = re.sub(re.escape(path.rstrip("/")) + r"/?\S*", "<upload>", message)
    return message


def run_name_from_file(file_name: str) -> str:
    """A run name from an uploaded file's name: its stem, at most ``MAX_RUN_NAME`` characters."""
    return (Path(file_name).stem.strip() or "imported checkpoint")[:MAX_RUN_NAME]
