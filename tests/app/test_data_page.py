"""Data page in AppTest: samples for the embedded data, the prediction rule for a trained run."""

from __future__ import annotations

from conftest import open_page
from streamlit.testing.v1 import AppTest


def app(**params) -> AppTest:
    return open_page("data", **params)


def test_samples_on_empty_store(runs_dir):
    at = app()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1  # the positive/negative samples
    assert any("No finished FF or FGFF run" in i.value for i in at.info)
    at.slider(key="n").set_value(3).run()
    assert not at.exception


def test_prediction_rule_for_a_trained_run(runs_dir, finished_run):
    at = app(run=finished_run)
    assert not at.exception
    assert at.selectbox(key="rule_run").value == finished_run
    assert len(at.get("plotly_chart")) == 3  # samples, the test image, the goodness bars
    at.number_input(key="sample_index").set_value(5).run()
    assert not at.exception


def test_missing_dataset_is_an_error_in_the_page(runs_dir, monkeypatch, tmp_path):
    from fgff_core.data import loading as data

    def no_files(*_a, **_k):
        raise data.DatasetNotFoundError("Dataset 'mnist' not found. How to provide it: put the files in DIR.")

    monkeypatch.setattr(data, "load_dataset", no_files)
    import streamlit as st

    st.cache_resource.clear()  # the page keeps loaded datasets: forget the digits of earlier tests
    at = app()
    assert not at.exception
    assert any("not found" in e.value and "How to provide it" in e.value for e in at.error)


def test_a_dataset_from_files_offers_the_data_folder(runs_dir, monkeypatch, tmp_path):
    """Issue 15 case 7: a browser user cannot 'pass --data-dir': the page has the field, under the server's policy."""
    allowed = tmp_path / "datasets"
    allowed.mkdir()
    monkeypatch.setenv("FGFF_DATA_ROOTS", str(allowed))
    at = app()
    assert "data_dir" not in {w.key for w in at.text_input}  # digits is embedded
    at.selectbox(key="ds").set_value("mnist").run()
    assert at.text_input(key="data_dir").label == "Data folder"
    at.text_input(key="data_dir").input(str(tmp_path / "elsewhere")).run()
    assert not at.exception
    assert any("outside the data folders this server allows" in e.value for e in at.error)
    at.text_input(key="data_dir").input(str(allowed)).run()
    assert any("MNIST" in e.value or "mnist" in e.value for e in at.error)  # allowed, but no files there
    assert not any("outside the data folders" in e.value for e in at.error)
