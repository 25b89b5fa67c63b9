"""Uploaded checkpoints (fgff_core.uploads): what a file is not, without server paths."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save

from fgff_core.uploads import MAX_RUN_NAME, run_name_from_file, upload_problem, without_paths


def test_a_text_file_renamed_safetensors_is_named_for_what_it_is_not():
    problem = upload_problem("notes.safetensors", b"hello, this is a text file\n")
    assert problem.startswith("notes.safetensors is not a safetensors checkpoint")
    assert "pickle" not in problem and "/tmp" not in problem
    assert upload_problem("x.safetensors", b"") is not None


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
