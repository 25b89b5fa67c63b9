"""Significance page (AppTest): empty store, one run, two side by side, controls, URL round trip."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import open_page_with_runs, query_param, stored_runs
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
    assert len(figs) == 3 + 2  # heatmap, histogram, factor vs activity; the factor section's weights, preference
    heat = figs[0]["data"][0]
    assert heat["type"] == "heatmap" and heat["zmid"] == 1.0
    assert array(heat["z"]).shape == (2, 16)
    assert "ρ = " in " ".join(a["text"] for a in figs[2]["layout"]["annotations"])


def test_two_runs_side_by_side_from_url_and_controls(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "significance", run=f"{ids['ff']},{ids['fgff']}")
    assert not at.exception, at.exception
    assert at.multiselect(key="significance_runs").value == [ids["ff"], ids["fgff"]]
    assert len(charts(at)) == 5 + 4  # FF: heatmap, activity (no histogram of 1s); FGFF: all three; 2 x 2 neurons
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


# -- "Does the factor matter?" (issue 34 item 3) ------------------------------------------------------------

def ablation_charts(at: AppTest) -> list[dict]:
    """The pruning-curve figures (their titles name a removal and a rule)."""
    return [f for f in charts(at) if "goodness only" in f["layout"].get("title", {}).get("text", "")
            or "silenced" in f["layout"].get("title", {}).get("text", "")]


def test_a_finished_fgff_run_shows_the_factor_section_with_its_neurons(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "significance", run=ids["fgff"], orders="s,abs_s")
    assert not at.exception, at.exception
    assert any(h.value == "Does the factor matter?" for h in at.header)
    assert at.button(key="ablation_compute").label == "Compute the pruning curves"
    assert any("press **Compute the pruning curves**" in i.value for i in at.info)  # nothing computed on load
    assert ablation_charts(at) == []
    titles = [f["layout"]["title"]["text"] for f in charts(at)]
    assert "Layer 1: input weights as images" in titles
    assert any(t.startswith("Layer 1: class preference") for t in titles)
    assert at.pills(key="ablation_removals").value == ["goodness_only"]  # the fast default
    assert query_param(at, "removals") == "goodness_only" and query_param(at, "orders") == "s,abs_s"
    captions = " ".join(c.value for c in at.caption)
    assert "input weights" in captions and "one neuron" in captions  # a caption per picture


def test_the_compute_button_draws_the_curves_and_a_verdict_and_a_revisit_needs_no_press(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "significance", run=ids["fgff"], orders="s,random", draws="6")
    assert not at.exception, at.exception
    at.button(key="ablation_compute").click().run()
    assert not at.exception, at.exception
    (curves,) = ablation_charts(at)
    assert curves["layout"]["title"]["text"] == "Network: goodness only, with factors"
    assert [t["name"] for t in curves["data"] if t.get("name")] == ["by s", "at random"]
    verdicts = [m.value for m in at.markdown if m.value.startswith("Removing the 14 of 28 neurons with the smallest")]
    assert len(verdicts) == 1 and "chosen at random cost" in verdicts[0] and "of 6 draws" in verdicts[0]
    assert any(f.startswith("ablation_") and f.endswith(".json") for f in os.listdir(d / ids["fgff"]))
    again = open_page_with_runs(monkeypatch, d, "significance", run=ids["fgff"], orders="s,random", draws="6")
    assert len(ablation_charts(again)) == 1  # the stored result, drawn without a press
    ff = open_page_with_runs(monkeypatch, d, "significance", run=ids["ff"], orders="s,random", draws="6")
    ff.button(key="ablation_compute").click().run()
    assert len(ablation_charts(ff)) == 1
    assert any(c.value.startswith("FF keeps every factor at 1, so 'by s' removes neurons in index order")
               for c in ff.caption)
    again.pills(key="ablation_removals").set_value(["goodness_only", "silenced"]).run()
    assert query_param(again, "removals") == "goodness_only,silenced"
    assert len(ablation_charts(again)) == 0  # new settings: computed on the next press only


def test_a_bad_ablation_value_in_the_link_is_a_warning_not_an_error(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "significance", run=ids["fgff"], draws="3", orders="s,bogus")
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("The link's draws: expected an integer in [5, 100]") for w in warnings), warnings
    assert any(w.startswith("The link's orders:") and "bogus" in w for w in warnings), warnings
    assert at.pills(key="ablation_orders").value == ["s", "abs_s", "activity", "weight_norm", "random"]
    assert not error_texts(at)


def test_the_more_settings_widgets_start_from_the_link_and_write_it_back(monkeypatch, runs_dir):
    """Fractions kept, random draws and seed have widgets (they were settable by the link only)."""
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "significance", run=ids["fgff"], fractions="1,0.5,0.1", draws="7")
    assert not at.exception, at.exception
    assert at.text_input(key="ablation_fractions").value == "1,0.5,0.1"
    assert at.number_input(key="ablation_draws").value == 7 and at.number_input(key="ablation_seed").value == 0
    at.number_input(key="ablation_seed").set_value(3).run()
    at.text_input(key="ablation_fractions").set_value("0.25, 1").run()
    assert query_param(at, "seed") == "3" and query_param(at, "fractions") == "1,0.25"
    at.number_input(key="ablation_draws").set_value(5).run()  # the default again: out of the link
    assert "draws" not in at.query_params
    at.text_input(key="ablation_fractions").set_value("1,2").run()
    assert any(e.startswith("fractions: each fraction kept must be in (0, 1], got '2'") for e in error_texts(at))
    assert "fractions" not in at.query_params  # the default's, used instead, is not written into the link


def test_a_bp_run_gets_a_note_instead_of_curves(runs_dir):
    """The page lists only runs with goodness; the section itself still says why a BP run has no curves."""
    d, ids = runs_dir

    def section(runs_dir: str, run_id: str) -> None:
        from app_pages._significance_ablation import ablation_section
        from fgff_core.store import RunStore

        ablation_section(RunStore(runs_dir), [run_id])

    at = AppTest.from_function(section, args=(str(d), ids["bp"]), default_timeout=60).run()
    assert not at.exception, at.exception
    assert any(c.value == "BP has no goodness and no factors: nothing to remove by s." for c in at.caption), \
        [c.value for c in at.caption]
    assert at.get("plotly_chart") == []


def error_texts(at: AppTest) -> list[str]:
    return [e.value for e in at.error]
