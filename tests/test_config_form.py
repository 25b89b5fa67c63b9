"""The config form and URL parameters are derived from the schema and round-trip exactly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from fgff_core.config import RunConfig, config_fields, field_choices
from fgff_core.config.form import config_from_params, config_to_params, form_fields, parse_param, to_widget_value
from fgff_core.config.presets import PRESETS
from fgff_core.jobs.progress import run_progress


def test_one_widget_per_field_with_schema_metadata():
    fields = {f.name: f for f in form_fields()}
    assert list(fields) == [f.name for f in config_fields()]
    assert fields["algo"].widget == "select" and fields["algo"].choices == field_choices("algo")
    assert fields["dataset"].choices == field_choices("dataset")
    assert fields["compile"].widget == "toggle"
    assert fields["epochs"].widget == "int" and (fields["epochs"].min, fields["epochs"].max) == (1, 1_000_000)
    assert fields["lr"].widget == "float" and fields["lr"].help.startswith("Learning rate")
    assert fields["layers"].widget == "text" and fields["label_value"].widget == "text"


def test_defaults_give_no_params():
    assert config_to_params(RunConfig()) == {}
    assert config_to_params(RunConfig(algo="bp")) == {"algo": "bp"}  # bp's own lr/batch are its defaults


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("algo", ["ff", "fgff", "mf", "bp"])
def test_round_trip_every_preset(name, algo):
    cfg = PRESETS[name].config(algo)
    params = config_to_params(cfg)
    assert all(isinstance(v, str) for v in params.values())
    assert config_from_params(params) == cfg


def test_round_trip_odd_values():
    cfg = RunConfig(algo="fgff", layers=(7,), lr=1e-4, label_value="max", download=False, data_dir="/x y",
                    batch_size=0, compile=True)
    assert config_from_params(config_to_params(cfg)) == cfg


def test_widget_values_build_the_same_config():
    cfg = PRESETS["quick-digits"].config("ff")
    values = {f.name: to_widget_value(f, getattr(cfg, f.name)) for f in form_fields()}
    assert values["layers"] == "100,100"
    assert RunConfig.from_dict(values) == cfg


def test_bad_params_name_the_field():
    with pytest.raises(ValueError, match="epochs"):
        config_from_params({"epochs": "many"})
    with pytest.raises(ValueError, match="threshold"):
        config_from_params({"threshold": "0"})
    with pytest.raises(ValueError, match="download"):
        parse_param("download", "maybe")
    assert config_from_params({"run": "abc", "epochs": ["3", "4"]}).epochs == 4  # non-config keys ignored


def test_progress_eta_and_text():
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    metrics = pd.DataFrame({"layer": [0, 0, 1], "epoch": [1, 2, 1], "step": [1, 2, 3]})
    run = {"status": "running", "epoch_events": 4, "epochs_done": 3, "started_at": start.isoformat()}
    p = run_progress(run, metrics, now=start + timedelta(seconds=6))
    assert (p.done, p.total, p.layer, p.epoch) == (3, 4, 2, 1)
    assert p.fraction == 0.75 and p.eta_s == pytest.approx(2.0)  # from elapsed time: 6 s / 3 epochs
    timed = run_progress(run, metrics.assign(seconds=[0.5, 0.5, 0.5]), now=start + timedelta(seconds=6))
    assert timed.eta_s == pytest.approx(0.5)  # from the measured epoch times
    assert "3/4 epochs (75 %)" in p.text() and "layer 2, epoch 1" in p.text() and "ETA 2.0 s" in p.text()
    done = run_progress({**run, "status": "done", "finished_at": (start + timedelta(seconds=8)).isoformat()},
                        metrics)
    assert done.fraction == 1.0 and done.eta_s is None and done.elapsed_s == pytest.approx(8.0)
    assert run_progress({"status": "queued"}, None).text() == "queued"


def test_int_param_refuses_other_scripts_digits_huge_and_negative_values():
    from fgff_core.config.form import int_param

    errors: list[str] = []
    for raw in ("٣", "1" * 5000, "-1", "", "2.0"):
        assert int_param({"step": raw}, "step", 1, 1, 8, errors) == 1
    assert len(errors) == 5 and all(e.startswith("step=") for e in errors)
    assert int_param({"step": ["3", "4"]}, "step", 1, 1, 8, errors) == 4


def test_preset_param_names_a_known_preset_or_reports_and_falls_back():
    from fgff_core.config.form import preset_param

    errors: list[str] = []
    assert preset_param({}, "quick-digits", errors) == "quick-digits" and errors == []
    assert preset_param({"preset": ["tiny-digits", "ff-best-mnist-quick"]}, "quick-digits", errors) == \
        "ff-best-mnist-quick"
    assert preset_param({"preset": "nope"}, "quick-digits", errors) == "quick-digits"
    assert errors == [f"preset=nope: preset: 'nope' is not allowed; choose one of {', '.join(PRESETS)}; "
                      "using quick-digits"]


def test_pickers_list_the_digits_demos_then_the_mnist_demo_then_every_other_preset():
    from fgff_core.config.presets import MNIST_DEMO, picker_order

    order = picker_order()
    assert sorted(order) == sorted(PRESETS) and order[0] == next(iter(PRESETS))  # the default stays first
    digits = [n for n in order if PRESETS[n].config().dataset == "digits"]
    assert order[:len(digits) + 1] == [*digits, MNIST_DEMO]
    demo = PRESETS[MNIST_DEMO].config()
    assert demo.dataset == "mnist" and demo.algo == "ff" and "MNIST demo" in PRESETS[MNIST_DEMO].title
