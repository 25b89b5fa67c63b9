"""Issue 38, item 7: what a browser user sees when the server's run store, settings or files are broken:
a sentence on the page, never an exception, a traceback or a server path."""

from __future__ import annotations

import shutil

import pytest
from conftest import ROOT, open_page

PAGES = ("train", "compare", "significance", "features", "data", "runs")  # every page that opens the run store


def shown_text(at) -> str:
    """Everything the page would send to the browser, as text (every element of the main area and sidebar)."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    return "\n".join(parts)


def assert_a_sentence_without_server_details(at, sentence: str, *server_paths) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert any(sentence in e.value for e in at.error), [e.value for e in at.error]
    text = shown_text(at)
    assert "Traceback" not in text
    for path in (str(ROOT), *map(str, server_paths)):
        assert path not in text


def _damaged_store(runs_dir) -> None:
    """A run database whose pages after the header are overwritten: SQLite reports it as malformed."""
    from fgff_core.store import RunStore

    store = RunStore(runs_dir)
    db = store.db_path
    raw = bytearray(db.read_bytes())
    raw[100:] = b"\xa5" * (len(raw) - 100)
    db.write_bytes(bytes(raw))


@pytest.mark.parametrize("name", PAGES)
def test_a_damaged_run_store_is_a_sentence_on_every_page(runs_dir, name):
    _damaged_store(runs_dir)
    at = open_page(name)
    assert_a_sentence_without_server_details(at, "The run store of this server cannot be opened", runs_dir)


@pytest.mark.parametrize("name", PAGES)
def test_an_invalid_fgff_executor_is_a_sentence_on_every_page(runs_dir, monkeypatch, name):
    monkeypatch.setenv("FGFF_EXECUTOR", "bogus")
    at = open_page(name)
    assert_a_sentence_without_server_details(at, "This server's settings are not valid", runs_dir)
    assert not runs_dir.exists()  # refused before the store created anything


def test_the_data_page_says_when_a_finished_runs_checkpoint_is_missing(runs_dir, finished_run):
    shutil.rmtree(runs_dir / finished_run)  # the run's folder, with its model.safetensors, is gone
    at = open_page("data", run=finished_run)
    assert_a_sentence_without_server_details(at, f"The model of run {finished_run} cannot be loaded", runs_dir)


def test_the_apps_streamlit_config_shows_users_no_error_details():
    """An exception no page catches shows Streamlit's generic message: no type, message or traceback (``false``
    would still show the traceback: it is the deprecated spelling of "stacktrace")."""
    import tomllib
    from streamlit import config

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["client"]["showErrorDetails"] == config.ShowErrorDetailsConfigOptions.NONE
