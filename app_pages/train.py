"""Train: a form generated from the run-config schema, Start/Cancel, and live curves while it runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from app_pages._shared import (
    RUN_PARAM,
    job_manager,
    live_view,
    requester,
    run_action,
    runs_or_stop,
    selected_run_ids,
    session_owner,
    set_selected_run_ids,
    show_refusal,
    url_from_outside,
    write_url,
)
from fgff_core.analysis import findings
from fgff_core.config import DEFAULT_BATCH_SIZE, DEFAULT_LR, RunConfig
from fgff_core.config.form import config_from_params, config_to_params, form_fields, preset_param, to_widget_value
from fgff_core.config.labels import algorithm_note, field_help, field_label
from fgff_core.config.presets import PRESETS, picker_order
from fgff_core.data import DATASETS
from fgff_core.data.access import served_config
from fgff_core.engine.device import resolve_device
from fgff_core.format import duration, percent
from fgff_core.jobs import JobManager, Requester, launch
from fgff_core.jobs.owners import newest_active_run
from fgff_core.jobs.polling import run_statuses
from fgff_core.jobs.progress import run_progress
from fgff_core.public import run_failure
from fgff_core.viz import curves
from fgff_core.vocabulary import RunStatus, algo_label, trains_factors

FIELDS = form_fields()
KEY = "cfg_{}".format  # widget key of a config field
STATE = "train_config"  # the last valid config of this session, as a dict
JOINED_KEY = "joined_run"  # the run this session's Start joined (another browser's, same config and seed)
OWN_ERROR_KEY = "own_run_error"  # why "Train my own" could not start

jm = job_manager()
st.title("Train a Forward-Forward network")

device = resolve_device("auto")
st.caption(f"Device: **{device.type.upper()}** (auto picks CUDA, then Apple MPS, then CPU). "
           "FF and FGFF train layer by layer with no backward pass between layers; "
           "FGFF also learns a significance factor per neuron.")


# -- form state: URL -> session -> widgets -----------------------------------------------------
def _seed_widgets(config: RunConfig) -> None:
    for f in FIELDS:
        st.session_state[KEY(f.name)] = to_widget_value(f, getattr(config, f.name))


FIRST_PRESET = next(iter(PRESETS))
link_errors: list[str] = []
link_preset = preset_param(st.query_params, FIRST_PRESET, link_errors)  # ?preset=NAME (the Learn page links one)
for message in link_errors:
    st.warning(f"The link's {message}.")
arriving = any(KEY(f.name) not in st.session_state for f in FIELDS)  # a new session, or back from another page
if STATE not in st.session_state or arriving and "preset" in st.query_params or url_from_outside():
    try:
        initial = config_from_params(st.query_params.to_dict())
    except ValueError as exc:
        st.error(f"The link's config is not valid, so the defaults are shown instead. {exc}")
        initial = RunConfig()
    if not set(st.query_params) & {f.name for f in FIELDS}:  # no config in the link: its preset, as shown
        initial = PRESETS[link_preset].config()
    st.session_state[STATE] = initial.to_dict()
    st.session_state["preset"] = link_preset
    _seed_widgets(initial)
elif arriving:
    _seed_widgets(RunConfig.from_dict(st.session_state[STATE]))


def _load_preset() -> None:
    """Picking a preset fills the form at once (the caption and the form never disagree)."""
    _seed_widgets(PRESETS[st.session_state["preset"]].config())  # with its own algorithm ("Strong FF": FF)


def _algo_changed() -> None:
    """Keep lr and batch size on the new algorithm's default unless the user had changed them."""
    old, new = st.session_state[STATE]["algo"], st.session_state[KEY("algo")]
    for name, defaults in (("lr", DEFAULT_LR), ("batch_size", DEFAULT_BATCH_SIZE)):
        if old in defaults and new in defaults and st.session_state[KEY(name)] == defaults[old]:
            st.session_state[KEY(name)] = defaults[new]


# -- the form ----------------------------------------------------------------------------------
def _current_run_id() -> str | None:
    """The run in the URL; else this browser session's own newest active run, so a refresh reattaches (never
    another session's run: a newcomer sees none)."""
    for run_id in selected_run_ids():
        try:
            jm.store.run(run_id)
            return run_id
        except (KeyError, ValueError):
            st.warning(f"Run {run_id!r} from the link does not exist (deleted?).")
    return newest_active_run(jm.store.runs(), session_owner())


shown_run = _current_run_id()
if "preset" not in st.session_state:
    st.session_state["preset"] = link_preset
left, right = st.columns([2, 1], vertical_alignment="bottom")  # [5, 1] cut "Start training" to "Sta…" at 1024 px
left.selectbox("Preset", picker_order(), key="preset", format_func=lambda n: PRESETS[n].title, on_change=_load_preset,
               help="Fills the form with a named configuration as soon as you pick it; edit any field afterwards.")
start_slot = right.empty()  # the Start button, drawn once the form is validated
preset_note = st.empty()  # the preset's description, or that the form no longer is the preset


def _widget(f, container) -> object:
    # Number boxes have no browser-side range: a value typed without Enter is applied when Start is
    # clicked, and a value out of range is refused here with the field's allowed range (RunConfig).
    key, label, help_text = KEY(f.name), field_label(f.name), field_help(f.name, f.help)
    if f.widget == "select":
        fmt = (lambda n: DATASETS[n].title) if f.name == "dataset" else str
        on_change = _algo_changed if f.name == "algo" else None
        return container.selectbox(label, f.choices, key=key, help=help_text, format_func=fmt, on_change=on_change)
    if f.widget == "toggle":
        return container.toggle(label, key=key, help=help_text)
    if f.widget == "int":
        return container.number_input(label, step=1, key=key, help=help_text)
    if f.widget == "float":
        return container.number_input(label, key=key, help=help_text, format="%g", step=0.01)
    return container.text_input(label, key=key, help=help_text)


def _tab_fields(main: bool) -> list:
    """The basic fields (Main) or the others; the data folder goes right after the dataset choice while
    the chosen dataset is read from files."""
    needs_files = not DATASETS[st.session_state.get(KEY("dataset"), "digits")].embedded
    moved = "data_dir" if needs_files else None
    if not main:
        return [f for f in FIELDS if not f.basic and f.name != moved]
    out = []
    for f in FIELDS:
        if f.basic:
            out.append(f)
        if f.name == "dataset" and moved:
            out.append(next(g for g in FIELDS if g.name == moved))
    return out


values = {}
with st.expander("Configuration: every engine option (hover the ? for what each does)", expanded=shown_run is None,
                 icon=":material/tune:"):
    for tab, group in zip(st.tabs(["Main", "Advanced"]), (True, False)):
        cols = tab.columns(3)
        for i, f in enumerate(_tab_fields(group)):
            values[f.name] = _widget(f, cols[i % 3])

config: RunConfig | None = None
try:
    config = served_config(RunConfig.from_dict(values))  # a data folder only inside this server's data roots
except ValueError as exc:
    st.error(f"Invalid configuration: {exc}")
if config is not None:
    st.session_state[STATE] = config.to_dict()
    # The URL holds the non-default values (and the selected run), so a link reproduces this form; and the picked
    # preset, so a reload picks it again. Written in one go: each write is a browser history entry, and one per
    # field made Back step through half-changed forms.
    preset = st.session_state["preset"]
    write_url({f.name: None for f in FIELDS} | config_to_params(config)
              | {"preset": preset if preset != FIRST_PRESET else None})
    spec = DATASETS[config.dataset]
    if not spec.embedded:
        st.info(f"{spec.title} is read from the data folder (the **Data folder** field beside the dataset; or "
                f"downloaded when 'download' is on). {spec.how_to_get}")
    st.caption(algorithm_note(config.algo))  # what the chosen algorithm does (MF: why it matters for FF vs BP)

preset = PRESETS[st.session_state["preset"]]
if config is not None and preset.config(config.algo).to_dict() == config.to_dict():
    preset_note.caption(preset.description)
else:
    preset_note.warning(f"The form below is no longer the preset \"{preset.title}\" (a field was changed, or the "
                        "link set it); **Start training** trains what the form shows.")

runs_now = runs_or_stop()
estimate = launch.estimate_training(config, runs_now) if config is not None else None
confirmed = True
if estimate is not None:
    too_long = launch.over_time_limit(estimate)
    if too_long:
        st.warning(f"{too_long}. Check the layers and epochs, or confirm.")
        confirmed = st.checkbox("Start it anyway", key="confirm_long_run")
    else:
        st.caption(f"Expected: {estimate.text()}.")

clicked = start_slot.button("Start training", type="primary", disabled=config is None or not confirmed,
                            icon=":material/play_arrow:", width="stretch")
if clicked and config is not None and confirmed:
    try:  # a run with the same config and seed that is queued or running is joined, not queued again
        started = jm.submit_or_join(config, owner=session_owner())
    except ValueError as exc:
        st.error(f"Could not start: {exc}")
    else:
        shown_run = started.run_id
        set_selected_run_ids([shown_run])
        if started.joined and jm.store.run(shown_run).get("owner") == session_owner():  # a second click
            st.info(f"The same run (config and seed) is already queued or running as {shown_run}: showing it "
                    "instead of starting another.")
        elif started.joined:
            st.session_state[JOINED_KEY] = shown_run


def _own_run(config: Mapping[str, Any]) -> None:
    """The shared run's button: the same config with a seed nobody used, as this session's own run."""
    try:
        own = jm.submit_with_free_seed(config, owner=session_owner())
    except ValueError as exc:
        st.session_state[OWN_ERROR_KEY] = str(exc)
        return
    st.session_state.pop(JOINED_KEY, None)
    set_selected_run_ids([own])
    st.session_state[KEY("seed")] = jm.store.run(own)["config"]["seed"]  # the form shows what trains


# -- the selected run, live --------------------------------------------------------------------
run_id = shown_run
if run_id is None:
    st.info("Pick a preset (the expected training time is shown above) and press **Start training**.")
    st.stop()
if RUN_PARAM not in st.query_params:
    set_selected_run_ids([run_id])

shown = jm.store.run(run_id)
shown_cfg = shown.get("config") or {}
if shown.get("owner") != session_owner():  # e.g. twenty students pressed Start on the same preset: one run
    watching = "you are watching the run your class started; train your own with another seed."
    if st.session_state.get(JOINED_KEY) == run_id:
        watching = f"Your Start joined a run with the same configuration and seed: {watching}"
    note, own = st.columns([3, 1], vertical_alignment="center")  # [5, 1] cut "Train my own" at 1024 px
    note.info(watching[0].upper() + watching[1:], icon=":material/group:")
    if shown_cfg:
        own.button("Train my own", key="own_run", on_click=_own_run, args=(shown_cfg,), icon=":material/person:",
                   width="stretch", help="The same configuration with a seed no run used yet, as your own run.")
if OWN_ERROR_KEY in st.session_state:
    st.error(f"Could not start your own run: {st.session_state.pop(OWN_ERROR_KEY)}")
shown_algo = str(shown.get("algo") or shown_cfg.get("algo", "fgff"))
refresh_s = launch.live_refresh(shown_cfg, runs_now) if shown_cfg else launch.REFRESH_MIN_S


def live_run(jm: JobManager, run_id: str, config: Mapping[str, Any], algo: str, who: Requester) -> None:
    """The run's state and curves (a live view: redrawn about once per epoch while it trains, at
    ``launch.live_refresh``; the whole page once more when it ends). One view, so one timer: with two (status
    and curves), a finished run once showed no curves in CI, most likely their timers racing the page's last
    rerun. ``who``: this browser session, for the Cancel button."""
    run = jm.store.live.run(run_id)  # live reads: shared with other sessions' ticks (fgff_core.store.live)
    metrics = jm.store.live.metrics(run_id)
    progress = run_progress(run, metrics)
    st.subheader(f"{run.get('name') or run_id} · {algo_label(algo)} on {run.get('dataset', '')}")
    bar, button = st.columns([5, 1], vertical_alignment="center")
    text = progress.text()
    phase = launch.startup_phase(run, on_cluster=not getattr(jm.executor, "local_devices", True))
    if phase:
        text += f" · {phase}"
    ahead = launch.queue_position(jm.store.live.runs(), run_id) if run.get("status") == RunStatus.QUEUED else None
    if ahead is not None:
        text += f" · {launch.queue_text(ahead)}"
    bar.progress(progress.fraction, text=text)
    show_refusal()
    if progress.active and jm.access.may_manage(run.get("owner"), who):
        button.button("Cancel", key=f"cancel_{run_id}", on_click=run_action, args=(jm.cancel, run_id),
                      icon=":material/stop:", width="stretch")
    elif progress.active:
        st.caption(f"{jm.access.why_not(run, 'cancel')}.")
    if run.get("status") == RunStatus.FAILED:
        st.error(f"The run failed: {run_failure(run.get('error'))}")
    elif run.get("status") in (RunStatus.CANCELLED, RunStatus.INTERRUPTED):
        st.warning(f"The run was {run['status']} after {progress.done} of {progress.total} epochs.")
    if run.get("status") == RunStatus.DONE:
        row = st.container(horizontal=True, gap="large")  # wraps: four columns cut the labels at 1024 px
        row.metric("Test accuracy", percent(run.get("test_acc")), width="content")
        if trains_factors(algo):
            row.metric("Test accuracy without significance", percent(run.get("test_acc_no_significance")),
                       width="content")
        row.metric("Time per epoch (median)", duration(run.get("epoch_seconds_median")), width="content")
        row.metric("Training time", duration(run.get("train_seconds")), width="content",
                   help="The epochs only. 'elapsed' above also counts the time the run waited in the queue, "
                        "started its worker and loaded the data.")
        st.table(curves.final_accuracy_table(run), width="content")  # static: wraps, a dataframe cut its headers
        hint = findings.chance_hint(run)
        if hint:
            st.warning(hint)
    figures = curves.live_figures(metrics, float(config.get("threshold", 2.0)), algo,
                                  str(config.get("schedule", "greedy")))
    st.plotly_chart(figures.goodness, key=f"goodness_{run_id}")
    left, right = st.columns(2)
    left.plotly_chart(figures.loss, key=f"loss_{run_id}")
    right.plotly_chart(figures.accuracy, key=f"accuracy_{run_id}")
    if figures.layer_accuracy is not None:
        st.plotly_chart(figures.layer_accuracy, key=f"layer_accuracy_{run_id}")


live_view(live_run, jm, run_id, shown_cfg, shown_algo, requester(),
          statuses=lambda: run_statuses(jm.store.live.runs(), [run_id]), every=refresh_s)
