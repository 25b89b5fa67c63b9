"""Runs page in AppTest: empty store, stored runs, selection in the URL, rename, delete with confirmation."""

from __future__ import annotations

import json

import pandas as pd
from conftest import TINY, open_page, stored_runs
from streamlit.testing.v1 import AppTest

from fgff_core.config import RunConfig
from fgff_core.engine.checkpoint import save_checkpoint
from fgff_core.engine.model import FFNet
from fgff_core.store import import_checkpoint


def app(**params) -> AppTest:
    return open_page("runs", **params)


def test_empty_store(runs_dir):
    at = app()
    assert not at.exception
    assert any("No runs yet" in i.value for i in at.info)


def test_lists_runs_and_opens_the_one_in_the_url(runs_dir, finished_run):
    at = app()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["run_id"]) == [finished_run] and table["status"].iloc[0] == "done"
    assert 0 < table["test_acc"].iloc[0] <= 100  # percent
    assert any("Select one or more rows" in i.value for i in at.info)

    at = app(run=finished_run)
    assert not at.exception
    assert any(h.value == f"tiny fgff · {finished_run}" for h in at.subheader)  # the id tells duplicates apart
    assert at.text_input(key=f"name_{finished_run}").max_chars == 200  # a visible counter, not a silent cut
    labels = [b.label for b in at.get("download_button")]
    assert {"Metrics CSV", "Config JSON", "Checkpoint"} <= set(labels)
    assert at.get("plotly_chart")


def test_the_table_has_no_ff_accuracy_without_s(runs_dir):
    # FF keeps s at 1: its accuracy without s would only repeat its accuracy.
    ids = stored_runs(runs_dir, [RunConfig(**{**TINY, "algo": a}) for a in ("ff", "fgff")])
    table = app().dataframe[0].value.set_index("run_id")
    assert pd.isna(table.loc[ids[0], "test_acc_no_significance"]) and 0 < table.loc[ids[0], "test_acc"] <= 100
    assert 0 < table.loc[ids[1], "test_acc_no_significance"] <= 100


def test_a_simultaneous_run_shows_each_layers_accuracy_beside_the_network(runs_dir):
    (run_id,) = stored_runs(runs_dir, [RunConfig(**{**TINY, "schedule": "simultaneous"})], name="simultaneous")
    at = app(run=run_id)
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    per_layer = next(s for s in specs if "each layer on its own" in s["layout"]["title"]["text"])
    names = [t["name"] for t in per_layer["data"]]
    assert names[:4] == ["layer 1, test", "layer 1, train", "layer 2, test", "layer 2, train"]
    assert names[-1].startswith("network")


def test_rename_and_delete_with_confirmation(runs_dir, finished_run, jm):
    at = app(run=finished_run)
    at.text_input(key=f"name_{finished_run}").input("renamed run").run()
    assert jm.store.run(finished_run)["name"] == "renamed run"
    delete = next(b for b in at.button if b.label == "Delete")
    assert delete.disabled  # needs the confirmation box first
    at.checkbox(key=f"confirm_{finished_run}").check().run()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not at.exception
    assert jm.store.runs().empty
    assert any("Deleted run" in s.value for s in at.success)


def test_checkpoint_import_path_through_the_manager(runs_dir, jm, tmp_path):
    # file_uploader cannot be driven by AppTest; the page hands the file to import_checkpoint, checked here.
    cfg = RunConfig(algo="fgff", dataset="digits", layers=(8,))
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, FFNet(64, (8,), 10), cfg)
    run_id = import_checkpoint(jm.store, path, name="uploaded")
    at = app(run=run_id)
    assert not at.exception
    assert any(h.value == f"uploaded · {run_id}" for h in at.subheader)
    # Issue 15 case 17: an imported run says it has no metrics instead of "No evaluation yet" forever
    assert any("without metrics" in i.value for i in at.info)
    assert not at.get("plotly_chart")
