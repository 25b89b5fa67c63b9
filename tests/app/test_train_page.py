"""Train page in AppTest: renders, validates, round-trips the config through the URL, runs a job."""

from __future__ import annotations

import json
import time

from conftest import TINY, open_page, query_param
from streamlit.testing.v1 import AppTest

from fgff_core.config import DEFAULT_LR, RunConfig
from fgff_core.config.form import config_from_params, config_to_params, form_fields
from fgff_core.config.presets import MNIST_DEMO, PRESETS, picker_order
from fgff_core.store import RunStore

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
    # The form opens on the first preset, as the preset box says, and the URL holds its values.
    first = next(iter(PRESETS.values()))
    params = {k: v[-1] if isinstance(v, list) else v for k, v in dict(at.query_params).items() if k != "me"}
    assert params == config_to_params(first.config())  # and this browser's owner token (tests/app/test_owners_page.py)
    assert any(first.description in c.value for c in at.caption)


def test_widgets_have_human_labels_and_the_schemas_help(runs_dir):
    """Issue 15 case 7: labels a student can follow; the technical name stays in the help."""
    at = app()
    epochs = at.number_input(key="cfg_epochs")
    meta = next(f for f in form_fields() if f.name == "epochs")
    assert epochs.label == "Epochs per layer" and epochs.help.startswith(meta.help) and "`epochs`" in epochs.help
    assert at.number_input(key="cfg_lr").label == "Learning rate (weights)"
    assert at.number_input(key="cfg_batch_size").label == "Batch size (0 = full batch)"
    assert at.selectbox(key="cfg_algo").label == "Algorithm"
    assert list(at.selectbox(key="cfg_algo").options) == ["ff", "fgff", "mf", "bp"]


def test_data_folder_sits_beside_the_dataset_when_it_needs_files(runs_dir):
    at = app()
    main_tab = at.tabs[0]
    assert "cfg_data_dir" not in {w.key for w in main_tab.get("text_input")}  # digits is embedded
    at.selectbox(key="cfg_dataset").set_value("mnist").run()
    assert "cfg_data_dir" in {w.key for w in at.tabs[0].get("text_input")}
    assert at.text_input(key="cfg_data_dir").label == "Data folder"


def test_a_value_out_of_range_is_refused_with_its_range(runs_dir):
    """Issue 15 case 5: the form's value is what Start uses; an impossible one disables Start."""
    at = app()
    at.number_input(key="cfg_epochs").set_value(99999999).run()
    assert any("epochs" in e and "1000000" in e for e in errors(at)), errors(at)
    assert button(at, "Start training").disabled


def test_an_absurd_run_asks_before_starting(runs_dir):
    """Issue 15 case 5: layers of 65536 would train for hours: say so, and start only when confirmed."""
    at = app()
    at.text_input(key="cfg_layers").input("65536,65536").run()
    assert any("would take about" in w.value and "confirm" in w.value for w in at.warning)
    assert button(at, "Start training").disabled
    at.checkbox(key="confirm_long_run").check().run()
    assert not button(at, "Start training").disabled
    at.text_input(key="cfg_layers").input("100,100").run()
    assert any(c.value.startswith("Expected: about") for c in at.caption)


def _slow_finished_runs(runs_dir, seconds: float, n: int = 3) -> None:
    """Finished quick-digits runs that each took ``seconds`` (a server far slower than the reference CPU)."""
    store = RunStore(runs_dir)
    for seed in range(1, n + 1):
        rid = store.create_run(PRESETS["quick-digits"].config(seed=seed))
        assert store.queue.claim(rid)
        writer = store.writer(rid)
        writer.started("cpu", 11_510, 400)
        writer.finish("done", final={"wall_seconds": seconds, "train_seconds": seconds}, gather=False)
        writer.close()


def test_the_mnist_demo_opens_ready_to_start_even_on_a_slow_server(runs_dir):
    """Issue 39 item 5: opening ?preset=ff-best-mnist-quick read 'would take about 52 min 06 s' and disabled Start;
    it trains in 1-2 minutes. A preset within its measured budget never asks first; the range is shown."""
    at = app(preset=MNIST_DEMO)
    assert not at.exception
    assert not any(c.key == "confirm_long_run" for c in at.checkbox)
    assert not button(at, "Start training").disabled
    assert any(c.value.startswith("Expected: about") and " to " in c.value for c in at.caption)
    _slow_finished_runs(runs_dir, 300.0)  # 200x the reference: the MNIST demo's estimate is hours now
    at = app(preset=MNIST_DEMO)
    assert not any(c.key == "confirm_long_run" for c in at.checkbox)
    assert not button(at, "Start training").disabled
    assert any("measured for this preset" in c.value for c in at.caption)
    longer = config_to_params(PRESETS[MNIST_DEMO].config(epochs=16))
    at = app(preset=MNIST_DEMO, **longer)  # no longer the preset: the estimate alone decides, and asks
    assert any(c.key == "confirm_long_run" for c in at.checkbox)


def test_a_run_over_the_memory_limit_is_refused_with_its_estimate(runs_dir, monkeypatch):
    """Issue 38 item 3: a run the server cannot hold is a sentence with the estimate, and nothing is queued."""
    monkeypatch.setenv("FGFF_MEMORY_LIMIT", "2G")
    at = app(layers="65536", epochs="1")
    if any(c.key == "confirm_long_run" for c in at.checkbox):  # a slow machine's estimate asks first
        at.checkbox(key="confirm_long_run").check().run()
    button(at, "Start training").click().run()
    assert not at.exception
    assert any(e.startswith("Could not start: memory: this run needs about ") and "more than the 2 GiB" in e
               for e in errors(at)), errors(at)
    assert RunStore(runs_dir).runs().empty


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
    """Issue 15 case 6: picking a preset fills the form at once (no separate 'Load preset')."""
    at = app()
    at.selectbox(key="preset").set_value("tiny-digits").run()
    assert at.text_input(key="cfg_layers").value == "20,20"
    assert any(PRESETS["tiny-digits"].description in c.value for c in at.caption)
    at.text_input(key="cfg_layers").input("30,20").run()
    assert any("no longer the preset" in w.value for w in at.warning)
    at.selectbox(key="cfg_algo").set_value("bp").run()
    assert at.number_input(key="cfg_lr").value == DEFAULT_LR["bp"]
    assert at.number_input(key="cfg_batch_size").value == RunConfig(algo="bp").batch_size


def test_the_mnist_demo_comes_right_after_the_digits_presets_and_trains_ff(runs_dir):
    at = app()
    options = list(at.selectbox(key="preset").options)
    titles = [PRESETS[n].title for n in picker_order()]
    assert options == titles and options[0] == PRESETS["quick-digits"].title  # the default stays first
    assert options.index(PRESETS[MNIST_DEMO].title) == 2 and "MNIST demo" in options[2]
    at.selectbox(key="preset").set_value(MNIST_DEMO).run()
    assert at.selectbox(key="cfg_algo").value == "ff" and at.selectbox(key="cfg_dataset").value == "mnist"
    assert any(PRESETS[MNIST_DEMO].description in c.value for c in at.caption)
    assert query_param(at, "preset") == MNIST_DEMO  # a reload picks it again


def test_a_preset_link_opens_the_form_on_that_preset(runs_dir):
    at = app(preset=MNIST_DEMO)
    assert not at.exception and errors(at) == []
    assert at.selectbox(key="preset").value == MNIST_DEMO
    params = {k: v[-1] if isinstance(v, list) else v for k, v in dict(at.query_params).items()}
    assert config_from_params(params) == PRESETS[MNIST_DEMO].config()  # FF, the recipe's every value
    assert not any("no longer the preset" in w.value for w in at.warning)
    again = app(**params)  # the URL it left reopens the same form on the same preset
    assert again.selectbox(key="preset").value == MNIST_DEMO
    assert not any("no longer the preset" in w.value for w in again.warning)


def test_an_unknown_preset_in_the_link_is_a_warning_and_the_first_preset(runs_dir):
    at = app(preset="nope")
    assert not at.exception
    assert any("preset=nope: preset: 'nope' is not allowed; choose one of" in w.value for w in at.warning)
    assert at.selectbox(key="preset").value == "quick-digits" and "preset" not in at.query_params


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


def test_times_of_a_finished_run_are_written_for_people(runs_dir, jm, finished_run):
    """Issue 35 item 6: a 13 s epoch was shown as "13116.6 ms"; times go through fgff_core.format."""
    with jm.store.transaction(immediate=True) as con:
        con.execute("UPDATE runs SET epoch_seconds_median = ?, train_seconds = ? WHERE run_id = ?",
                    (13.1166, 75.0, finished_run))
    at = app(run=finished_run)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Time per epoch (median)"] == "13 s" and shown["Training time"] == "1 min 15 s"


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_refresh_reattaches_to_the_run_in_the_url(runs_dir, finished_run):
    at = app(run=finished_run)
    assert not at.exception
    assert any("tiny fgff" in h.value for h in at.subheader)
    # goodness, loss, accuracy, and each layer's own accuracy
    assert len(at.get("plotly_chart")) == 4 and "each layer on its own" in chart_titles(at)[-1]


def test_a_run_without_per_layer_accuracy_gets_no_empty_chart(runs_dir, jm, finished_run):
    with jm.store.connection() as con:  # as a run stored before each layer's accuracy was measured
        con.execute("UPDATE epochs SET layer_test_acc = NULL, layer_train_acc = NULL")
    at = app(run=finished_run)
    assert not at.exception
    assert not any("each layer" in t for t in chart_titles(at)) and len(at.get("plotly_chart")) == 3


def test_unknown_run_in_url_is_a_warning_not_a_crash(runs_dir):
    at = app(run="0123456789ab")
    assert not at.exception
    assert any("does not exist" in w.value for w in at.warning)


def test_failed_job_shows_its_reason(runs_dir, jm, tmp_path, monkeypatch):
    monkeypatch.setenv("FGFF_DATA_DIR", str(tmp_path))  # the app's own data folder: a browser may name folders in it
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


def test_second_start_shows_the_same_run_and_a_queued_run_its_place(runs_dir, jm):
    """Issue 15 cases 1 and 5: one click one launch; a queued run says how many runs are ahead."""
    at = app(epochs="3000", layers="100,100")  # tens of seconds: still running during the test
    button(at, "Start training").click().run()
    first = at.query_params["run"]
    button(at, "Start training").click().run()
    assert any("already queued or running" in i.value for i in at.info)
    assert len(jm.store.runs()) == 1
    at.number_input(key="cfg_seed").set_value(1).run()
    button(at, "Start training").click().run()
    second = at.query_params["run"]
    try:
        assert second != first and len(jm.store.runs()) == 2
        texts = [p.proto.text for p in at.get("progress")]
        assert any("1 run ahead of yours" in t for t in texts), texts
    finally:
        for rid in jm.store.runs()["run_id"]:
            jm.cancel(rid)


def test_ff_run_at_chance_gets_a_hint_and_one_accuracy_column(runs_dir):
    """Issue 15 case 9: a run that ends at chance says why; FF shows no repeated 'without significance'."""
    cfg = RunConfig(algo="ff", dataset="mnist", layers=(50, 50), epochs=30)
    store = RunStore(runs_dir)
    rid = store.create_run(cfg, name="ff at chance")
    assert store.queue.claim(rid)
    writer = store.writer(rid)
    writer.started("cpu", 100, cfg.epoch_events)
    writer.finish("done", final={"test_acc": 0.1135, "test_acc_no_significance": 0.1135, "train_acc": 0.1124,
                                 "train_acc_no_significance": 0.1124, "train_seconds": 3.0})
    writer.close()
    at = app(run=rid)
    assert not at.exception
    assert any("chance level (11.35 %" in w.value and "only 30 training steps" in w.value for w in at.warning)
    assert list(at.table[0].value.columns) == ["accuracy (%)"]
    assert "Test accuracy without significance" not in [m.label for m in at.metric]


def test_a_start_joined_to_another_sessions_run_says_so_and_trains_its_own_in_one_click(runs_dir, jm, monkeypatch):
    """Issue 39 item 3: a class pressing Start on the same preset shares one run (same config and seed); each
    page says so and offers the same config with a seed nobody used as the student's own run."""
    from fgff_core.jobs.owners import OWNER_PARAM, new_owner_token
    from fgff_core.jobs.scheduler import Scheduler

    monkeypatch.setattr(Scheduler, "ORPHAN_SWEEP_INTERVAL", float("inf"))  # the other session's run stays queued
    preset = PRESETS["quick-digits"].config()
    shared = jm.store.create_run(preset, name="the class's run", owner=new_owner_token())
    at = app()
    button(at, "Start training").click().run()
    assert not at.exception and query_param(at, "run") == shared and len(jm.store.runs()) == 1
    assert any("Your Start joined a run with the same configuration and seed: you are watching the run your class "
               "started; train your own with another seed." in i.value for i in at.info), [i.value for i in at.info]
    button(at, "Train my own").click().run()
    own = query_param(at, "run")
    try:
        assert not at.exception and errors(at) == [] and own != shared
        row = jm.store.run(own)
        assert row["owner"] == query_param(at, OWNER_PARAM)
        assert RunConfig.from_dict(row["config"]) == preset.replace(seed=1)  # the smallest seed nobody used
        assert at.number_input(key="cfg_seed").value == 1 and query_param(at, "seed") == "1"  # the form says so
        assert not any("your class started" in i.value for i in at.info) and "Train my own" not in [
            b.label for b in at.button]
    finally:
        jm.cancel(own)
