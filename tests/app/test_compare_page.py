"""Compare page (AppTest): empty store, stored FF/FGFF runs, URL round trip, launch and its validation."""

from __future__ import annotations

import json

import pytest
from conftest import open_page_with_runs, query_param, stored_runs

from fgff_core.config import RunConfig
from fgff_core.config.presets import MNIST_DEMO, PRESETS
from fgff_core.format import MISSING
from fgff_core.store import RunStore


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    base = RunConfig(dataset="digits", layers=(20, 20), epochs=6, eval_every=3, eval_subset=200)
    ids = stored_runs(d, [base.replace(algo=a, seed=s) for s in (0, 1) for a in ("ff", "fgff")])
    stored_runs(d, [base.replace(algo="ff", seed=0)], name="repeat")  # the same config and seed again
    return d, ids






def test_empty_store(monkeypatch, tmp_path):
    at = open_page_with_runs(monkeypatch, tmp_path / "empty", "compare")
    assert not at.exception
    assert at.title[0].value == "Compare FF vs FGFF"
    assert any("No runs yet" in i.value for i in at.info)
    assert at.button(key="FormSubmitter:launch-Start FF and FGFF") is not None


def test_stored_runs_from_url(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "compare", run=",".join(ids))
    assert not at.exception, at.exception
    assert at.multiselect(key="compare_runs").value == ids
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # default metrics: test accuracy and loss
    # Two groups (FF, FGFF), each the mean of two seeds, and the difference column.
    table = at.table[0].value  # one column per group and the difference; each group's sd in its cells
    assert list(table.columns) == ["FF", "FGFF", "FGFF - FF"]
    assert "Test accuracy (%)" in table.index and "Training time (s)" in table.index
    assert table.loc["Seeds", "FF"] == "2"
    mean, sd = table.loc["Test accuracy (%)", "FF"].split(" ± ")
    assert 0 <= float(mean) <= 100 and float(sd) >= 0
    diff = at.dataframe[0].value
    assert set(diff.index) == {"algo", "seed"}  # only algo and seed differ
    assert "FF: Forward-Forward; FGFF: Fine-Grained Forward-Forward (FF with significance factors)." in [
        c.value for c in at.caption]  # the legends' names in full


def _finished_runs(runs_dir, test_accs: dict[str, list[float]]) -> list[str]:
    """Finished runs with the given final test accuracies (one per seed, per algorithm), as a worker writes them."""
    store, ids = RunStore(runs_dir), []
    for algo, accs in test_accs.items():
        for seed, acc in enumerate(accs):
            cfg = RunConfig(algo=algo, dataset="digits", layers=(20, 20), epochs=6, seed=seed)
            rid = store.create_run(cfg, name=f"{algo} seed {seed}")
            assert store.queue.claim(rid)
            writer = store.writer(rid)
            writer.started("cpu", 100, cfg.epoch_events)
            writer.finish("done", final={"test_acc": acc, "train_acc": acc, "train_seconds": 1.0})
            writer.close()
            ids.append(rid)
    return ids


# Known inputs, the verdict they imply (findings.difference_sentence's rule: a difference larger than the larger
# of the two seed standard deviations is a win or a loss, else within the spread), worked out by hand.
@pytest.mark.parametrize("ff, fgff, expected", [
    # means 81.0 and 90.5: +9.5 points; sds 1.4 (FF) and 0.7 (FGFF)
    ([0.80, 0.82], [0.90, 0.91], "FGFF beats FF by 9.5 points over 2 seeds, spread ±0.7 to 1.4."),
    # means 91.0 and 84.5: -6.5 points; the same sds
    ([0.90, 0.92], [0.84, 0.85], "FGFF trails FF by 6.5 points over 2 seeds, spread ±0.7 to 1.4."),
    # means 85.0 and 87.0: +2.0 points, less than FF's sd of 7.1: a tie
    ([0.80, 0.90], [0.86, 0.88], "FGFF and FF are within the spread: FGFF - FF = +2.0 points over 2 seeds, while "
                                 "the seeds alone vary by ±1.4 to 7.1."),
], ids=["fgff-wins", "ff-wins", "tie"])
def test_verdict_names_the_winner_the_accuracies_imply(monkeypatch, tmp_path, ff, fgff, expected):
    d = tmp_path / "runs"
    ids = _finished_runs(d, {"ff": ff, "fgff": fgff})
    at = open_page_with_runs(monkeypatch, d, "compare", run=",".join(ids))
    assert not at.exception, at.exception
    assert f"**{expected}**" in [m.value for m in at.markdown]


def test_a_queued_group_has_no_column_of_blanks_in_the_final_table(monkeypatch, tmp_path):
    """Issue 39 item 6: a queued FGFF run filled the final table's FGFF and FGFF - FF columns with None."""
    d = tmp_path / "queued"
    ids = _finished_runs(d, {"ff": [0.8]})
    queued = RunStore(d).create_run(RunConfig(algo="fgff", dataset="digits", layers=(20, 20), epochs=6), name="q")
    at = open_page_with_runs(monkeypatch, d, "compare", run=f"{ids[0]},{queued}")
    assert not at.exception, at.exception
    table = at.table[0].value
    assert list(table.columns) == ["FF"] and MISSING not in set(table["FF"])
    assert any("Not in the table yet (no finished run): FGFF." in c.value for c in at.caption)
    RunStore(d).cancel(queued)


def test_ff_shows_no_number_without_s_in_the_table_nor_a_curve(monkeypatch, runs_dir):
    # FF keeps s at 1: a number without s would only repeat its number with s.
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "compare", run=",".join(ids))
    table = at.table[0].value
    row = table.loc["Test accuracy without significance (%)"]
    assert row["FF"] == row["FGFF - FF"] == MISSING  # "–", never "None"
    assert 0 <= float(row["FGFF"].split(" ± ")[0]) <= 100
    next(m for m in at.multiselect if m.label == "Metrics").set_value(["test_acc_no_significance"]).run()
    assert not at.exception, at.exception
    (chart,) = at.get("plotly_chart")
    names = [t.get("name") for t in json.loads(chart.proto.spec)["data"] if t.get("showlegend", True)]
    assert names == ["FGFF (mean of 2)"]


def test_selection_round_trip_and_config_view(monkeypatch, runs_dir):
    d, ids = runs_dir
    at = open_page_with_runs(monkeypatch, d, "compare", run=ids[0])
    assert any("at least two" in i.value for i in at.info)
    at.multiselect(key="compare_runs").select(ids[1]).run()
    assert not at.exception
    assert query_param(at, "run") == f"{ids[0]},{ids[1]}"
    at.toggle[0].set_value(False).run()  # full configs instead of the diff
    full = at.dataframe[0].value
    assert "threshold" in full.index and len(full.columns) == 2
    at2 = open_page_with_runs(monkeypatch, d, "compare", run="nonexistent,also-bad")
    assert not at2.exception and at2.multiselect(key="compare_runs").value == []
    # issue 15 case 4: a link to a deleted run says so instead of silently showing something else
    assert any("'nonexistent' from the link does not exist" in w.value for w in at2.warning)


def test_bad_link_params_warn_and_fall_back(monkeypatch, tmp_path):
    at = open_page_with_runs(monkeypatch, tmp_path / "r", "compare", preset="nope", seeds="9", epochs="x")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "preset=nope" in warnings and "seeds=9" in warnings and "epochs=x" in warnings
    assert at.selectbox[0].value == "quick-digits" and at.number_input[0].value == 1


def test_the_mnist_demo_preset_shows_its_recipe_for_both_algorithms(monkeypatch, tmp_path):
    at = open_page_with_runs(monkeypatch, tmp_path / "demo", "compare", preset=MNIST_DEMO)
    assert not at.exception and not at.warning
    assert at.selectbox[0].value == MNIST_DEMO
    assert list(at.selectbox[0].options).index(PRESETS[MNIST_DEMO].title) == 2  # right after the digits demos
    assert at.number_input[1].value == PRESETS[MNIST_DEMO].config().epochs
    assert any(PRESETS[MNIST_DEMO].description in c.value for c in at.caption)


def test_launch_validation_message_from_server_limit(monkeypatch, tmp_path):
    monkeypatch.setenv("FGFF_LIMIT_MAX_EPOCHS", "5")
    at = open_page_with_runs(monkeypatch, tmp_path / "limited", "compare", preset="tiny-digits", epochs="7")
    at.button(key="FormSubmitter:launch-Start FF and FGFF").click().run()
    assert not at.exception
    assert any("epochs: 7 is over this server's limit of 5" in e.value for e in at.error)
    assert RunStore(tmp_path / "limited").runs().empty  # nothing was submitted
    assert query_param(at, "epochs") == "7" and query_param(at, "preset") == "tiny-digits"


def test_launch_starts_ff_and_fgff_with_same_config(monkeypatch, tmp_path):
    d = tmp_path / "launch"
    at = open_page_with_runs(monkeypatch, d, "compare", preset="tiny-digits", seeds="2", epochs="2")
    at.button(key="FormSubmitter:launch-Start FF and FGFF").click().run()
    assert not at.exception and at.success
    store = RunStore(d)
    runs = store.runs()
    assert len(runs) == 4 and sorted(runs["algo"]) == ["ff", "ff", "fgff", "fgff"]
    configs = [store.config(r) for r in runs["run_id"]]
    assert len({c.replace(algo="ff", seed=0).to_json() for c in configs}) == 1  # only algo and seed differ
    assert set(runs["owner"]) == {query_param(at, "me")}  # this browser's runs (issue 39 item 4)
    ids = query_param(at, "run").split(",")
    assert sorted(ids) == sorted(runs["run_id"]) and at.multiselect(key="compare_runs").value == ids
    for rid in ids:  # don't leave workers training after the test
        store.cancel(rid)


def test_launching_with_mf_and_bp_starts_all_four_at_the_same_epochs_and_explains_mf(monkeypatch, tmp_path):
    d = tmp_path / "four"
    at = open_page_with_runs(monkeypatch, d, "compare", preset="tiny-digits", epochs="2", algos="ff,fgff,mf,bp")
    assert at.multiselect(key="compare_algos").value == ["ff", "fgff", "mf", "bp"]
    assert any("Mono-Forward" in c.value and "no negative data" in c.value for c in at.caption)
    assert any(c.value.startswith("**BP (backpropagation)**") for c in at.caption)  # issue 39: "bp" explained
    assert "BP: backpropagation" in at.multiselect(key="compare_algos").help
    at.button(key="FormSubmitter:launch-Start FF, FGFF, MF and BP").click().run()
    assert not at.exception and at.success
    store = RunStore(d)
    runs = store.runs()
    configs = {c.algo: c for c in (store.config(r) for r in runs["run_id"])}
    assert sorted(configs) == ["bp", "ff", "fgff", "mf"] and {c.epochs for c in configs.values()} == {2}
    assert configs["mf"] == PRESETS["tiny-digits"].config("mf", epochs=2)  # MF: the preset's own settings for it
    assert query_param(at, "algos") == "ff,fgff,mf,bp"
    for rid in runs["run_id"]:  # don't leave workers training after the test
        store.cancel(rid)


def test_a_link_with_an_unknown_algorithm_warns_and_offers_ff_and_fgff(monkeypatch, tmp_path):
    at = open_page_with_runs(monkeypatch, tmp_path / "bad", "compare", algos="ff,sgd")
    assert not at.exception and any("'sgd'" in w.value for w in at.warning)
    assert at.multiselect(key="compare_algos").value == ["ff", "fgff"]


def test_repeated_run_counts_once_and_difference_reads_fgff_minus_ff(monkeypatch, runs_dir):
    """Issue 15 case 2: a repeated (config, seed) is not another seed; the sign never follows the pick order."""
    d, ids = runs_dir
    repeat = RunStore(d).runs().iloc[0]["run_id"]  # the newest: the repeated FF seed 0
    picked = [ids[1], ids[0], repeat]  # FGFF picked first
    at = open_page_with_runs(monkeypatch, d, "compare", run=",".join(picked))
    assert not at.exception, at.exception
    table = at.table[0].value
    assert "FGFF - FF" in table.columns and "FF - FGFF" not in table.columns
    assert table.loc["Seeds", "FF"] == "1"  # one FF run per seed: FF seed 0 once
    assert any("counted once" in c.value and repeat in c.value for c in at.caption)
    assert any("one seed cannot tell" in m.value for m in at.markdown)


def test_launch_submitted_twice_launches_once(monkeypatch, tmp_path):
    """Issue 15 case 1: Enter in a field submits the form, then Start submits it again: 2 runs, not 4."""
    d = tmp_path / "twice"
    at = open_page_with_runs(monkeypatch, d, "compare", preset="quick-digits", seeds="1", epochs="2000")
    at.button(key="FormSubmitter:launch-Start FF and FGFF").click().run()
    first = query_param(at, "run").split(",")
    at.button(key="FormSubmitter:launch-Start FF and FGFF").click().run()
    assert not at.exception
    store = RunStore(d)
    try:
        assert len(store.runs()) == 2
        assert any("already queued or running" in i.value for i in at.info)
        assert query_param(at, "run").split(",") == first
        # issue 15 case 10: no final-metrics rows of None while the runs are queued or running
        assert any("No final metrics yet" in i.value for i in at.info)
        assert not at.table and not any("Test accuracy (%)" in df.value.index for df in at.dataframe)
    finally:
        for rid in store.runs()["run_id"]:
            store.cancel(rid)


def test_picking_a_preset_brings_its_description_and_epochs(monkeypatch, tmp_path):
    """Issue 39: the preset picker sat inside the form, so picking CIFAR-10 kept digits' description and epochs."""
    at = open_page_with_runs(monkeypatch, tmp_path / "p", "compare", preset="tiny-digits", epochs="7")
    at.selectbox(key="compare_preset").set_value(MNIST_DEMO).run()
    assert not at.exception, at.exception
    assert at.number_input[1].value == PRESETS[MNIST_DEMO].config().epochs  # not the link's 7 any more
    assert any(c.value == PRESETS[MNIST_DEMO].description for c in at.caption)
    assert query_param(at, "preset") == MNIST_DEMO and "epochs" not in at.query_params


def test_a_comparison_over_the_time_limit_asks_before_it_starts(monkeypatch, tmp_path):
    """Issue 39: 1,000,000 epochs per layer launched with no estimate or confirmation."""
    monkeypatch.setenv("FGFF_WARN_ETA_SECONDS", "60")
    d = tmp_path / "long"
    at = open_page_with_runs(monkeypatch, d, "compare", preset="tiny-digits", epochs="100000")
    at.button(key="FormSubmitter:launch-Start FF and FGFF").click().run()
    assert not at.exception, at.exception
    assert any("would take about" in w.value and "more than the 1 min 00 s" in w.value for w in at.warning)
    assert RunStore(d).runs().empty  # nothing started
    at.checkbox[0].check()
    at.button(key="FormSubmitter:launch-Start FF and FGFF").click().run()
    assert len(RunStore(d).runs()) == 2
    for run_id in RunStore(d).runs()["run_id"]:
        RunStore(d).cancel(run_id)
