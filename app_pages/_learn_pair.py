"""Step 4's FF/FGFF pair panel of the Learn page: train the pair once as background jobs, then compare them.

A helper of ``learn.py`` only (not a page): widgets and drawing; ``fgff_core.lesson`` finds the pair and
reads its results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import streamlit as st

from app_pages._shared import job_manager, live_view, runs_or_stop, session_owner
from fgff_core import lesson
from fgff_core.config import RunConfig
from fgff_core.format import points
from fgff_core.jobs import launch
from fgff_core.jobs.polling import run_statuses
from fgff_core.jobs.progress import run_progress
from fgff_core.store import RunStore
from fgff_core.viz import lesson as vlesson
from fgff_core.vocabulary import algo_label

POLL_SECONDS = 1.0  # the pair's progress is redrawn this often while it trains


def pair_progress(store: RunStore, run_ids: Mapping[str, str]) -> None:
    """The progress of each run of the pair (``run_ids``: algorithm -> run id), a live view while it trains."""
    for algo, run_id in run_ids.items():
        p = run_progress(store.live.run(run_id), None)
        st.progress(p.fraction, text=f"{algo_label(algo)}: {p.text()}")


def pair_panel(cfg: RunConfig, stored_model: Callable[[str], tuple]) -> None:
    """The FF/FGFF pair of ``cfg``: train it once as background jobs, wait for it, then compare the factors.

    ``stored_model(run_id)``: the page's cached (model, neuron roles) of a stored run."""
    jm = job_manager()
    runs = runs_or_stop()
    pair = lesson.LessonPair.find(runs, cfg)
    found = pair.runs
    if pair.missing:
        ended = lesson.ended_without_result(pair.ended)
        if ended:
            st.error(f"Training ended without a result: {', '.join(ended)}. Change a setting or try again.")
        expected = launch.estimate_training([cfg.replace(algo=a) for a in pair.missing], runs)
        st.info(f"Train the pair once (a background job, {cfg.epochs} epochs per layer each, {expected.text()}); "
                "whoever opens this link afterwards sees the stored result at once.")
        if st.button(f"Train {' and '.join(algo_label(a) for a in pair.missing)}", type="primary",
                     icon=":material/play_arrow:", key="step4_train"):
            try:
                for algo in pair.missing:
                    jm.submit(cfg.replace(algo=algo), name=lesson.pair_job_name(cfg, algo), owner=session_owner())
            except ValueError as exc:
                st.error(f"Could not start: {exc}")
            else:
                st.rerun()
        return
    if not pair.all_done:  # the page reruns when a run ends: with the comparison, or with why one must train again
        run_ids = {algo: row["run_id"] for algo, row in found.items()}
        live_view(pair_progress, jm.store, run_ids,
                  statuses=lambda: run_statuses(jm.store.live.runs(), run_ids.values()),
                  every=POLL_SECONDS, shown=[row["status"] for row in found.values()])
        return
    cols = st.columns(2)
    for col, algo in zip(cols, lesson.LESSON_ALGOS):
        _, roles = stored_model(found[algo]["run_id"])
        with col:
            st.plotly_chart(vlesson.factors_figure(roles, algo), key=f"step4_factors_{algo}")
            st.dataframe(lesson.role_table(lesson.role_counts(roles)), key=f"step4_roles_{algo}")
    st.plotly_chart(vlesson.accuracy_figure(pair.accuracy_bars()), key="step4_acc")
    fg = found["fgff"]
    st.caption(f"Dropping the factors at prediction (eq. 2 instead of eq. 3) changes FGFF's test accuracy by "
               f"{points(pair.factor_drop(), 1)}. The paper (section III.C) finds the network still predicts "
               "well without them: the factors mostly shape *training*. Runs: "
               f"FF `{found['ff']['run_id']}`, FGFF `{fg['run_id']}` (see the Runs page).")
    _, fg_roles = stored_model(fg["run_id"])
    means = fg_roles.groupby("role")["activity_diff"].mean()
    if len(means):
        st.caption("Mean squared activity on positive minus negative test data, per FGFF role: " +
                   ", ".join(f"{r} {means[r]:+.3f}" for r in lesson.ROLES if r in means) + ".")
    st.markdown("**Does the factor matter?** Remove the neurons with the smallest factors and see what the "
                "network loses, compared with removing random ones: the Significance page draws it for this pair, "
                "with what each neuron looks at and which classes it prefers.")
    st.page_link("app_pages/significance.py", label="Does the factor matter? (Significance page, this pair)",
                 icon=":material/content_cut:", query_params={"run": f"{found['ff']['run_id']},{fg['run_id']}"})
