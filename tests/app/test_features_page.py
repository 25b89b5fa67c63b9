"""Features page (AppTest): empty store, background t-SNE picked up on a later run, cache, URL round trip."""

from __future__ import annotations

import re
import time

import pytest
from conftest import open_page_with_runs, query_param, stored_runs
from streamlit.testing.v1 import AppTest

from fgff_core.analysis.embeddings import Embedding
from fgff_core.config import RunConfig


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """A finished FF and FGFF run, trained in-process through the job worker's code path."""
    d = tmp_path_factory.mktemp("runs")
    algos = ("ff", "fgff")
    configs = [RunConfig(algo=a, dataset="digits", layers=(16, 12), epochs=5, eval_every=0) for a in algos]
    ids = stored_runs(d, configs, name="feat")
    return d, dict(zip(algos, ids))






def rerun_until_charts(at: AppTest, n: int, timeout: float = 90.0) -> AppTest:
    """AppTest does not fire the fragment's run_every timer: run the page again until the maps are there."""
    deadline = time.monotonic() + timeout
    while len(at.get("plotly_chart")) < n and time.monotonic() < deadline:
        assert not at.exception, at.exception
        time.sleep(0.5)
        at.run()
    return at


def test_empty_store(monkeypatch, tmp_path):
    at = open_page_with_runs(monkeypatch, tmp_path / "empty", "features")
    assert not at.exception
    assert at.title[0].value == "Features (t-SNE)"
    assert any("No finished runs" in i.value for i in at.info)


def test_ff_and_fgff_side_by_side_computed_in_background(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "features", samples="250", layer="2")
    assert not at.exception, at.exception
    # Defaults: the newest FF and FGFF runs side by side; the maps start computing, the page does not block.
    assert at.multiselect(key="features_runs").value == [ids["ff"], ids["fgff"]]
    assert at.selectbox(key="features_layer").value == 1
    assert sum("Computing the t-SNE of layer 2" in i.value for i in at.info) == 2
    at = rerun_until_charts(at, 2)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2
    names = [m.label for m in at.metric]
    assert names.count("Silhouette") == 2 and names.count("5-NN, layer") == 2
    assert at.metric[3].proto.delta  # the FGFF column shows its difference to FF
    assert re.fullmatch(r"[+-]\d+\.\d points", at.metric[4].proto.delta)  # accuracies: in points (format.points)
    for rid in ids.values():  # cached per (run, layer) in the run's folder
        emb = Embedding.load(d / rid / "tsne_layer1.npz")
        assert emb.layer == 1 and emb.n_samples == 250
    assert query_param(at, "run") == f"{ids['ff']},{ids['fgff']}"
    assert query_param(at, "layer") == "2" and query_param(at, "samples") == "250"
    # Issue 15 case 12: never more samples than digits' 450 test images; why 5-NN can beat the goodness rule
    assert list(at.select_slider(key="features_samples").options) == ["250", "450"]
    assert any("5-NN accuracy in the layer can exceed" in c.value for c in at.caption)
    # A fresh session (a shared link) finds the cached maps at once.
    again = open_page_with_runs(monkeypatch, d, "features", run=query_param(at, "run"), layer="2", samples="250")
    assert not again.exception and len(again.get("plotly_chart")) == 2


def test_layer_switch_and_bad_link(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "features", run=ids["fgff"], layer="9", samples="7")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "layer=9" in warnings and "samples=7" in warnings
    assert at.multiselect(key="features_runs").value == [ids["fgff"]]
    at.select_slider(key="features_samples").set_value(250)
    at.selectbox(key="features_layer").set_value(0).run()
    assert not at.exception and query_param(at, "layer") == "1"
    at = rerun_until_charts(at, 1)
    assert "layer 1" in at.get("plotly_chart")[0].proto.spec
