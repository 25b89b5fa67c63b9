"""Train: a form generated from the run-config schema, Start/Cancel, and live curves while it runs."""

from __future__ import annotations

import streamlit as st

from app_pages._shared import RUN_PARAM, job_manager, selected_run_ids, set_selected_run_ids
from fgff_core.config import DEFAULT_BATCH_SIZE, DEFAULT_LR, RunConfig, algo_uses_significance
from fgff_core.config_form import config_from_params, config_to_params, form_fields, to_widget_value
from fgff_core.data import DATASETS
from fgff_core.format import percent
from fgff_core.presets import PRESETS
from fgff_core.progress import run_progress
from fgff_core.status import ACTIVE_STATUSES, RunStatus
from fgff_core.training import resolve_device
from fgff_core.viz import curves

FIELDS = form_fields()
KEY = "cfg_{}".format  # widget key of a config field
STATE = "train_config"  # the last valid config of this session, as a dict

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


if STATE not in st.session_state:
    try:
        initial = config_from_params(st.query_params.to_dict())
    except ValueError as exc:
        st.error(f"The link's config is not valid, so the defaults are shown instead. {exc}")
        initial = RunConfig()
    st.session_state[STATE] = initial.to_dict()
    _seed_widgets(initial)
elif any(KEY(f.name) not in st.session_state for f in FIELDS):  # back from another page
    _seed_widgets(RunConfig.from_dict(st.session_state[STATE]))


def _load_preset() -> None:
    preset = PRESETS[st.session_state["preset"]]
    _seed_widgets(preset.config(st.session_state[KEY("algo")]))


def _algo_changed() -> None:
    """Keep lr and batch size on the new algorithm's default unless the user had changed them."""
    old, new = st.session_state[STATE]["algo"], st.session_state[KEY("algo")]
    for name, defaults in (("lr", DEFAULT_LR), ("batch_size", DEFAULT_BATCH_SIZE)):
        if old in defaults and new in defaults and st.session_state[KEY(name)] == defaults[old]:
            st.session_state[KEY(name)] = defaults[new]


# -- the form ----------------------------------------------------------------------------------
def _current_run_id() -> str | None:
    """The run in the URL; else this server's newest active run, so a refresh reattaches."""
    for run_id in selected_run_ids():
        try:
            jm.store.run(run_id)
            return run_id
        except (KeyError, ValueError):
            st.warning(f"Run {run_id!r} from the link does not exist (deleted?).")
    runs = jm.store.runs()
    if not runs.empty:
        active = runs[runs["status"].isin(ACTIVE_STATUSES)]
        if not active.empty:
            return str(active.iloc[0]["run_id"])
    return None


shown_run = _current_run_id()
left, mid, right = st.columns([4, 1, 1], vertical_alignment="bottom")
left.selectbox("Preset", list(PRESETS), key="preset", format_func=lambda n: PRESETS[n].title,
               help="Fills the form with a named configuration; edit any field afterwards.")
mid.button("Load preset", on_click=_load_preset, width="stretch")
start_slot = right.empty()  # the Start button, drawn once the form is validated
st.caption(PRESETS[st.session_state["preset"]].description)


def _widget(f, container) -> object:
    key = KEY(f.name)
    if f.widget == "select":
        fmt = (lambda n: DATASETS[n].title) if f.name == "dataset" else str
        on_change = _algo_changed if f.name == "algo" else None
        return container.selectbox(f.label, f.choices, key=key, help=f.help, format_func=fmt, on_change=on_change)
    if f.widget == "toggle":
        return container.toggle(f.label, key=key, help=f.help)
    if f.widget == "int":
        return container.number_input(f.label, min_value=int(f.min), max_value=int(f.max), step=1, key=key,
                                      help=f.help)
    if f.widget == "float":
        return container.number_input(f.label, min_value=float(f.min), max_value=float(f.max), key=key,
                                      help=f.help, format="%g", step=0.01)
    return container.text_input(f.label, key=key, help=f.help)


values = {}
with st.expander("Configuration: every engine option (hover the ? for what each does)", expanded=shown_run is None,
                 icon=":material/tune:"):
    for tab, group in zip(st.tabs(["Main", "Advanced"]), (True, False)):
        cols = tab.columns(3)
        for i, f in enumerate(f for f in FIELDS if f.basic == group):
            values[f.name] = _widget(f, cols[i % 3])

config: RunConfig | None = None
try:
    config = RunConfig.from_dict(values)
except ValueError as exc:
    st.error(f"Invalid configuration: {exc}")
if config is not None:
    st.session_state[STATE] = config.to_dict()
    # The URL holds the non-default values (and the selected run), so a link reproduces this form.
    wanted = config_to_params(config)
    names = {f.name for f in FIELDS}
    for name in list(st.query_params):
        if name in names and name not in wanted:
            del st.query_params[name]
    for name, text in wanted.items():
        if st.query_params.get(name) != text:
            st.query_params[name] = text
    spec = DATASETS[config.dataset]
    if not spec.embedded:
        st.info(f"{spec.title} is read from the data folder (or downloaded when 'download' is on). "
                f"{spec.how_to_get}")

if start_slot.button("Start training", type="primary", disabled=config is None, icon=":material/play_arrow:",
                     width="stretch"):
    try:
        shown_run = jm.submit(config)
    except ValueError as exc:
        st.error(f"Could not start: {exc}")
    else:
        set_selected_run_ids([shown_run])

# -- the selected run, live --------------------------------------------------------------------
run_id = shown_run
if run_id is None:
    st.info("Pick a preset (the quick digits demo trains in a few seconds on a CPU) and press **Start training**.")
    st.stop()
if RUN_PARAM not in st.query_params:
    set_selected_run_ids([run_id])

was_active = run_progress(jm.store.run(run_id), None).active


@st.fragment(run_every=1.0 if was_active else None)
def live_view() -> None:
    run = jm.store.run(run_id)
    metrics = jm.store.metrics(run_id)
    progress = run_progress(run, metrics)
    cfg = run.get("config") or {}
    algo = str(run.get("algo") or cfg.get("algo", "fgff"))
    st.subheader(f"{run.get('name') or run_id} · {algo.upper()} on {run.get('dataset', '')}")
    bar, button = st.columns([5, 1], vertical_alignment="center")
    bar.progress(progress.fraction, text=progress.text())
    if progress.active:
        button.button("Cancel", key=f"cancel_{run_id}", on_click=jm.cancel, args=(run_id,),
                      icon=":material/stop:", width="stretch")
    if run.get("status") == RunStatus.FAILED:
        st.error(f"The run failed: {run.get('error') or 'no reason recorded'}")
    elif run.get("status") in (RunStatus.CANCELLED, RunStatus.INTERRUPTED):
        st.warning(f"The run was {run['status']} after {progress.done} of {progress.total} epochs.")
    if run.get("status") == RunStatus.DONE:
        a, b, c, d = st.columns(4)
        a.metric("Test accuracy", percent(run.get("test_acc")))
        if algo_uses_significance(algo):
            b.metric("Test accuracy without significance", percent(run.get("test_acc_no_significance")))
        c.metric("Time per epoch (median)", _ms(run.get("epoch_seconds_median")))
        d.metric("Training time", _s(run.get("train_seconds")))
        st.dataframe(curves.final_accuracy_table(run), width="content")
    st.plotly_chart(curves.goodness_figure(metrics, float(cfg.get("threshold", 2.0)), algo),
                    key=f"goodness_{run_id}")
    left, right = st.columns(2)
    left.plotly_chart(curves.loss_figure(metrics, algo), key=f"loss_{run_id}")
    right.plotly_chart(curves.accuracy_figure(metrics, algo), key=f"accuracy_{run_id}")
    if was_active and not progress.active:
        st.rerun()  # the whole page again: stops the timer and shows the final numbers once


def _ms(value) -> str:
    return "–" if value is None or value != value else f"{1000 * float(value):.1f} ms"


def _s(value) -> str:
    return "–" if value is None or value != value else f"{float(value):.2f} s"


live_view()
