"""Significance page (AppTest): empty store, one run, two side by side, controls, URL round trip."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import open_page_with_runs, stored_runs
from streamlit.testing.v1 import AppTest

from fgff_core.config import RunConfig


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """An FF, an FGFF and a BP run, trained in-process through the job worker's code path."""
    d = tmp_path_factory.mktemp("runs")
    algos = ("bp", "ff", "fgff")
    configs = [RunConfig(algo=a, dataset="digits", layers=(16, 12), epochs=4, eval_every=2, eval_subset=200)
               for a in algos]
    ids = stored_runs(d, configs, name="sig")
    return d, dict(zip(algos, ids))




def charts(at: AppTest) -> list[dict]:
    import json

    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def array(value) -> np.ndarray:
    """A plotly JSON array: a list, or plotly's typed-array dict (base64 ``bdata``, ``dtype``, ``shape``)."""
    if isinstance(value, dict):
        import base64

        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return out.reshape([int(n) for n in str(shape).split(",")]) if shape else out
    return np.asarray(value, dtype=float)


def test_empty_store(monkeypatch, tmp_path):
    at = open_page_with_runs(monkeypatch, tmp_path / "empty", "significance")
    assert not at.exception
    assert at.title[0].value == "Significance"
    assert any("No FF or FGFF runs yet" in i.value for i in at.info)


def test_defaults_to_newest_fgff_run(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "significance")
    assert not at.exception, at.exception
    assert at.multiselect(key="significance_runs").value == [ids["fgff"]]
    assert ids["bp"] not in at.multiselect(key="significance_runs").options  # BP has no factors
    figs = charts(at)
    assert len(figs) == 3  # heatmap, histogram, factor vs activity
    heat = figs[0]["data"][0]
    assert heat["type"] == "heatmap" and heat["zmid"] == 1.0
    assert array(heat["z"]).shape == (2, 16)
    assert "ρ = " in " ".join(a["text"] for a in figs[2]["layout"]["annotations"])


def test_two_runs_side_by_side_from_url_and_controls(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "significance", run=f"{ids['ff']},{ids['fgff']}")
    assert not at.exception, at.exception
    assert at.multiselect(key="significance_runs").value == [ids["ff"], ids["fgff"]]
    assert len(charts(at)) == 5  # FF: heatmap and activity (no histogram of 1s); FGFF: all three
    assert any("frozen at 1" in c.value for c in at.caption)
    # Issue 15 case 11: the factors said out loud: FF's are all 1, FGFF's negative ones counted per layer
    sentences = [m.value for m in at.markdown]
    assert any(t.startswith("Every factor is 1") for t in sentences)
    assert any("below 0" in t for t in sentences), sentences
    assert charts(at)[0]["data"][0]["colorbar"]["title"]["text"] == "significance<br>factor"
    at.slider(key="significance_epoch").set_value(2).run()
    assert not at.exception
    assert "after epoch 2" in charts(at)[0]["layout"]["title"]["text"]
    at.radio[1].set_value("per-layer").run()
    at.toggle[0].set_value(True).run()
    assert not at.exception
    assert charts(at)[0]["layout"]["xaxis"]["title"]["text"].startswith("neurons sorted")
    assert "1 + (s-1)" not in charts(at)[0]["data"][0]["colorbar"]["title"]["text"]  # words, not the formula
    at.radio[0].set_value("Animation").run()
    assert not at.exception
    assert charts(at)[2]["frames"]  # the FGFF heatmap is animated over its epochs


def test_selection_written_to_url(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "significance", run="unknownid123")
    assert at.multiselect(key="significance_runs").value == [ids["fgff"]]
    at.multiselect(key="significance_runs").select(ids["ff"]).run()
    value = at.query_params["run"]
    assert (value[0] if isinstance(value, list) else value) == f"{ids['fgff']},{ids['ff']}"
