"""Compare FF vs FGFF (and MF, BP): launch them on equal terms in one click, or compare any finished runs."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import streamlit as st

from app_pages._shared import (
    job_manager,
    live_view,
    run_picker,
    runs_or_stop,
    selected_run_ids,
    session_owner,
    set_selected_run_ids,
    url_from_outside,
    write_url,
)
from fgff_core.analysis import compare
from fgff_core.config import RunConfig, config_fields
from fgff_core.config.form import int_param, preset_param
from fgff_core.config.labels import algorithm_note, algorithms_key
from fgff_core.config.presets import PRESETS, picker_order
from fgff_core.jobs import launch
from fgff_core.jobs.polling import run_statuses
from fgff_core.jobs.progress import run_progress
from fgff_core.public import run_failure
from fgff_core.store import RunStore
from fgff_core.viz.compare import (
    SPREADS,
    curves_figure,
    final_table_for_display,
    final_table_parts,
    final_table_text,
    group_colors,
    metric_label,
)
from fgff_core.vocabulary import ACTIVE_STATUSES, ALGORITHMS, RunStatus, algo_label, has_goodness

MAX_LAUNCH_SEEDS = 5
DEFAULT_ALGOS = ["ff", "fgff"]
DEFAULT_PRESET = "quick-digits"
SELECT_KEY = "compare_runs"
NOTES_KEY = "compare_launch_notes"  # (run ids, [(st.success or st.info, text)]) of this session's last launch
POLL_SECONDS = 2.0  # the comparison redraws itself this often while a selected run is queued or training


class Display(NamedTuple):
    """How the comparison is drawn: the chart and table controls."""

    metrics: list[str]
    smoothing: float
    spread: str
    diff_only: bool


jm = job_manager()
st.title("Compare FF vs FGFF")
st.caption("FF and FGFF (add MF or BP if you like) trained with the same data, seeds and epochs (only the algorithm "
           "differs; MF and BP take the preset's optimizer settings for cross-entropy training), or any two or more "
           "stored runs. Runs that differ only in their seed are averaged; the band shows the spread.")


# -- the launch form, its values in the URL ------------------------------------------------------
preset_names = picker_order()
epochs_meta = next(f.metadata for f in config_fields() if f.name == "epochs")
link_errors: list[str] = []
link_preset = preset_param(st.query_params, DEFAULT_PRESET, link_errors)
seeds_param = int_param(st.query_params, "seeds", 1, 1, MAX_LAUNCH_SEEDS, link_errors)
epochs_param = int_param(st.query_params, "epochs", PRESETS[link_preset].config().epochs, epochs_meta["min"],
                         epochs_meta["max"], link_errors)


def _algos_param() -> list[str]:
    """``?algos=ff,mf``: the algorithms to launch, each a known one, in ``ALGORITHMS`` order; else FF and FGFF."""
    text = st.query_params.get("algos")
    if not text:
        return DEFAULT_ALGOS
    asked = text.split(",")
    unknown = [a for a in asked if a not in ALGORITHMS]
    if unknown:
        link_errors.append(f"algos {', '.join(repr(a[:20]) for a in unknown[:3])} are not algorithms "
                           f"({', '.join(ALGORITHMS)}); FF and FGFF are shown instead")
        return DEFAULT_ALGOS
    return [a for a in ALGORITHMS if a in asked]


algos_param = _algos_param()
for message in link_errors:
    st.warning(f"The link's {message}.")

def _preset_changed() -> None:
    """A new preset brings its own epochs: the link's epochs were the old preset's."""
    write_url({"preset": st.session_state["compare_preset"], "epochs": None})


if url_from_outside():  # Back or Forward: the launch form starts from the URL's preset and algorithms again
    for key in ("compare_preset", "compare_algos"):
        st.session_state.pop(key, None)
with st.expander("Launch FF and FGFF (or MF, BP)", expanded=not selected_run_ids(), icon=":material/rocket_launch:"):
    # Outside the form: picking a preset redraws its description and epochs at once.
    preset = st.selectbox("Preset", preset_names, index=preset_names.index(link_preset), key="compare_preset",
                          format_func=lambda n: PRESETS[n].title, on_change=_preset_changed,
                          help="Data, layers and hyper-parameters; FF and FGFF get the same ones (FF ignores the "
                          "significance learning rate).")
    st.caption(PRESETS[preset].description)
    if "compare_algos" not in st.session_state:
        st.session_state["compare_algos"] = algos_param
    algos = st.multiselect("Algorithms", ALGORITHMS, key="compare_algos", format_func=algo_label,
                           help="Each is trained on the same data, layers, seeds and epochs per layer (BP: epochs in "
                           "all); MF and BP with the preset's optimizer settings for cross-entropy. "
                           + algorithms_key(ALGORITHMS))
    algos = [a for a in ALGORITHMS if a in algos]  # FF, FGFF, MF, BP: the order differences are read in
    for algo in algos:  # the page's title and caption explain FF and FGFF; MF and BP get their paragraph
        if not has_goodness(algo):
            st.caption(algorithm_note(algo))
    labels = [algo_label(a) for a in algos]
    launch_label = "Start " + (" and ".join(labels) if len(labels) < 3 else ", ".join(labels[:-1]) + " and "
                               + labels[-1])
    with st.form("launch"):
        c2, c3 = st.columns(2)
        n_seeds = c2.number_input("Seeds", min_value=1, max_value=MAX_LAUNCH_SEEDS, value=seeds_param,
                                  help="Seeds 0 .. n-1, one run of each algorithm each.")
        epochs = c3.number_input("Epochs per layer", min_value=epochs_meta["min"], max_value=epochs_meta["max"],
                                 value=epochs_param, help=epochs_meta["help"])
        anyway = st.checkbox("Start it even if it takes long", help="Without it, a comparison whose runs would take "
                             "longer than this server starts without asking is not started.")
        start = st.form_submit_button(launch_label, type="primary", icon=":material/play_arrow:")
    if start:
        write_url({"preset": preset, "seeds": str(int(n_seeds)), "epochs": str(int(epochs)),
                   "algos": None if algos == DEFAULT_ALGOS else ",".join(algos)})
        launched = None
        try:
            def base(algo: str) -> RunConfig:
                """The preset's config for ``algo`` at the chosen epochs (MF, BP: with its ``bp_overrides``)."""
                return PRESETS[preset].config(algo, epochs=int(epochs))

            runs_now = runs_or_stop()
            configs = compare.comparison_configs(base, range(int(n_seeds)), algos)
            too_long = launch.over_time_limit(launch.estimate_training(configs, runs_now), f"These {len(configs)} runs")
            if too_long and not anyway:
                st.warning(f"{too_long}. Lower the epochs, or tick *Start it even if it takes long* and press Start "
                           "again.")
            else:
                launched = compare.launch_comparison(jm, base, seeds=range(int(n_seeds)), algos=algos, runs=runs_now,
                                                     owner=session_owner())
        except ValueError as exc:  # a bad config or a server limit: the message names the field
            st.error(f"Could not start the comparison: {exc}")
        if launched is not None:
            ids = launched.run_ids
            new = [r for r in ids if r not in launched.reused]
            notes = []
            if new:
                notes.append((st.success, f"Started {len(new)} runs: {', '.join(new)}. They train one after "
                                          "another; the charts below update live."))
            if launched.reused:
                notes.append((st.info, f"{len(launched.reused)} of these runs (same config and seed) were "
                                       f"already queued or running, so they were not launched again: "
                                       f"{', '.join(launched.reused)}."))
            st.session_state[NOTES_KEY] = (ids, notes)
            set_selected_run_ids(ids)
            st.session_state[SELECT_KEY] = ids
            st.rerun()  # fold the launch form now: drawn open in this run, it folded at the next status change,
            # under a student's second click (issue 39 item 1)
launched_ids, notes = st.session_state.get(NOTES_KEY, ([], []))
if launched_ids == selected_run_ids():  # the last launch's outcome, outside the (then folded) form, until
    for show, text in notes:  # the selection changes
        show(text)


# -- which runs --------------------------------------------------------------------------------------
runs = runs_or_stop("No runs yet: start a comparison above, or train runs on the **Train** page.")
chosen = run_picker(runs, "Runs to compare", SELECT_KEY,
                    placeholder="Pick two or more runs, or launch a comparison above")
if len(chosen) < 2:
    st.info("Select at least two runs (e.g. an FF and an FGFF run) to compare them.")
    st.stop()

# On a row of its own: in a third of the page its chip row hid the second metric ("Layer l…") at 1024 and 1280 px.
metrics = st.multiselect("Metrics", compare.CURVE_METRICS, default=["test_acc", "loss"], format_func=metric_label)
c1, c2 = st.columns(2)
display = Display(
    metrics=metrics,
    smoothing=c1.slider("Smoothing (EMA)", 0.0, 0.99, 0.0, 0.01, help="0 = raw; 0.9 = strong smoothing, per run, "
                        "before averaging over seeds."),
    spread=c2.radio("Spread over seeds", SPREADS, horizontal=True,
                    format_func={"std": "±1 std", "min-max": "min-max", "none": "none"}.get),
    diff_only=st.toggle("Config diff only", value=True, help="Show only the config fields that differ between runs."),
)


def show_comparison(store: RunStore, run_ids: list[str], display: Display) -> None:
    """Progress, curves, final table and config diff (a live view: it redraws itself while runs are live)."""
    try:
        _comparison(store, run_ids, display)
    except Exception as exc:  # noqa: BLE001 - shown in the page, never a crashed server
        st.error(f"Could not show the comparison: {exc}")


def _comparison(store: RunStore, run_ids: list[str], display: Display) -> None:
    runs_now = store.live.runs().set_index("run_id").loc[run_ids].reset_index()
    distinct = compare.distinct_runs(runs_now)
    if distinct.repeats:
        st.caption(f"{len(distinct.repeats)} selected run(s) repeat another run's config and seed, so they are counted "
                   "once: " + ", ".join(f"{r} (same as {k})" for r, k in distinct.repeats.items()) + ".")
    run_ids = distinct.run_ids
    runs_now = runs_now[runs_now["run_id"].isin(run_ids)]
    configs = {r: RunConfig.from_dict(c) for r, c in zip(runs_now["run_id"], runs_now["config"])}
    groups = compare.group_runs(configs)
    colors = group_colors(compare.group_order(groups))

    live = runs_now[runs_now["status"].isin(ACTIVE_STATUSES)]
    for row in live.to_dict("records"):
        prog = run_progress(row, None)
        st.progress(prog.fraction, text=f"{row['name']} ({row['status']}): {prog.text()}")
    failed = runs_now[runs_now["status"] == RunStatus.FAILED]
    for row in failed.to_dict("records"):
        st.error(f"{row['name']} failed: {run_failure(row['error'])}")

    long = store.live.metrics_long(run_ids)
    if long.empty:
        st.info("No metrics yet: the runs are queued or just starting.")
    st.caption(algorithms_key(sorted({c.algo for c in configs.values()}, key=ALGORITHMS.index)))  # the legends' names
    cols = st.columns(2)
    for i, metric in enumerate(display.metrics):
        shown = compare.groups_with_own_value(groups, configs, metric)  # without s: only runs that train s
        agg = compare.aggregate_curves(long, shown, metric, display.smoothing)
        with cols[i % 2]:
            if agg.empty:
                st.caption(f"{metric_label(metric)}: " + ("no values yet." if shown else "only runs that train s "
                                                          "(FGFF) have it."))
                continue
            st.plotly_chart(curves_figure(agg, metric, display.spread, colors), key=f"curve_{metric}")

    st.subheader("Final metrics")
    finished = runs_now[pd.to_numeric(runs_now["test_acc"], errors="coerce").notna()]
    if finished.empty:
        st.info("No final metrics yet: they appear here when the first runs finish.")
    else:
        # Only groups with a finished run get columns: a queued group's would be all blanks.
        done_groups = {r: g for r, g in groups.items() if r in set(finished["run_id"])}
        sentence = compare.verdict(finished, done_groups)
        if sentence:
            st.markdown(f"**{sentence}**")
        waiting = [g for g in compare.group_order(groups) if g not in set(done_groups.values())]
        if waiting:
            st.caption(f"Not in the table yet (no finished run): {', '.join(waiting)}.")
        order = compare.group_order(done_groups)
        # Static tables, which wrap their row titles: a dataframe kept them on one line, and on a phone the
        # "FGFF - FF" column was off the screen with nothing to say so. Many groups: values, then differences.
        parts = final_table_parts(final_table_text(final_table_for_display(
            compare.final_metrics_table(finished, done_groups))))
        for part in parts:
            st.table(part)
        differences = ("" if len(order) < 2 else f"; the last column is {order[1]} - {order[0]}" if len(order) == 2
                       else f"; the {'second table holds the' if len(parts) > 1 else 'last columns are'} "
                            f"differences to {order[0]}")
        st.caption("Means over the finished runs of each group, one run per seed, ± their standard deviation. "
                   f"Accuracies in % on the full test/train sets at the end of training{differences}; – where a "
                   "group has no value.")

    st.subheader("Configs")
    keyed = {f"{groups[r]} · {r}": configs[r] for r in run_ids}
    if display.diff_only:
        diff = compare.config_diff(keyed)
        if diff.empty:
            st.caption("All configs are identical.")
        else:
            st.dataframe(diff.astype(str))
    else:
        st.dataframe(pd.DataFrame({k: {f: str(v) for f, v in c.to_dict().items()} for k, c in keyed.items()}))


live_view(show_comparison, jm.store, chosen, display, statuses=lambda: run_statuses(jm.store.live.runs(), chosen),
          every=POLL_SECONDS, shown=run_statuses(runs, chosen))
