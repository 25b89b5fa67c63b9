"""Uploaded checkpoints (fgff_core.store.uploads): what a file is not, without server paths."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save

from fgff_core.store.uploads import MAX_RUN_NAME, run_name_from_file, upload_problem, without_paths


def test_a_text_file_renamed_safetensors_is_named_for_what_it_is_not():
    problem = upload_problem("notes.safetensors", b"hello, this is a text file\n")
    assert problem.startswith("notes.safetensors is not a safetensors checkpoint")
    assert "pickle" not in problem and "/tmp" not in problem
    assert upload_problem("x.safetensors", b"").startswith("x.safetensors is not a safetensors checkpoint")  # empty


def test_a_pickle_is_called_a_pickle_and_a_real_safetensors_passes():
    assert "torch.save / pickle" in upload_problem("m.safetensors", b"PK\x03\x04rest of a zip")
    assert "torch.save / pickle" in upload_problem("m.safetensors", b"\x80\x02}q\x00.")
    real = save({"w": torch.zeros(2)}, metadata={"format": json.dumps("x")})
    assert upload_problem("m.safetensors", real) is None


def test_paths_are_taken_out_of_messages_and_names_are_capped():
    msg = "upload.safetensors is not valid (/tmp/tmpab12/upload.safetensors: header too large)"
    assert without_paths(msg, "/tmp/tmpab12") == "upload.safetensors is not valid (<upload> header too large)"
    assert len(run_name_from_file("a" * 500 + ".safetensors")) == MAX_RUN_NAME
    assert run_name_from_file("my run.safetensors") == "my run"


# -- the header decides, not the first byte (issue 38, item 1) ------------------------------------

from fgff_core.config import RunConfig  # noqa: E402
from fgff_core.engine.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from fgff_core.engine.model import FFNet  # noqa: E402


def _with_header_length(checkpoint: bytes, low_byte: int) -> bytes:
    """``checkpoint`` with its JSON header padded with spaces (as safetensors pads it) until the header
    length's low byte is ``low_byte``; the tensors' offsets count from the header's end, so they hold."""
    size = int.from_bytes(checkpoint[:8], "little")
    header = checkpoint[8:8 + size] + b" " * ((low_byte - size) % 256)
    return len(header).to_bytes(8, "little") + header + checkpoint[8 + size:]


def test_a_genuine_checkpoint_passes_whatever_the_low_byte_of_its_header_length(tmp_path):
    config = RunConfig(dataset="digits", layers=(8,), epochs=1)
    saved = save_checkpoint(tmp_path / "m.safetensors", FFNet(64, config.layers, 10), config).read_bytes()
    for low_byte in range(256):
        data = _with_header_length(saved, low_byte)
        assert data[0] == low_byte
        assert upload_problem("m.safetensors", data) is None, f"header length low byte {low_byte:#04x}"
        path = tmp_path / f"{low_byte}.safetensors"
        path.write_bytes(data)
        assert load_checkpoint(path)[1] == config  # genuine: the loader takes every one of them


def _saved_checkpoints(folder):
    """Checkpoints from the project's own save path: the issue's 8x1000 digits run first (header
    length 3200 = 0xC80 when it was filed), then small networks whose header lengths step through
    other values (more layers, longer lr spellings)."""
    candidates = [((1000,) * 8, 0.03)] + [((10,) * n, float("0." + "123456789"[:k]))
                                          for n in range(1, 17) for k in range(1, 10)]
    for layers, lr in candidates:
        config = RunConfig(dataset="digits", layers=layers, epochs=2, lr=lr)
        yield save_checkpoint(folder / "m.safetensors", FFNet(64, layers, 10), config).read_bytes()


def test_the_issue_case_a_saved_checkpoint_with_header_length_0x80_passes(tmp_path):
    data = next((d for d in _saved_checkpoints(tmp_path) if d[0] == 0x80), b"")
    assert data[:1] == b"\x80", "no saved checkpoint had a header length ending in 0x80"
    assert upload_problem("m.safetensors", data) is None


def test_pickle_and_zip_starts_are_still_refused_as_torch_save_files():
    import io
    import pickle

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)  # a zip container
    pickled = [pickle.dumps({"w": [0.0] * n}, protocol=p) for p in (2, 3, 4, 5) for n in (1, 100, 10_000)]
    for data in (buffer.getvalue(), *pickled, b"\x80" + b"\0" * 7 + b"{}"):
        assert "torch.save / pickle" in upload_problem("m.safetensors", data)
