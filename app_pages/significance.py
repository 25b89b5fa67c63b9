"""Significance: a run's significance matrix (layers x neurons) over training, and what the factors mean."""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from app_pages._shared import job_manager, live_view, run_picker, runs_or_stop
from app_pages._significance_ablation import ablation_section
from fgff_core.analysis import findings
from fgff_core.analysis.inspect import activity_correlation, neuron_activity
from fgff_core.config.labels import not_applicable
from fgff_core.data.access import load_served_for_config
from fgff_core.jobs.polling import run_statuses
from fgff_core.store import RunStore
from fgff_core.viz import significance as sv
from fgff_core.vocabulary import algo_label, has_factors, is_active, trains_factors

SELECT_KEY = "significance_runs"
ACTIVITY_SAMPLES = 1000
POLL_SECONDS = 3.0  # a training run's matrix is redrawn this often


class Display(NamedTuple):
    """How the matrices are drawn: the page's controls."""

    animate: bool  # play the matrix over training (finished runs only)
    scale: str  # one of sv.SCALES
    sort: bool  # each layer's neurons by decreasing factor
    epoch: int | None  # each layer after its e-th epoch; None: the latest

jm = job_manager()
st.title("Significance")
st.caption("FGFF gives every neuron a trainable factor s that weighs its share of the goodness (eq. 3). Factors "
           "start at 1 and may go below 0: red is above 1, blue below, white at 1. FF keeps every factor at 1.")

runs = runs_or_stop("No FF or FGFF runs yet. Train one on the **Train** page or launch FF vs FGFF on **Compare**.",
                    keep=lambda r: r[r["algo"].map(has_factors)],
                    not_here=lambda a: None if has_factors(a) else not_applicable(a, "the significance matrix"))
newest_fgff = runs.loc[runs["algo"].map(trains_factors), "run_id"].head(1).tolist()
chosen = run_picker(runs, "Runs (one, or two side by side)", SELECT_KEY,
                    default=newest_fgff or runs["run_id"].head(1).tolist(), max_selections=2)
if not chosen:
    st.info("Select a run to see its significance matrix.")
    st.stop()

c1, c2, c3 = st.columns([2, 2, 2])
view = c1.radio("View", ["Epoch slider", "Animation"], horizontal=True,
                help="Animation plays the matrix over training in the chart (Play button under it).")
scale = c2.radio("Colour scale", sv.SCALES, horizontal=True, format_func={"global": "global",
                 "per-layer": "per layer"}.get, help="global: one range for all layers; per layer: each layer's "
                 "deviations from 1 scaled to its own largest one (hover shows the real factors).")
sort = c3.toggle("Sort by factor", help="Each layer's neurons in decreasing order of factor; the hover "
                 "text keeps the neuron's index.")


@st.cache_data(show_spinner="Measuring each neuron's activity on positive and negative test data...", max_entries=16)
def activity(_store: RunStore, runs_dir: str, run_id: str, checkpoint_mtime: float):
    model, config = _store.load_model(run_id)
    act = neuron_activity(model, load_served_for_config(config), n_samples=ACTIVITY_SAMPLES)
    return act, activity_correlation(act)


histories = {}
for rid in chosen:
    try:
        histories[rid] = jm.store.significance(rid)
    except Exception as exc:  # noqa: BLE001
        st.error(f"Could not read the significance of run {rid}: {exc}")
shown = run_statuses(runs, chosen)
live = any(is_active(s) for s in shown)
max_epoch = max((sv.n_epochs(h) for h in histories.values()), default=0)
epoch = None
if view == "Epoch slider" and max_epoch > 1 and not live:
    epoch = st.slider("Epoch (each layer after its e-th epoch)", 1, max_epoch, max_epoch, key="significance_epoch")
elif live:
    st.caption("A selected run is still training: showing the latest epoch, updated every few seconds.")


def show_run(store: RunStore, rid: str, history: list, display: Display) -> None:
    """One run's matrix, its factors and (once it has a checkpoint) factor vs. activity; ``history``: its
    significance as the page read it (re-read here while the run trains)."""
    epoch = display.epoch
    run = store.live.run(rid)
    algo = algo_label(run["algo"])
    st.subheader(f"{run['name']} ({algo})")
    history = store.significance(rid) if is_active(run["status"]) else history
    if sv.n_epochs(history) == 0:
        st.info(f"Run {rid} has no significance snapshots yet (status: {run['status']}).")
        return
    uses_factors = trains_factors(run["algo"])
    if not uses_factors:
        st.caption("FF: the factors are frozen at 1, so the matrix is uniformly white; compare with an FGFF run.")
    if display.animate and not is_active(run["status"]):
        fig = sv.significance_animation(history, display.scale, display.sort,
                                        title=f"{algo}: significance matrix over training")
    else:
        fig = sv.significance_heatmap(history, epoch, display.scale, display.sort)
    st.plotly_chart(fig, key=f"heatmap_{rid}")
    st.markdown(findings.negative_factor_sentence(sv.significance_at(history, epoch), run["algo"]))
    if uses_factors:  # FF's factors are all 1: a histogram would be one block filling the plot
        st.plotly_chart(sv.significance_histogram(history, epoch, title=f"{algo}: factors per layer"),
                        key=f"hist_{rid}")
    ckpt = store.checkpoint_path(rid)
    if ckpt is None:
        st.caption("The factor-vs-activity view needs the run's checkpoint, written when it ends.")
        return
    act, corr = activity(store, str(store.root), rid, ckpt.stat().st_mtime)
    st.plotly_chart(sv.activity_scatter(act, corr, title=f"{algo}: factor vs. positive - negative activity"),
                    key=f"activity_{rid}")
    st.caption(f"Each dot is a neuron: mean h² on {ACTIVITY_SAMPLES} test samples with the true label (positive) "
               "minus with a wrong label (negative). Spearman ρ: rank correlation of factor and that difference.")


def show_runs(store: RunStore, histories: dict[str, list], display: Display) -> None:
    """The runs side by side (a live view: it redraws itself while one trains; the page reruns when it ends,
    which brings back the epoch slider)."""
    for col, (rid, history) in zip(st.columns(len(histories)), histories.items()):
        with col:
            try:
                show_run(store, rid, history, display)
            except Exception as exc:  # noqa: BLE001 - shown in the page, never a crashed server
                st.error(f"Could not show run {rid}: {exc}")


display = Display(animate=view == "Animation", scale=scale, sort=sort, epoch=epoch)
live_view(show_runs, jm.store, {r: histories.get(r, []) for r in chosen}, display,
          statuses=lambda: run_statuses(jm.store.live.runs(), chosen), every=POLL_SECONDS, shown=shown)
st.divider()
ablation_section(jm.store, chosen)
