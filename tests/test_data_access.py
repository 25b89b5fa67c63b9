"""Issue 38, item 6: the app serves only its configured data roots, downloads only into its own folder and names
no server path in its messages (``fgff_core.data.access``); the CLI keeps any folder its user owns."""

from __future__ import annotations

import os

import pytest

from fgff_core.config import RunConfig
from fgff_core.data import access as data_access
from fgff_core.data import loading as data
from fgff_core.data.access import (
    check_served_data_dir,
    load_served,
    load_served_for_config,
    served_config,
    served_data_roots,
)
from fgff_core.data.idx import file_names


@pytest.fixture
def own(tmp_path, monkeypatch):
    """The app's own data folder ($FGFF_DATA_DIR); no $FGFF_DATA_ROOTS."""
    monkeypatch.delenv(data.DATA_ROOTS_ENV, raising=False)
    folder = tmp_path / "own"
    folder.mkdir()
    monkeypatch.setenv(data.DATA_DIR_ENV, str(folder))
    return folder


def test_without_fgff_data_roots_the_app_serves_its_own_data_folders(own, monkeypatch, tmp_path):
    assert served_data_roots() == [own, data.DEFAULT_DATA_DIR]
    monkeypatch.setenv(data.DATA_ROOTS_ENV, str(tmp_path / "shared"))
    assert served_data_roots() == [tmp_path / "shared"]


def test_a_browser_user_may_name_only_folders_inside_the_served_roots(own, tmp_path):
    (own / "escape").symlink_to("/etc")
    for fine in (None, "", own, own / "mnist", data.DEFAULT_DATA_DIR / "mnist"):
        check_served_data_dir(fine)
    for bad in ("/etc", tmp_path, own / ".." / "elsewhere", own / "escape", "relative/folder"):
        with pytest.raises(ValueError) as refused:
            check_served_data_dir(bad)
        message = str(refused.value)
        assert message == data_access.OUTSIDE_ROOTS
        assert "/" not in message  # neither the folder typed nor the server's roots


def test_the_cli_keeps_any_folder_its_user_owns(own, tmp_path):
    data.check_data_dir(tmp_path / "anywhere")  # the library's rule: no limit without $FGFF_DATA_ROOTS


def test_a_config_from_the_browser_is_refused_without_a_path(own):
    with pytest.raises(ValueError, match="^data_dir: ") as outside:
        served_config(RunConfig(dataset="mnist", data_dir="/etc", download=False))
    assert "/etc" not in str(outside.value)
    with pytest.raises(ValueError, match="^download: ") as download:  # never a download into a named folder
        served_config(RunConfig(dataset="mnist", data_dir=str(own), download=True))
    assert str(own) not in str(download.value)
    read_only = RunConfig(dataset="mnist", data_dir=str(own / "mnist"), download=False)
    assert served_config(read_only) is read_only
    assert served_config(RunConfig(dataset="mnist")).download  # the server's own folder may be downloaded into
    assert served_config(RunConfig(dataset="digits", data_dir=str(own))).dataset == "digits"  # nothing to fetch


def test_loading_downloads_only_into_the_servers_own_folder(own, monkeypatch):
    asked = []

    def not_there(name, data_dir=None, download=True, **_options):
        asked.append((data_dir, download))
        raise data.DatasetNotFoundError(f"Dataset {name!r} not found. Looked in:\n  {own}/mnist")

    monkeypatch.setattr(data, "load_dataset", not_there)
    for data_dir in (None, str(own / "mnist")):
        with pytest.raises(ValueError, match="MNIST .* not found") as missing:
            load_served("mnist", data_dir)
        assert str(own) not in str(missing.value) and "Looked in" not in str(missing.value)
        assert "How to provide it" in str(missing.value)  # the how-to names DIR, never a server folder
    assert asked == [(None, True), (str(own / "mnist"), False)]
    with pytest.raises(ValueError, match="outside the data folders"):
        load_served("mnist", "/etc")
    assert len(asked) == 2  # refused before anything was read


def test_damaged_files_are_a_sentence_without_a_path(own):
    folder = own / "mnist"
    folder.mkdir()
    for name in file_names():
        (folder / name).write_bytes(b"\x00\x00\x08\x03 truncated")
    with pytest.raises(ValueError, match="cannot be read") as damaged:
        load_served_for_config(RunConfig(dataset="mnist", data_dir=str(folder), download=False))
    assert "/" not in str(damaged.value)


def test_the_served_loader_reads_what_it_may(own):
    digits = load_served_for_config(RunConfig(dataset="digits", data_dir=os.fspath(own), train_subset=100))
    assert len(digits.y_train) == 100
