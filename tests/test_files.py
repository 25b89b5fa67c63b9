"""fgff_core._files: the one atomic write (issue 35 item 6: six copies of "temp file, then os.replace").
A reader sees the old file or the whole new one; an error leaves the target untouched and no temp file."""

from __future__ import annotations

import fnmatch
import os

import numpy as np
import pytest

from fgff_core._files import atomic_copy, atomic_open, atomic_path, atomic_write, temp_path


class Boom(Exception):
    pass


def test_atomic_write_writes_bytes_and_text_and_leaves_only_the_file(tmp_path):
    assert atomic_write(tmp_path / "a.bin", b"\x00\x01") == tmp_path / "a.bin"
    atomic_write(tmp_path / "b.txt", "µ s\n")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "µ s\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt"]


def test_the_old_file_stays_whole_until_the_new_one_replaces_it(tmp_path):
    target = tmp_path / "run.npz"
    target.write_bytes(b"old")
    with atomic_open(target) as handle:
        handle.write(b"new, longer content")
        handle.flush()
        assert target.read_bytes() == b"old"  # mid-write: the name still holds the old file
    assert target.read_bytes() == b"new, longer content"
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_a_reader_holding_the_old_file_keeps_reading_it_whole(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old" * 1000)
    with open(target, "rb") as reader:
        atomic_write(target, b"new")
        assert reader.read() == b"old" * 1000  # a rename, not a rewrite in place
    assert target.read_bytes() == b"new"


@pytest.mark.parametrize("existing", [True, False], ids=["over-a-file", "new-file"])
def test_an_error_while_writing_leaves_no_partial_file_and_no_temp(tmp_path, existing):
    target = tmp_path / "significance.npz"
    if existing:
        target.write_bytes(b"old")
    with pytest.raises(Boom), atomic_open(target) as handle:
        handle.write(b"half of it")
        raise Boom
    assert [p.name for p in tmp_path.iterdir()] == (["significance.npz"] if existing else [])
    if existing:
        assert target.read_bytes() == b"old"


def test_a_failing_writer_that_takes_a_path_leaves_nothing(tmp_path):
    target = tmp_path / "export.zip"
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise Boom
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_raises_the_os_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "missing-folder" / "x.bin"
    with pytest.raises(FileNotFoundError):
        atomic_write(target, b"x")
    assert list(tmp_path.iterdir()) == []


def test_numpy_and_text_writers_get_a_file_object(tmp_path):
    with atomic_open(tmp_path / "a.npz") as handle:
        np.savez(handle, x=np.arange(3))
    with np.load(tmp_path / "a.npz") as f:
        assert f["x"].tolist() == [0, 1, 2]
    with atomic_open(tmp_path / "a.csv", "w", newline="") as handle:
        handle.write("a,b\r\n")
    assert (tmp_path / "a.csv").read_bytes() == b"a,b\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.npz"]


def test_atomic_copy_copies_or_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(1 << 16))
    assert atomic_copy(src, tmp_path / "dest.bin") == tmp_path / "dest.bin"
    assert (tmp_path / "dest.bin").read_bytes() == src.read_bytes()
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "absent.bin", tmp_path / "other.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest.bin", "src.bin"]


def test_the_temp_file_is_hidden_beside_the_target_and_swept_as_tmp(tmp_path):
    tmp = temp_path(tmp_path / "checkpoint.safetensors")
    assert tmp.parent == tmp_path and tmp != temp_path(tmp_path / "checkpoint.safetensors")
    assert fnmatch.fnmatch(tmp.name, ".checkpoint.safetensors.*.tmp")  # what jobs.worker.remove_temp_files removes


def test_only_write_modes_are_allowed(tmp_path):
    with pytest.raises(ValueError, match="mode: 'ab' is not allowed; choose one of wb, w"), \
            atomic_open(tmp_path / "x", "ab"):
        pass
    assert list(tmp_path.iterdir()) == []
