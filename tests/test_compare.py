"""Comparison logic: equal-terms launch, grouping, curve aggregation over seeds, final table, config diff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fgff_core.analysis import compare
from fgff_core.config import RunConfig
from fgff_core.config.presets import preset_config
from fgff_core.engine.events import EpochMetrics, EvalMetrics
from fgff_core.engine.training import Trainer
from fgff_core.format import MISSING
from fgff_core.viz.compare import (
    METRIC_LABELS,
    SEEDS_ROW,
    curves_figure,
    final_table_for_display,
    final_table_parts,
    final_table_text,
    group_colors,
)
from fgff_core.viz.theme import ALGO_COLORS


class RecordingSubmitter:
    """Stands in for JobManager.submit: records configs, returns ids."""

    def __init__(self):
        self.calls = []

    def submit(self, config, name=None, owner=None):
        self.calls.append((RunConfig.coerce(config), name, owner))
        return f"run{len(self.calls)}"


def test_launch_same_data_seeds_budget_only_algo_differs():
    jm = RecordingSubmitter()
    base = preset_config("quick-digits", "fgff", epochs=7)
    launched = compare.launch_comparison(jm, base, seeds=(0, 1, 2))
    assert launched.run_ids == [f"run{i}" for i in range(1, 7)] and launched.reused == []
    configs = [c for c, _, _ in jm.calls]
    assert [(c.algo, c.seed) for c in configs] == [("ff", 0), ("fgff", 0), ("ff", 1), ("fgff", 1), ("ff", 2),
                                                   ("fgff", 2)]
    for c in configs:
        assert c.replace(algo="fgff", seed=0) == base  # nothing else changed: data, layers, epochs, lrs
    assert "FF seed 0" in jm.calls[0][1] and "FGFF seed 2" in jm.calls[-1][1]


@pytest.mark.parametrize("seeds, algos, field", [
    ((), ("ff", "fgff"), "seeds"),
    ((0, 0), ("ff", "fgff"), "seeds"),
    ((-1,), ("ff", "fgff"), "seeds"),
    ((0,), ("ff", "xx"), "algos"),
    ((0,), (), "algos"),
])
def test_launch_rejects_bad_input_before_submitting(seeds, algos, field):
    jm = RecordingSubmitter()
    with pytest.raises(ValueError, match=field):
        compare.launch_comparison(jm, preset_config("tiny-digits"), seeds=seeds, algos=algos)
    assert jm.calls == []


def test_group_runs_by_algo_when_only_seed_differs():
    base = preset_config("tiny-digits", "ff")
    configs = {"a": base, "b": base.replace(seed=1), "c": base.replace(algo="fgff"),
               "d": base.replace(algo="fgff", seed=3, device="cpu")}
    assert compare.group_runs(configs) == {"a": "FF", "b": "FF", "c": "FGFF", "d": "FGFF"}


def test_group_runs_names_the_differing_field():
    base = preset_config("tiny-digits", "fgff")
    groups = compare.group_runs({"a": base, "b": base.replace(sig_lr=0.3), "c": base.replace(algo="ff")})
    assert groups == {"a": "FGFF sig_lr=0.15", "b": "FGFF sig_lr=0.3", "c": "FF sig_lr=0.15"}


def test_ema_smooths_and_keeps_constant_series():
    assert np.allclose(compare.ema(np.full(5, 3.0), 0.9), 3.0)  # bias correction: no pull towards 0
    raw = np.array([0.0, 10.0, 0.0, 10.0])
    smooth = compare.ema(raw, 0.6)
    assert smooth[0] == 0.0 and np.ptp(smooth[1:]) < np.ptp(raw[1:])
    assert np.array_equal(compare.ema(raw, 0.0), raw)
    with pytest.raises(ValueError, match="smoothing"):
        compare.ema(raw, 1.0)


def _long(run_id, values, metric="loss"):
    return pd.DataFrame({"run_id": run_id, "layer": 0, "epoch": range(1, len(values) + 1),
                         "step": range(1, len(values) + 1), "metric": metric, "value": values})


def test_aggregate_mean_std_min_max_over_seeds():
    df = pd.concat([_long("a", [1.0, 2.0, 3.0]), _long("b", [3.0, 4.0, np.nan]), _long("c", [10.0, 10.0, 10.0])])
    agg = compare.aggregate_curves(df, {"a": "FF", "b": "FF", "c": "FGFF"}, "loss")
    ff = agg[agg["group"] == "FF"].set_index("step")
    assert ff.loc[1, "mean"] == 2.0 and ff.loc[1, "min"] == 1.0 and ff.loc[1, "max"] == 3.0
    assert ff.loc[1, "std"] == pytest.approx(np.std([1, 3], ddof=1))
    assert ff.loc[3, "n"] == 1 and ff.loc[3, "mean"] == 3.0 and ff.loc[3, "std"] == 0.0  # NaN not counted
    assert list(agg["group"].unique()) == ["FF", "FGFF"]
    with pytest.raises(ValueError, match="metric"):
        compare.aggregate_curves(df, {"a": "FF"}, "nope")
    assert compare.aggregate_curves(df.iloc[:0], {"a": "FF"}, "loss").empty


def _real_long(cfg: RunConfig, run_id: str) -> pd.DataFrame:
    """A real run's metrics in the store's long format."""
    rows = []
    for ev in Trainer(cfg).run():
        if isinstance(ev, (EpochMetrics, EvalMetrics)):
            d = ev.to_dict()
            for m in compare.CURVE_METRICS:
                if m in d and d[m] is not None:
                    rows.append(dict(run_id=run_id, layer=ev.layer, epoch=ev.epoch, step=ev.step, metric=m,
                                     value=d[m]))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def real_runs():
    base = RunConfig(dataset="digits", layers=(20, 20), epochs=4, eval_every=2, eval_subset=200)
    configs = {f"{a}{s}": base.replace(algo=a, seed=s) for a in ("ff", "fgff") for s in (0, 1)}
    return configs, pd.concat([_real_long(c, rid) for rid, c in configs.items()], ignore_index=True)


def test_aggregate_real_runs_and_figure(real_runs):
    configs, long = real_runs
    groups = compare.group_runs(configs)
    agg = compare.aggregate_curves(long, groups, "test_acc")
    assert set(agg["group"]) == {"FF", "FGFF"}
    assert (agg["n"] == 2).all() and set(agg["step"]) == {2, 4, 6, 8}  # eval every 2 epochs, 2 layers x 4
    fig = curves_figure(agg, "test_acc", spread="std")
    lines = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in lines] == ["FF (mean of 2)", "FGFF (mean of 2)"]
    assert [t.line.color for t in lines] == [ALGO_COLORS["ff"], ALGO_COLORS["fgff"]]
    assert len(fig.data) == 6  # two band edges per group
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text.startswith("Test accuracy")
    smooth = compare.aggregate_curves(long, groups, "loss", smoothing=0.9)
    raw = compare.aggregate_curves(long, groups, "loss")
    assert not np.allclose(smooth["mean"], raw["mean"])
    with pytest.raises(ValueError, match="spread"):
        curves_figure(agg, "test_acc", spread="bad")


def test_final_metrics_table_difference():
    runs = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "test_acc": [0.8, 0.9, 0.95, np.nan],
                         "train_seconds": [1.0, 2.0, 4.0, 5.0]})
    table = compare.final_metrics_table(runs, {"a": "FF", "b": "FF", "c": "FGFF", "d": "FGFF"},
                                        metrics=["test_acc", "train_seconds"])
    assert table.loc["test_acc", "FF"] == pytest.approx(0.85)
    assert table.loc["test_acc", "FGFF"] == pytest.approx(0.95)  # the unfinished run is left out
    assert table.loc["test_acc", "FGFF n"] == 1
    assert table.loc["test_acc", "FGFF - FF"] == pytest.approx(0.10)
    assert table.loc["train_seconds", "FGFF - FF"] == pytest.approx(3.0)
    single = compare.final_metrics_table(runs.iloc[:1], {"a": "FF"}, metrics=["test_acc"])
    assert list(single.columns) == ["FF"]


def test_config_diff_shows_only_differing_fields():
    base = preset_config("tiny-digits", "ff")
    diff = compare.config_diff({"x": base, "y": base.replace(algo="fgff", seed=2)})
    assert list(diff.index) == ["algo", "seed"]
    assert diff.loc["algo"].tolist() == ["ff", "fgff"]
    assert compare.config_diff({"x": base, "y": base}).empty
    wide = compare.config_diff({"x": base, "y": base.replace(layers=(30, 30))})
    assert wide.loc["layers"].tolist() == ["20x20", "30x30"]


def test_group_colors_theme_for_algos():
    colors = group_colors(["FF", "FGFF", "FGFF sig_lr=0.3"])
    assert colors["FF"] == ALGO_COLORS["ff"] and colors["FGFF"] == ALGO_COLORS["fgff"]
    assert colors["FGFF sig_lr=0.3"] not in (ALGO_COLORS["ff"], ALGO_COLORS["fgff"])


def test_launch_again_while_queued_reuses_the_runs():
    """Enter in a number field submits the form, then Start submits it again: one launch, not two."""
    jm = RecordingSubmitter()
    base = preset_config("tiny-digits", "fgff", epochs=6)
    first = compare.launch_comparison(jm, base, seeds=(0,))
    runs = pd.DataFrame({"run_id": first.run_ids, "status": ["running", "queued"],
                         "config": [c.to_dict() for c, _, _ in jm.calls]})
    again = compare.launch_comparison(jm, base, seeds=(0, 1), runs=runs)
    assert len(jm.calls) == 4  # only seed 1's two runs are new
    assert again.run_ids[:2] == first.run_ids and again.reused == first.run_ids
    done = runs.assign(status="done")  # finished runs are not twins: launching again trains again
    assert compare.launch_comparison(jm, base, seeds=(0,), runs=done).reused == []


def _row(run_id, cfg, acc):
    return dict(run_id=run_id, config=cfg.to_dict(), test_acc=acc)


def test_distinct_runs_count_one_run_per_config_and_seed():
    base = preset_config("tiny-digits", "fgff")
    ff = base.replace(algo="ff")
    runs = pd.DataFrame([_row("a", ff, float("nan")), _row("b", base, 0.9), _row("c", ff, 0.7),
                         _row("d", base, 0.8), _row("e", base.replace(seed=1), 0.85)])
    distinct = compare.distinct_runs(runs)
    assert distinct.run_ids == ["b", "c", "e"]  # c replaces the unfinished a; d repeats b
    assert distinct.repeats == {"a": "c", "d": "b"}


def test_groups_put_ff_first_so_differences_read_fgff_minus_ff():
    base = preset_config("tiny-digits", "fgff")
    groups = compare.group_runs({"x": base, "y": base.replace(algo="ff"), "z": base.replace(seed=2)})
    assert compare.group_order(groups) == ["FF", "FGFF"] and list(groups) == ["y", "x", "z"]
    runs = pd.DataFrame({"run_id": ["x", "y", "z"], "test_acc": [0.9, 0.8, 0.94]})
    table = compare.final_metrics_table(runs, groups, metrics=["test_acc"])
    assert table.loc["test_acc", "FGFF - FF"] == pytest.approx(0.12)


def _verdict(ff, fgff):
    ids = [f"ff{i}" for i in range(len(ff))] + [f"fgff{i}" for i in range(len(fgff))]
    groups = {r: ("FF" if r.startswith("ff") else "FGFF") for r in ids}
    return compare.verdict(pd.DataFrame({"run_id": ids, "test_acc": [*ff, *fgff]}), groups)


def test_verdict_sentences():
    assert _verdict([0.80, 0.84], [0.88, 0.89]) == "FGFF beats FF by 6.5 points over 2 seeds, spread ±0.7 to 2.8."
    assert _verdict([0.80, 0.90], [0.86, 0.88]).startswith(
        "FGFF and FF are within the spread: FGFF - FF = +2.0 points over 2 seeds")
    assert _verdict([0.90, 0.91], [0.80, 0.81, 0.80]).startswith("FGFF trails FF by 10.2 points over 2 and 3 seeds")
    # a difference inside the spread that rounds to 0.0 points is given to 0.01 (it read "FGFF - FF = -0.0 points")
    assert _verdict([0.9838, 0.9830, 0.9813], [0.9836, 0.9834, 0.9805]).startswith(
        "FGFF and FF are within the spread: FGFF - FF = -0.02 points over 3 seeds")
    assert "one seed cannot tell" in _verdict([0.8], [0.9])
    # issue 39: one seed each, equal accuracies read "FGFF trails FF by 0.0 points"
    assert _verdict([0.9], [0.9]).startswith("FGFF and FF are level (to 0.1 points) over 1 seed: one seed cannot")
    assert _verdict([0.9], [0.9004]).startswith("FGFF and FF are level")
    assert _verdict([0.9], [0.9006]).startswith("FGFF beats FF by 0.1 points over 1 seed")
    assert _verdict([float("nan")], [0.9]) is None  # FF has no result yet
    assert compare.verdict(pd.DataFrame({"run_id": ["a"], "test_acc": [0.9]}), {"a": "FF"}) is None


def test_runs_of_different_datasets_get_no_verdict():
    """Issue 39: an MNIST FF run 'beat' a digits FGFF run."""
    runs = pd.DataFrame({"run_id": ["a", "b"], "test_acc": [0.97, 0.90], "dataset": ["mnist", "digits"]})
    sentence = compare.verdict(runs, {"a": "FF", "b": "FGFF"})
    assert sentence.startswith("No verdict: these runs were tested on different datasets (digits, mnist)")
    assert "beats" not in sentence and "trails" not in sentence


def test_the_mnist_demo_launches_ff_and_fgff_on_the_same_strong_recipe():
    """What the Compare page's launch submits for ``ff-best-mnist-quick`` (nothing is trained here)."""
    from fgff_core.config.presets import MNIST_DEMO

    recipe = preset_config(MNIST_DEMO, "fgff")
    ff, fgff = compare.comparison_configs(recipe, seeds=[0])
    assert (ff.algo, fgff.algo) == ("ff", "fgff")
    assert ff.replace(algo="fgff") == fgff == recipe  # only the algorithm differs
    assert ff == preset_config(MNIST_DEMO)  # the same FF as the preset itself (its default algorithm)


def _ff_fgff_bp_runs() -> pd.DataFrame:
    return pd.DataFrame({"run_id": ["f", "g", "b"], "algo": ["ff", "fgff", "bp"], "test_acc": [0.8, 0.9, 0.95],
                         "test_acc_no_significance": [0.8, 0.7, np.nan]})


def test_no_number_without_s_for_runs_that_do_not_train_s():
    # FF keeps s at 1: its accuracy without s repeats its accuracy and is no result of its own.
    runs = _ff_fgff_bp_runs()
    shown = compare.without_s_only_where_trained(runs)
    assert shown["test_acc_no_significance"].isna().tolist() == [True, False, True]
    assert shown.loc[1, "test_acc_no_significance"] == pytest.approx(0.7)
    assert shown["test_acc"].tolist() == runs["test_acc"].tolist()  # every other cell as it was
    assert runs.loc[0, "test_acc_no_significance"] == pytest.approx(0.8)  # the caller's table is left alone


def test_the_final_table_has_no_ff_number_without_s():
    table = compare.final_metrics_table(_ff_fgff_bp_runs(), {"f": "FF", "g": "FGFF"},
                                        metrics=["test_acc", "test_acc_no_significance"])
    assert np.isnan(table.loc["test_acc_no_significance", "FF"])
    assert np.isnan(table.loc["test_acc_no_significance", "FGFF - FF"])
    assert table.loc["test_acc_no_significance", "FGFF"] == pytest.approx(0.7)
    assert table.loc["test_acc", "FGFF - FF"] == pytest.approx(0.1)  # the numbers with s are unchanged
    shown = final_table_for_display(table)
    assert np.isnan(shown.loc["Test accuracy without significance (%)", "FF"])
    assert shown.loc["Test accuracy without significance (%)", "FGFF"] == pytest.approx(70.0)


def test_curves_without_s_are_drawn_for_the_runs_that_train_s_only():
    base = preset_config("tiny-digits", "fgff")
    configs = {"f": base.replace(algo="ff"), "g": base, "b": base.replace(algo="bp")}
    groups = compare.group_runs(configs)
    assert compare.groups_with_own_value(groups, configs, "test_acc_no_significance") == {"g": "FGFF"}
    assert compare.groups_with_own_value(groups, configs, "g_pos_no_significance") == {"g": "FGFF"}
    assert compare.groups_with_own_value(groups, configs, "test_acc") == groups


def test_a_function_of_the_algorithm_gives_each_its_own_config_at_the_same_epochs():
    configs = compare.comparison_configs(lambda algo: preset_config("paper-mnist-2x50", algo, epochs=3),
                                         seeds=(0, 1), algos=("ff", "mf", "bp"))
    assert [(c.algo, c.seed) for c in configs] == [("ff", 0), ("mf", 0), ("bp", 0), ("ff", 1), ("mf", 1), ("bp", 1)]
    assert {c.epochs for c in configs} == {3}
    by_algo = {c.algo: c for c in configs}
    assert (by_algo["mf"].lr, by_algo["mf"].batch_size) == (by_algo["bp"].lr, by_algo["bp"].batch_size) == (1e-3, 64)
    assert (by_algo["ff"].lr, by_algo["ff"].batch_size) == (0.06, 0)


def test_the_final_table_shows_means_and_difference_before_sd_and_seeds():
    """Issue 39 item 6: on a projector the "FGFF - FF" column, last, was off the screen."""
    table = pd.DataFrame({"FF": [0.8], "FF sd": [0.01], "FF n": [2], "FGFF": [0.9], "FGFF sd": [0.02], "FGFF n": [2],
                          "FGFF - FF": [0.1]}, index=pd.Index(["test_acc"], name="metric"))
    shown = final_table_for_display(table)
    assert list(shown.columns) == ["FF", "FGFF", "FGFF - FF", "FF sd", "FF seeds", "FGFF sd", "FGFF seeds"]
    assert shown.loc["Test accuracy (%)", "FGFF - FF"] == pytest.approx(10.0)


def test_every_curve_metric_has_a_label_for_people():
    """Compare's Metrics picker showed 'layer_train_acc' and 'layer_test_acc' as they are named in the code."""
    assert set(compare.CURVE_METRICS) <= set(METRIC_LABELS)


def test_the_final_table_as_text_has_one_column_per_group_and_difference():
    """Issue 39 item 7: on a phone the sd and seeds columns pushed "FGFF - FF" off the screen."""
    table = pd.DataFrame({"FF": [0.81, np.nan, 2.0], "FF sd": [0.0141, np.nan, 0.5], "FF n": [2, 0, 2],
                          "FGFF": [0.905, 0.7, 1.0], "FGFF sd": [0.007, np.nan, np.nan], "FGFF n": [2, 1, 1],
                          "FGFF - FF": [0.095, np.nan, -1.0]},
                         index=pd.Index(["test_acc", "test_acc_no_significance", "train_seconds"], name="metric"))
    text = final_table_text(final_table_for_display(table))
    assert list(text.columns) == ["FF", "FGFF", "FGFF - FF"]
    assert list(text.loc["Test accuracy (%)"]) == ["81.00 ± 1.41", "90.50 ± 0.70", "+9.50"]
    assert list(text.loc["Test accuracy without significance (%)"]) == [MISSING, "70.00 (1 seed)", MISSING]
    assert list(text.loc["Training time (s)"]) == ["2.000 ± 0.500", "1.000 (1 seed)", "-1.000"]
    assert list(text.loc[SEEDS_ROW]) == ["2", "2", ""]
    tiny = table.assign(**{"FGFF - FF": [0.095, np.nan, -0.0004]})  # seconds: rounds to 0 at 3 places
    assert final_table_text(final_table_for_display(tiny)).loc["Training time (s)", "FGFF - FF"] == "+0.000"


def test_the_final_table_of_four_groups_is_split_into_values_and_differences():
    """Issue 39 item 7: FF, FGFF, MF and BP with their three differences ran off a phone's screen in one table;
    two groups stay one table."""
    four = pd.DataFrame({"FF": ["80.00", "1"], "FGFF": ["90.00", "1"], "MF": ["95.00", "1"], "BP": ["96.00", "1"],
                         "FGFF - FF": ["+10.00", ""], "MF - FF": ["+15.00", ""], "BP - FF": ["+16.00", ""]},
                        index=["Test accuracy (%)", SEEDS_ROW])
    values, differences = final_table_parts(four)
    assert list(values.columns) == ["FF", "FGFF", "MF", "BP"] and list(values.index) == list(four.index)
    assert list(differences.columns) == ["FGFF - FF", "MF - FF", "BP - FF"]
    assert list(differences.index) == ["Test accuracy (%)"]  # no empty seeds row
    assert list(differences.loc["Test accuracy (%)"]) == ["+10.00", "+15.00", "+16.00"]
    two = four[["FF", "FGFF", "FGFF - FF"]]
    assert len(final_table_parts(two)) == 1 and final_table_parts(two)[0].equals(two)
