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
    JSON beginning with ``{``. That is decided first: the header length's first byte can be anything,
    0x80 (a pickle's first byte) included, so only a file that is not safetensors is named for what
    it starts like.
    """
    if _has_safetensors_header(data):
        return None
    if data.startswith(_ZIP_START) or data.startswith(_PICKLE_START):
        return (f"{file_name} is a PyTorch (torch.save / pickle) file, not a safetensors checkpoint: such files "
                "are refused because opening them can run code. Save the model with "
                "`python -m fgff_core train --save model.safetensors`, or download it from this app.")
    return (f"{file_name} is not a safetensors checkpoint (it does not start with a safetensors header). "
            "Upload a .safetensors file saved by this app or by `python -m fgff_core train --save`.")


def _has_safetensors_header(data: bytes) -> bool:
    """An 8-byte little-endian length that fits in ``data``, then a JSON object of that length: ``{``
    to ``}``, padded with spaces as safetensors pads it."""
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 2 <= size <= len(data) - 8:
        return False
    header = data[8:8 + size].rstrip(b" ")
    return header.startswith(b"{") and header.endswith(b"}")


def without_paths(message: str, *paths: str | Path) -> str:
    """``message`` with the given server paths (and any absolute path under them) taken out."""
    for path in sorted((str(p) for p in paths), key=len, reverse=True):
        message = re.sub(re.escape(path.rstrip("/")) + r"/?\S*", "<upload>", message)
    return message


def run_name_from_file(file_name: str) -> str:
    """A run name from an uploaded file's name: its stem, at most ``MAX_RUN_NAME`` characters."""
    return (Path(file_name).stem.strip() or "imported checkpoint")[:MAX_RUN_NAME]
