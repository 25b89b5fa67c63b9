"""Train page in AppTest: renders, validates, round-trips the config through the URL, runs a job."""

from __future__ import annotations

import time

from conftest import TINY, open_page
from streamlit.testing.v1 import AppTest

from fgff_core.config import DEFAULT_LR, RunConfig
from fgff_core.config_form import config_from_params, form_fields

TIMEOUT = 60


def app(**params) -> AppTest:
    return open_page("train", **params)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_renders_on_empty_store_with_device_and_every_config_field(runs_dir):
    at = app()
    assert not at.exception
    assert any("Device: **CPU**" in c.value for c in at.caption)
    assert any("Start training" in i.value for i in at.info)
    keys = {w.key for kind in ("selectbox", "number_input", "text_input", "toggle") for w in at.get(kind)}
    assert {f"cfg_{f.name}" for f in form_fields()} <= keys  # the form is the whole schema
    assert errors(at) == []
    assert dict(at.query_params) == {}  # defaults: nothing in the URL


def test_widgets_take_range_and_help_from_the_schema(runs_dir):
    at = app()
    epochs = at.number_input(key="cfg_epochs")
    meta = next(f for f in form_fields() if f.name == "epochs")
    assert epochs.min == meta.min and epochs.max == meta.max and epochs.help == meta.help
    assert list(at.selectbox(key="cfg_algo").options) == ["ff", "fgff", "bp"]


def test_bad_values_show_the_config_error_and_disable_start(runs_dir):
    at = app()
    at.text_input(key="cfg_layers").input("100,abc").run()
    assert any("layers" in e for e in errors(at)), errors(at)
    assert button(at, "Start training").disabled
    at.text_input(key="cfg_layers").input("100").run()
    at.number_input(key="cfg_threshold").set_value(0.0).run()  # min is open: (0, 1000]
    assert any("threshold" in e and "out of range" in e for e in errors(at)), errors(at)
    at.number_input(key="cfg_threshold").set_value(1.5).run()
    assert errors(at) == [] and not button(at, "Start training").disabled
    assert not at.exception


def test_query_params_fill_the_form_and_edits_go_back_to_the_url(runs_dir):
    at = app(algo="ff", epochs="7", layers="30,20", label_value="max")
    assert at.selectbox(key="cfg_algo").value == "ff"
    assert at.number_input(key="cfg_epochs").value == 7
    assert at.text_input(key="cfg_layers").value == "30,20"
    at.number_input(key="cfg_seed").set_value(5).run()
    params = {k: v[-1] if isinstance(v, list) else v for k, v in dict(at.query_params).items()}
    assert config_from_params(params) == RunConfig(algo="ff", epochs=7, layers=(30, 20), label_value="max", seed=5)
    assert params["seed"] == "5"
    # ... and that URL opens the same form again
    again = app(**params)
    assert again.number_input(key="cfg_seed").value == 5 and again.text_input(key="cfg_layers").value == "30,20"


def test_bad_link_shows_an_error_and_the_defaults(runs_dir):
    at = app(epochs="lots")
    assert any("epochs" in e for e in errors(at))
    assert at.number_input(key="cfg_epochs").value == RunConfig().epochs
    assert not at.exception


def test_preset_fills_the_form_and_algo_switch_moves_lr_default(runs_dir):
    at = app()
    at.selectbox(key="preset").set_value("tiny-digits").run()
    button(at, "Load preset").click().run()
    assert at.text_input(key="cfg_layers").value == "20,20"
    at.selectbox(key="cfg_algo").set_value("bp").run()
    assert at.number_input(key="cfg_lr").value == DEFAULT_LR["bp"]
    assert at.number_input(key="cfg_batch_size").value == RunConfig(algo="bp").batch_size


def test_start_runs_a_job_and_shows_live_then_final_results(runs_dir, jm):
    at = app(**{k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in TINY.items()})
    button(at, "Start training").click().run()
    assert not at.exception and errors(at) == []
    run_id = at.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    assert jm.store.run(run_id)["config"]["layers"] == TINY["layers"]
    assert len(at.get("plotly_chart")) == 3  # goodness, loss, accuracy (empty until the first epoch)
    assert jm.wait(run_id, timeout=120) == "done"
    at.run()  # AppTest does not fire run_every timers: rerun by hand
    labels = [m.label for m in at.metric]
    assert "Test accuracy" in labels and "Test accuracy without significance" in labels
    assert "Time per epoch (median)" in labels
    assert at.get("progress")[0].proto.value == 100
    acc = next(m for m in at.metric if m.label == "Test accuracy").value
    assert acc.endswith("%") and 0 < float(acc.split()[0]) <= 100


def test_refresh_reattaches_to_the_run_in_the_url(runs_dir, finished_run):
    at = app(run=finished_run)
    assert not at.exception
    assert any("tiny fgff" in h.value for h in at.subheader)
    assert len(at.get("plotly_chart")) == 3


def test_unknown_run_in_url_is_a_warning_not_a_crash(runs_dir):
    at = app(run="0123456789ab")
    assert not at.exception
    assert any("does not exist" in w.value for w in at.warning)


def test_failed_job_shows_its_reason(runs_dir, jm, tmp_path):
    at = app(dataset="mnist", data_dir=str(tmp_path / "empty"), download="false", epochs="1", layers="5")
    assert any("MNIST" in i.value for i in at.info)  # how to get it, before starting
    button(at, "Start training").click().run()
    run_id = at.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    deadline = time.time() + 60
    while jm.store.status(run_id) in ("queued", "running") and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    assert any("failed" in e and "not found" in e for e in errors(at)), errors(at)
    assert not at.exception
