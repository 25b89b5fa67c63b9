"""The few helpers every page shares: the one job manager of this server, and the selected runs.

Pages import it as ``from app_pages._shared import job_manager, selected_run_ids``. Keep it tiny: logic
belongs in ``fgff_core``.
"""

from __future__ import annotations

import os

import streamlit as st

from fgff_core.jobs import JobManager

RUN_PARAM = "run"  # query parameter holding the selected run id(s), comma separated


def job_manager() -> JobManager:
    """One JobManager per server process (runs dir: $FGFF_RUNS_DIR or ./runs); shared by all sessions."""
    return _job_manager(os.environ.get("FGFF_RUNS_DIR"))


@st.cache_resource(show_spinner=False)
def _job_manager(runs_dir: str | None) -> JobManager:
    # Keyed on the runs dir so tests that point FGFF_RUNS_DIR at a fresh tmp dir get a fresh manager.
    return JobManager(runs_dir=runs_dir)


def selected_run_ids() -> list[str]:
    """The run ids in the URL (``?run=a,b``), in order, without empties or duplicates."""
    raw = st.query_params.get_all(RUN_PARAM)
    ids: list[str] = []
    for value in raw:
        for part in value.split(","):
            part = part.strip()
            if part and part not in ids:
                ids.append(part)
    return ids


def set_selected_run_ids(run_ids: list[str]) -> None:
    """Write the selection to the URL so a link reproduces the view; an empty list removes it."""
    if run_ids:
        st.query_params[RUN_PARAM] = ",".join(run_ids)
    elif RUN_PARAM in st.query_params:
        del st.query_params[RUN_PARAM]
