"""The few helpers every page shares: the one job manager of this server, the run table, the selected
runs, the run pickers and the live view that redraws itself while what it shows is active.

Pages import it as ``from app_pages._shared import job_manager, runs_or_stop, run_picker``. Keep it
tiny: logic belongs in ``fgff_core``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from fgff_core.jobs import JobManager, Requester, RunAccess
from fgff_core.jobs.owners import OWNER_PARAM, new_owner_token, owner_token_or_none
from fgff_core.jobs.polling import Polling
from fgff_core.public import server_problem
from fgff_core.store import ticking
from fgff_core.vocabulary import algo_label

LOG = logging.getLogger("fgff_explorer")
RUN_PARAM = "run"  # query parameter holding the selected run id(s), comma separated
OWNER_KEY = "owner_token"  # session state: this browser session's owner token
TEACHER_KEY = "teacher_key"  # session state of the sidebar's teacher-key box
REFUSED_KEY = "run_action_refused"  # session state: why the last cancel/delete/rename was refused
_EXPLAINED_KEY = "_runs_left_out_with_a_reason"  # runs of the link this page said it leaves out, and why
TICK_MAX_AGE_S = 0.9  # a live view's own rerun reads what any session read this recently (fgff_core.store.live);
# under the shortest redraw interval of a run (1 s), so that a lone session's ticks still read the store each time


def job_manager() -> JobManager:
    """One JobManager per server process (runs dir: $FGFF_RUNS_DIR or ./runs); shared by all sessions.

    One that cannot start (a damaged store, an invalid $FGFF_EXECUTOR, ...) is a sentence and stops the page.
    """
    try:
        return _job_manager(os.environ.get("FGFF_RUNS_DIR"))
    except Exception as exc:  # noqa: BLE001 - a broken server is said in a sentence, never a traceback
        st.error(server_problem(exc))
        st.stop()


@st.cache_resource(show_spinner=False, validate=lambda jm: not jm.closed)
def _job_manager(runs_dir: str | None) -> JobManager:
    # Keyed on the runs dir so tests that point FGFF_RUNS_DIR at a fresh tmp dir get a fresh manager;
    # one that was shut down (fgff_core.jobs.shutdown_all) is replaced by a new one.
    return JobManager(runs_dir=runs_dir)


def session_owner() -> str:
    """This browser session's owner token (``fgff_core.jobs.owners``), made on a first visit.

    Kept in the URL (``?me=``) so that a reload keeps it, and in the session so that a page link, which drops the
    URL's parameters, keeps it too (written back to the URL on every page). Not in any share link."""
    token = st.session_state.get(OWNER_KEY)
    if token is None:
        token = owner_token_or_none(st.query_params.get(OWNER_PARAM)) or new_owner_token()
        st.session_state[OWNER_KEY] = token
    if st.query_params.get(OWNER_PARAM) != token:
        st.query_params[OWNER_PARAM] = token
    return token


_URL_LEFT_KEY = "_url_left"  # session state: (page, query) as this session's page last left the URL
_URL_OUTSIDE_KEY = "_url_from_outside"  # session state: this run's URL is not the one its page last left


def note_url_arrival(page: str) -> None:
    """Before a page runs (app.py): whether its URL comes from outside the page. Streamlit (1.67) pushes a browser
    history entry for each new query string a page writes and, on Back or Forward, reruns the page with that
    entry's URL; but widgets keep their own state, so the page wrote them over the entry again and the earlier
    state was lost. A URL other than the one this page last left (``write_url``; Back, Forward, an edited link)
    comes from outside: ``url_from_outside`` tells the pages to restart their widgets from it."""
    left = st.session_state.get(_URL_LEFT_KEY)
    st.session_state[_URL_OUTSIDE_KEY] = (left is not None and left[0] == page
                                          and left[1] != st.query_params.to_dict())
    st.session_state[_URL_LEFT_KEY] = (page, st.query_params.to_dict())


def write_url(changes: dict[str, str | None]) -> None:
    """Set (a text) or remove (None) query parameters in one write, and remember the URL the page leaves. Each write
    of a new query string is a browser history entry, so a page writes what changed at once: one per parameter made
    Back step through half-changed forms. (Not from a script's ``finally``: a stopped run cannot read the URL.)"""
    now = {k: st.query_params.get_all(k) for k in st.query_params}
    new = {k: v for k, v in now.items() if k not in changes} | {k: [v] for k, v in changes.items() if v is not None}
    if new != now:
        st.query_params.from_dict(new)
    left = st.session_state.get(_URL_LEFT_KEY)
    if left is not None:
        st.session_state[_URL_LEFT_KEY] = (left[0], st.query_params.to_dict())


def url_from_outside() -> bool:
    """Whether this run's URL came from Back, Forward or an edited link (``note_url_arrival``): widgets that mirror
    the URL start from it again."""
    return bool(st.session_state.get(_URL_OUTSIDE_KEY))


def teacher_box() -> None:
    """The sidebar's teacher-key box, only on a server with ``$FGFF_TEACHER_KEY``; the key is never shown."""
    access = RunAccess.from_env()
    if not access.has_teacher:
        return
    with st.sidebar.expander("Teacher", icon=":material/key:"):
        entered = st.text_input("Teacher key", type="password", key=TEACHER_KEY,
                                help="The key set on this server: with it, this browser may cancel, delete and "
                                     "rename every run, not only its own.")
        if entered and access.is_teacher_key(entered):
            st.caption("Teacher: you may cancel, delete and rename every run.")
        elif entered:
            st.error("That is not this server's teacher key.")


def requester() -> Requester:
    """Who this browser session is, for cancel/delete/rename: its owner token, and whether it entered the
    server's teacher key."""
    return job_manager().access.requester(session_owner(), st.session_state.get(TEACHER_KEY))


def run_action(action: Callable[..., None], *args: Any) -> None:
    """A button's ``on_click``: ``action(*args, by=requester())`` (``jm.cancel``, ``jm.delete``, ...), asked as this
    session is at the click (a teacher key cleared since the button was drawn no longer counts); a refusal (not
    this session's run) is kept for ``show_refusal`` to say as a sentence."""
    try:
        action(*args, by=requester())
    except PermissionError as exc:
        st.session_state[REFUSED_KEY] = str(exc)


def show_refusal() -> None:
    """The sentence of the last refused ``run_action``, once."""
    if REFUSED_KEY in st.session_state:
        st.error(f"{st.session_state.pop(REFUSED_KEY)}.")


def runs_or_stop(empty_message: str | None = None, keep: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                 not_here: Callable[[str], str | None] | None = None) -> pd.DataFrame:
    """The store's run table (newest first), narrowed by ``keep``.

    A store that cannot be read is shown as an error and stops the page; so does an empty table
    when ``empty_message`` is given (shown as an info). A run of the link that ``keep`` leaves out is said in
    ``not_here(algo)``'s sentence (e.g. an MF run on a page about goodness) instead of as a missing run.
    """
    try:
        runs = job_manager().store.runs()
    except Exception as exc:  # noqa: BLE001 - a broken store is shown, never crashes the server
        st.error(server_problem(exc))
        st.stop()
    explained = []
    if keep is not None and not runs.empty:
        kept = keep(runs)
        left_out = runs[runs["run_id"].isin(selected_run_ids()) & ~runs["run_id"].isin(kept["run_id"])]
        for row in left_out.itertuples():
            sentence = not_here(row.algo) if not_here is not None else None
            if sentence:
                st.info(f"Run {row.run_id!r} ({row.name}): {sentence}")
                explained.append(row.run_id)
        runs = kept
    st.session_state[_EXPLAINED_KEY] = explained  # the pickers do not call them missing
    if runs.empty and empty_message is not None:
        warn_missing_runs(set())
        st.info(empty_message)
        st.stop()
    return runs


def warn_missing_runs(known: set[str]) -> None:
    """A warning for each run id of the link that is not in ``known`` (deleted, or not shown here), unless
    ``runs_or_stop`` already said why this page leaves it out."""
    explained = set(st.session_state.get(_EXPLAINED_KEY, ()))
    for run_id in selected_run_ids():
        if run_id not in known and run_id not in explained:
            st.warning(f"Run {run_id!r} from the link does not exist (deleted?) or cannot be shown on this page.")


def run_label(run: Any) -> str:
    """How a run (a row of the run table) is named in a picker: name, algorithm and id.

    Not its status: the browser sends a picker's selection back as its labels, so a label that changes while
    the run is picked (queued, running, done) matches no option any more (issue 39's Compare traceback)."""
    return f"{run.name} · {algo_label(run.algo)} · {run.run_id}"


def _label_of(labels: dict[str, str]) -> Callable[[object], str]:
    """A picker's ``format_func``: a run's label, and any other value as itself, never None."""
    return lambda value: labels.get(value, str(value))  # type: ignore[call-overload]


def run_picker(runs: pd.DataFrame, label: str, key: str, default: Sequence[str] = (),
               max_selections: int | None = None, placeholder: str | None = None) -> list[str]:
    """A multiselect of ``runs`` that starts from the URL's selection (else ``default``), drops runs
    deleted elsewhere, and writes the choice back to the URL."""
    labels = {r.run_id: run_label(r) for r in runs.itertuples()}
    warn_missing_runs(set(labels))
    if key not in st.session_state or url_from_outside():
        from_url = [r for r in selected_run_ids() if r in labels][:max_selections]
        st.session_state[key] = from_url or list(default)
    else:  # a run deleted elsewhere drops out of the selection
        st.session_state[key] = [r for r in st.session_state[key] if r in labels]
    chosen = st.multiselect(label, list(labels), key=key, max_selections=max_selections,
                            format_func=_label_of(labels), placeholder=placeholder)
    chosen = [r for r in chosen if r in labels]  # a stale label the browser still held is not a run
    if chosen != selected_run_ids():
        set_selected_run_ids(chosen)
    return chosen


def pick_one_run(runs: pd.DataFrame, label: str, key: str) -> str:
    """A selectbox of ``runs`` (not empty) that starts from the URL's first selected run it holds, else
    the newest, and writes the choice to the URL."""
    labels = {r.run_id: run_label(r) for r in runs.itertuples()}
    warn_missing_runs(set(labels))
    ids = list(labels)
    wanted = next((r for r in selected_run_ids() if r in labels), ids[0])
    if url_from_outside():  # Back or Forward: the URL's run, not the one the widget last held
        st.session_state.pop(key, None)
    run_id = st.selectbox(label, ids, index=ids.index(wanted), format_func=_label_of(labels), key=key)
    run_id = run_id if run_id in labels else wanted
    if run_id not in selected_run_ids():
        set_selected_run_ids([run_id])
    return run_id


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


def page_failed() -> None:
    """What a browser user sees when a page (or its live view) raises what nothing else caught: a sentence, no
    traceback and no server path; the traceback goes to the server's log. Call it inside ``except``."""
    LOG.exception("a page failed")
    st.error("This view hit an unexpected problem and stopped. Reload the page to try again; the details are in "
             "the server's log.")


def set_selected_run_ids(run_ids: list[str]) -> None:
    """Write the selection to the URL so a link reproduces the view; an empty list removes it."""
    write_url({RUN_PARAM: ",".join(run_ids) or None})


def live_view(view: Callable[..., None], *args: Any, statuses: Callable[[], Sequence[object]], every: float,
              shown: Sequence[object] | None = None) -> None:
    """Draw ``view(*args)`` as a fragment that reruns every ``every`` seconds while what it shows is active, and
    that reruns the whole page once when that changes while it polls (the rule: ``fgff_core.jobs.polling``).

    ``statuses()``: the run statuses of what the view shows, read now. ``shown``: the statuses the page drew
    outside the view (its run pickers), by default ``statuses()`` now. ``view`` reads only its arguments: a
    fragment rerun calls it again with those of the page's last full run.

    The view's own reruns (not its first draw with the page) run inside ``fgff_core.store.ticking``: what they read
    through ``store.live`` (the run table, a run's row, its metrics) is shared by every browser session for
    ``TICK_MAX_AGE_S``, so twenty pages ticking at once cost the store one table query, not twenty."""
    polling = Polling.start(statuses() if shown is None else shown, every)
    first = [True]  # the draw with the page reads fresh: what it shows after a click is never older than the click

    def poll() -> None:
        with ticking(0.0 if first[0] else TICK_MAX_AGE_S):
            first[0] = False
            try:
                view(*args)
            except Exception:  # noqa: BLE001 - a sentence in the page, the traceback in the server log only
                page_failed()
            rerun = polling.rerun_page(statuses())
        if rerun:
            st.rerun()  # pickers and controls outside the view catch up; the fresh page stops an idle timer

    st.fragment(run_every=polling.every)(poll)()
