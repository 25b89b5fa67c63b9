"""Issue 38, item 6: a browser user names only this server's data folders (form, URL, a stored run's config), is
never downloaded into a folder they named, and reads no server path in the app's messages."""

from __future__ import annotations

import pytest
from conftest import open_page

from fgff_core.config import RunConfig
from fgff_core.engine.checkpoint import save_checkpoint
from fgff_core.engine.model import FFNet
from fgff_core.store import RunStore, import_checkpoint

FORBIDDEN = "/etc"


@pytest.fixture
def own_data(tmp_path, monkeypatch):
    """The app's configured data folder ($FGFF_DATA_DIR), holding no dataset; no $FGFF_DATA_ROOTS."""
    monkeypatch.delenv("FGFF_DATA_ROOTS", raising=False)
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("FGFF_DATA_DIR", str(folder))
    return folder


def messages(at) -> list[str]:
    """What the page says: its errors, warnings, infos, captions and text."""
    kinds = ("error", "warning", "info", "caption", "markdown", "success")
    return [e.value for kind in kinds for e in getattr(at, kind)]


def assert_refused_without_a_path(at, *paths) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert any("outside the data folders this server allows" in e.value for e in at.error), [e.value for e in at.error]
    for text in messages(at):
        for path in (FORBIDDEN, *map(str, paths)):
            assert path not in text, text


def test_a_link_naming_a_server_folder_is_refused_with_a_sentence_and_no_path(runs_dir, own_data, jm):
    at = open_page("train", dataset="mnist", data_dir=FORBIDDEN, download="false")
    assert_refused_without_a_path(at, own_data)
    start = next(b for b in at.button if b.label == "Start training")
    assert start.disabled
    assert jm.store.runs().empty


def test_a_named_data_folder_is_never_downloaded_into(runs_dir, own_data):
    at = open_page("train", dataset="mnist", data_dir=str(own_data / "mnist"))  # download is on by default
    assert not at.exception
    assert any("download: this server downloads datasets only into its own data folder" in e.value
               for e in at.error)
    assert next(b for b in at.button if b.label == "Start training").disabled
    assert not (own_data / "mnist").exists()


def test_the_data_page_refuses_a_folder_outside_the_served_roots(runs_dir, own_data):
    at = open_page("data")
    at.selectbox(key="ds").set_value("mnist").run()
    at.text_input(key="data_dir").input(FORBIDDEN).run()
    assert_refused_without_a_path(at, own_data)


def test_a_stored_runs_config_cannot_name_a_server_folder(runs_dir, own_data, tmp_path):
    """An uploaded checkpoint carries its own config: its data folder is refused too, when the page reads data."""
    path = tmp_path / "upload.safetensors"
    save_checkpoint(path, FFNet(784, (4,), 10), RunConfig(dataset="mnist", layers=(4,), data_dir=FORBIDDEN))
    run_id = import_checkpoint(RunStore(runs_dir), path, name="uploaded")
    at = open_page("data", run=run_id)
    assert_refused_without_a_path(at, own_data, tmp_path)


def _failed_run(store: RunStore, own_data, seed: int) -> str:
    """A run that failed as a worker fails it when MNIST is missing: its reason lists where it looked."""
    run_id = store.create_run(RunConfig(dataset="mnist", download=False, seed=seed), name=f"no mnist here {seed}")
    assert store.queue.claim(run_id)
    writer = store.writer(run_id)
    writer.finish("failed", error=f"Dataset 'mnist' not found, and download is off.\nLooked in:\n  {own_data}\n"
                                  f"  {own_data}/MNIST/raw\nHow to provide it: put the files in DIR/mnist.")
    writer.close()
    return run_id


def test_a_failed_runs_reason_is_shown_without_server_paths(runs_dir, own_data):
    store = RunStore(runs_dir)
    run_ids = ",".join(_failed_run(store, own_data, seed) for seed in (0, 1))  # Compare shows two runs or more
    for page in ("train", "runs", "compare"):
        at = open_page(page, run=run_ids)
        assert not at.exception
        shown = [e.value for e in at.error if "not found" in e.value]
        assert shown and all(str(own_data) not in text and "DIR/mnist" in text for text in shown), (page, shown)
