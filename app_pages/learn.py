"""Learn: a guided, hands-on lesson on Forward-Forward and FGFF's significance factors, in five steps.

Everything is computed by ``fgff_core`` (``fgff_core.lesson`` for the lesson's logic): the step
training advances the engine's own ``Trainer.run()`` generator in this process (an epoch of the
64 -> 2x20 digits net is milliseconds); the FF-vs-FGFF pair of step 4 goes through the job manager.
The step, every knob and the hidden controls live in the URL, so a teacher can share the exact state.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._learn_draw import own_digit_panel
from app_pages._learn_pair import pair_panel
from app_pages._shared import job_manager, live_view, runs_or_stop, session_owner, url_from_outside, write_url
from fgff_core import lesson
from fgff_core.config import RunConfig, config_fields, field_choices
from fgff_core.data import Dataset, load_dataset
from fgff_core.engine.model import embed_labels
from fgff_core.format import percent
from fgff_core.jobs.owners import OWNER_PARAM
from fgff_core.lesson.share import network_address, share_link
from fgff_core.viz import lesson as vlesson
from fgff_core.viz import samples
from fgff_core.vocabulary import RunStatus

TRAINING_KEY = "lesson_training"
PLAY_KEY = "lesson_playing"
SAMPLE_CHOSEN = "lesson_sample_chosen"  # True once this session picked a test sample itself
PLAY_EPOCHS = {False: 10, True: 1}  # layer-epochs per tick: normal, slow motion
PLAY_SECONDS = {False: 0.5, True: 1.2}  # seconds per tick while Play is on: normal, slow motion
META = {f.name: f.metadata for f in config_fields()}


@st.cache_resource(show_spinner="Loading the digits...")
def _digits():
    return load_dataset("digits")


data = _digits()
n_test = len(data.y_test)

# -- the lesson's state: the URL is the source of truth ---------------------------------------------
settings, url_errors = lesson.parse_lesson_params(st.query_params.to_dict(), n_test)
hide = settings.hide
cfg0 = settings.config


def _init(key: str, value) -> None:
    """A widget starts from the URL's value (and keeps its own state afterwards)."""
    if key not in st.session_state:
        st.session_state[key] = value


# Browser Back and Forward (or an edited link): the widgets start from the URL again (_shared.note_url_arrival).
if url_from_outside():
    for key in [k for k in st.session_state if str(k).startswith("w_")] + [SAMPLE_CHOSEN]:
        st.session_state.pop(key, None)


st.title("Learn: Forward-Forward in five steps")
for message in url_errors:
    st.error(f"This link has a value the lesson cannot use: {message}")

# -- step navigation ---------------------------------------------------------------------------------
steps = list(lesson.STEP_TITLES)
_init("w_step", settings.step)


def _go(step: int) -> None:
    st.session_state["w_step"] = step


if settings.hidden("step"):
    step = settings.step
else:
    step = st.segmented_control("Step", steps, key="w_step", required=True,
                                format_func=lambda s: f"{s}. {lesson.STEP_SHORT_TITLES[s]}", width="stretch")
    step = int(step or settings.step)

# -- the knobs, in the sidebar (a teacher may hide any of them) --------------------------------------
values: dict[str, str] = {}
with st.sidebar:
    st.subheader("Lesson settings")
    st.caption("The digits net of the lesson; every change is in the URL. Changing a setting restarts step 3's "
               "training.")
    if not settings.hidden("algo"):
        _init("w_algo", cfg0.algo)
        values["algo"] = st.segmented_control("Algorithm", lesson.LESSON_ALGOS, key="w_algo", required=True,
                                              format_func=str.upper, help=META["algo"]["help"])
    if not settings.hidden("layers"):
        _init("w_layers", ",".join(map(str, cfg0.layers)))
        values["layers"] = st.text_input("Hidden layers", key="w_layers", help=META["layers"]["help"] +
                                         f" The lesson allows up to {lesson.LESSON_MAX_LAYERS} layers of "
                                         f"{lesson.LESSON_MAX_UNITS}.")
    if not settings.hidden("epochs"):
        _init("w_epochs", cfg0.epochs)
        values["epochs"] = st.number_input("Epochs per layer", 1, lesson.LESSON_MAX_EPOCHS, key="w_epochs",
                                           help=META["epochs"]["help"])
    for name, label, step_size in [("lr", "Learning rate (weights)", 0.01),
                                   ("sig_lr", "Learning rate (significance)", 0.01),
                                   ("threshold", "Threshold", 0.1)]:
        if not settings.hidden(name):
            _init(f"w_{name}", float(getattr(cfg0, name)))
            values[name] = st.number_input(label, min_value=float(META[name]["min"]),
                                           max_value=float(META[name]["max"]), step=step_size, format="%.3f",
                                           key=f"w_{name}", help=META[name]["help"])
    if not settings.hidden("loss"):
        _init("w_loss", cfg0.loss)
        values["loss"] = st.radio("Loss", field_choices("loss"), key="w_loss", horizontal=True,
                                  help=META["loss"]["help"])
    if not settings.hidden("delta"):
        _init("w_delta", float(cfg0.delta))
        values["delta"] = st.number_input("Hinge margin delta", 0.0, float(META["delta"]["max"]), step=0.1,
                                          format="%.2f", key="w_delta", help=META["delta"]["help"])
    if not settings.hidden("seed"):
        _init("w_seed", cfg0.seed)
        values["seed"] = st.number_input("Seed", 0, int(META["seed"]["max"]), key="w_seed",
                                          help=META["seed"]["help"])

params = settings.to_params()
params.update({k: str(v) for k, v in values.items() if v is not None})
params["step"] = str(step)
if not settings.hidden("sample") and st.session_state.get(SAMPLE_CHOSEN) and "w_sample" in st.session_state:
    params["sample"] = str(st.session_state["w_sample"])
settings, widget_errors = lesson.parse_lesson_params(params, n_test)
for message in widget_errors:
    st.error(message)
cfg = settings.config
new_params = {**settings.to_params(), OWNER_PARAM: session_owner()}  # this browser's owner token stays in the URL
write_url({name: None for name in st.query_params} | new_params)


# -- shared state: the step-by-step training (steps 2, 3 and 5 use its model) ---------------------------
def _training() -> lesson.SteppedTraining:
    key = cfg.to_json()
    held = st.session_state.get(TRAINING_KEY)
    if held is None or held[0] != key:
        held = (key, lesson.SteppedTraining(cfg, data))
        st.session_state[TRAINING_KEY] = held
        st.session_state[PLAY_KEY] = False
    return held[1]


def _set_play(playing: bool) -> None:
    """Play or Pause: set, never toggle, so a click delivered twice cannot undo itself."""
    st.session_state[PLAY_KEY] = playing


def _reset_training() -> None:
    st.session_state.pop(TRAINING_KEY, None)
    st.session_state[PLAY_KEY] = False


def _playing() -> list[RunStatus]:
    """Step 3's training as its live view sees it: a running run while Play is on, else nothing live."""
    return [RunStatus.RUNNING] if st.session_state.get(PLAY_KEY) else []


training = _training()


def _sample_chosen() -> None:
    st.session_state[SAMPLE_CHOSEN] = True


def _sample_picker(default: int = 0, label: str = "Test sample") -> int:
    """The link's or the picked test sample; until someone picks one, ``default`` (step 5: one the network
    classifies correctly), and the URL holds none."""
    value = settings.sample if settings.sample is not None else default
    if settings.hidden("sample"):
        return value
    if settings.sample is None:
        st.session_state["w_sample"] = value  # nobody chose: follow this step's default
    _init("w_sample", value)
    return int(st.number_input(label, 0, n_test - 1, key="w_sample", on_change=_sample_chosen,
                               help="Index into the digits test set (450 images)."))


@st.cache_resource(max_entries=8, show_spinner="Loading the trained networks...")
def _stored_model(run_id: str):
    model, config = job_manager().store.load_model(run_id)
    model = model.cpu().eval()
    return model, lesson.model_activity(model, data, seed=config.seed)


def _train_now_button(key: str) -> None:
    """Trains the whole lesson net here and now (a link that hides the step control must not strand anyone)."""
    if st.button(f"Train the network now ({training.total} layer-epochs, seconds)", type="primary",
                 icon=":material/play_arrow:", key=key):
        with st.spinner("Training..."):
            training.advance(training.total)
        st.rerun()


def _step5_model():
    """The net trained in step 3; before that, a stored run of these settings (it survives a reload), else an
    offer to train it here."""
    if training.done:
        st.caption(f"Network: **{training.status_text()}**.")
        return training.model
    stored = lesson.find_stored_run(runs_or_stop(), cfg, trained_only=True)
    if stored is not None:
        st.caption(f"Network: the stored run `{stored['run_id']}` of these settings (fully trained; training in "
                   "step 3 replaces it here).")
        return _stored_model(stored["run_id"])[0]
    st.warning(f"Network: **{training.status_text()}**: its predictions are guesses. Train it in step 3, or here:")
    _train_now_button("step5_train")
    return training.model


label_value = cfg.resolve_label_value(float(data.x_train.max()))
st.header(f"{step}. {lesson.STEP_TITLES[step]}")

# Each step draws inside one container, so what follows it (the step buttons, the share panel) keeps its place
# in the page whichever step is shown: the same keyed buttons at another index once went missing after step 3.
with st.container(key="lesson_step"):
    # -- step 1 -------------------------------------------------------------------------------------------------
    if step == 1:
        st.markdown(
            "Forward-Forward has no backward pass. Instead each layer sees two kinds of data: **positive** data, "
            "an image with its *true* label written into its first 10 pixels, and **negative** data, the same image "
            "with a *wrong* label. Each layer learns on its own to be very active for positive data and quiet for "
            "negative data; the label pixels are the only difference between the two.")
        left, right = st.columns([1, 3])
        with left:
            index = _sample_picker()
            true_label = int(data.y_test[index])
            others = [k for k in range(data.n_classes) if k != true_label]
            default_wrong = lesson.default_wrong_label(true_label, cfg.seed)
            wrong = st.selectbox("Wrong label (negative data)", others, index=others.index(default_wrong),
                                 key=f"w_wrong_{index}", help="Training draws one at random among the 9 wrong ones.")
            st.metric("True label", true_label)
        x = data.x_test[index:index + 1]
        x_pos = embed_labels(x, true_label, label_value)[0].numpy()
        x_neg = embed_labels(x, wrong, label_value)[0].numpy()
        right.plotly_chart(vlesson.positive_negative_figure(x_pos, x_neg, true_label, wrong, data.image_shape),
                           key="step1_pair")
        st.caption(f"The 8x8 digit as the network receives it: normalised pixels, the 10 label slots outlined in "
                   f"amber, the slot holding the label set to {label_value:g} (boxed). Only those 10 inputs differ "
                   "between the two pictures.")

    # -- step 2 -------------------------------------------------------------------------------------------------
    elif step == 2:
        st.markdown(
            "Feed both pictures to a layer and square each neuron's output. The mean of the squares is the "
            "layer's **goodness** (eq. 2); FGFF first multiplies each square by the neuron's **significance factor** "
            "s (eq. 3). Training pushes the goodness of positive data above the **threshold** and of negative data "
            "below it; the loss measures how far off the layer is.")
        c1, c2, c3 = st.columns(3)
        with c1:
            index = _sample_picker()
        true_label = int(data.y_test[index])
        others = [k for k in range(data.n_classes) if k != true_label]
        default_wrong = lesson.default_wrong_label(true_label, cfg.seed)
        wrong = c2.selectbox("Wrong label", others, index=others.index(default_wrong), key=f"w_wrong2_{index}")
        layer = c3.selectbox("Layer", list(range(len(cfg.layers))), format_func=lambda i: f"layer {i + 1}",
                             key="w_layer2")
        with training.lock:
            view = lesson.layer_view(training.model, data.x_test[index:index + 1], true_label, wrong, layer,
                                     cfg.threshold, cfg.delta)
            status = training.status_text()
        st.caption(f"The network is **{status}**: train it in step 3 and come back to see the "
                   "two goodness values move apart.")
        if settings.hidden("step") and not training.done:  # a link without the step control: train here
            _train_now_button("step2_train")
        st.plotly_chart(vlesson.activations_figure(view), key="step2_bars")
        # One row that wraps, each metric as wide as its label (five columns cut "g_pos (true label)" at 1024 px).
        m = st.container(horizontal=True, gap="large")
        m.metric("g_pos (true label)", f"{view.g_pos:.3f}", help="eq. (3); eq. (2) while every factor is 1",
                 width="content")
        m.metric("g_neg (wrong label)", f"{view.g_neg:.3f}", width="content")
        m.metric("threshold", f"{view.threshold:g}", width="content")
        m.metric("softplus loss", f"{view.softplus:.4f}",
                 help="mean of log(1 + exp(threshold - g_pos)) and log(1 + exp(g_neg - threshold)); "
                      "the authors' default" + (" (in use)" if cfg.loss == "softplus" else ""), width="content")
        m.metric("hinge loss, eq. (1)", f"{view.hinge:.4f}",
                 help=f"1/2 [max(0, delta - (g_pos - threshold)) + max(0, delta - (threshold - g_neg))], "
                      f"delta = {view.delta:g}" + (" (in use)" if cfg.loss == "hinge" else ""), width="content")
        verdict = ("positive above, negative below the threshold: this pair is already right"
                   if view.g_pos > view.threshold > view.g_neg else "not yet separated by the threshold")
        st.caption(f"For this sample: {verdict}. Loss in use: **{cfg.loss}**. Without the factors (eq. 2): "
                   f"g_pos = {view.g_pos_no_significance:.3f}, g_neg = {view.g_neg_no_significance:.3f}.")

    # -- step 3 -------------------------------------------------------------------------------------------------
    elif step == 3:
        st.markdown(
            "Now train. Forward-Forward is **greedy**: layer 1 is trained for all its epochs, then frozen, and its "
            "outputs train layer 2. Watch the histograms: the goodness of every positive training image (green) moves "
            "right of the threshold, every negative one (purple) left of it, one layer after the other.")
        # One row that wraps: each control as wide as its label (fixed columns cut "+1 epoch" to "+1 ep…" at 1024 px).
        b = st.container(horizontal=True, vertical_alignment="center")
        playing = bool(st.session_state.get(PLAY_KEY, False))  # set by the Play/Pause callback before this run
        one = b.button("+1 epoch", icon=":material/skip_next:", disabled=training.is_finished, key="step_one")
        ten = b.button("+10 epochs", icon=":material/fast_forward:", disabled=training.is_finished, key="step_ten")
        b.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
                 disabled=training.is_finished and not playing, key="step_play", on_click=_set_play,
                 args=(not playing,))
        slow = b.toggle("Slow motion", key="w_slow", help="Play one epoch per tick, slowly.")
        b.button("Reset", icon=":material/restart_alt:", on_click=_reset_training, key="step_reset")
        if one:
            training.advance(1)
        if ten:
            training.advance(10)

        def _live(training: lesson.SteppedTraining, data: Dataset, cfg: RunConfig, epochs_per_tick: int) -> None:
            """Step 3's training (a live view: while Play is on, each redraw trains ``epochs_per_tick`` more
            layer-epochs; at the end Play goes off and the page reruns with the Play button back)."""
            with training.lock:  # another script thread of this session may be advancing it
                if st.session_state.get(PLAY_KEY):
                    if not training.is_finished:
                        training.advance(epochs_per_tick)
                    if training.is_finished:
                        st.session_state[PLAY_KEY] = False
                st.progress(training.done / training.total, text=f"Training: {training.status_text()}")
                titles = training.layer_titles()
                dists = lesson.goodness_distributions(training.model, data.x_train, data.y_train, cfg.seed)
                st.plotly_chart(vlesson.distributions_figure(dists, cfg.threshold, titles), key="step3_hist")
                sep = st.columns(len(dists) + 1)
                for i, d in enumerate(dists):
                    sep[i].metric(f"layer {i + 1}: on the right side", percent(d.separation(cfg.threshold), 1),
                                  help="training images whose positive goodness is above the threshold or negative "
                                       "goodness below it")
                if training.finished is not None:
                    sep[-1].metric("Test accuracy", percent(training.finished.test_acc, 1))
                evals = pd.DataFrame([dict(step=e.step, test_acc=e.test_acc) for e in training.evals],
                                     columns=["step", "test_acc"])
                st.plotly_chart(vlesson.training_curves_figure(training.history_frame(), evals, cfg.threshold,
                                                               cfg.epochs, len(cfg.layers)), key="step3_curves")

        live_view(_live, training, data, cfg, PLAY_EPOCHS[slow], statuses=_playing, every=PLAY_SECONDS[slow])

    # -- step 4 -------------------------------------------------------------------------------------------------
    elif step == 4:
        st.markdown(
            "FGFF adds one trainable **significance factor** per neuron (section III): the goodness becomes the mean "
            "of s·h². The factors start at 1 (plain FF) and learn with their own learning rate. Neurons whose factor "
            "grows above 1 act as **feature detectors** (their activity counts more toward 'this label is right'); a "
            "factor pushed below 0 turns a neuron into a **constraint-violation detector**: its activity now *lowers* "
            "the goodness (section III.E). Below, the same net trained both ways, on the same data and seed.")
        note = lesson.strong_ff_note()
        with st.container(border=True):
            st.markdown(note.text)
            st.page_link("app_pages/train.py", label=note.link_label, icon=":material/rocket_launch:",
                         query_params=note.link_params())
        pair_panel(cfg, _stored_model)

    # -- step 5 -------------------------------------------------------------------------------------------------
    else:
        st.markdown(
            "To classify an image, write each of the 10 labels into it in turn and run the network: the label whose "
            "input gives the **highest goodness**, summed over the layers, is the answer. The network below is the one "
            "you trained in step 3.")
        model = _step5_model()
        left, right = st.columns([1, 2.5])
        with left:
            index = _sample_picker(lesson.first_correct_sample(model, data.x_test, data.y_test, cfg.trains_factors))
            xi = data.x_test[index:index + 1]
            true_label = int(data.y_test[index])
            st.plotly_chart(samples.image_figure(xi[0].numpy(), data.image_shape, f"test sample {index}: "
                                                 f"label {true_label}", height=240), key="step5_image")
        g_sig, g_raw = lesson.label_scores(model, xi)
        right.plotly_chart(samples.label_goodness_figure(g_sig, g_raw, true_label, cfg.algo), key="step5_scores")
        cm = lesson.confusion(model, data.x_test, data.y_test, use_significance=cfg.trains_factors)
        c1, c2 = st.columns([1.2, 1])
        c1.plotly_chart(vlesson.confusion_figure(cm, f"Test set ({n_test} images)"), key="step5_confusion")
        if not settings.hidden("draw"):
            with c2:
                own_digit_panel(model, data, xi, index, cfg.algo)


# -- next / previous, and the teacher's share panel ------------------------------------------------------------------
if not settings.hidden("step"):
    # Back at the left, Next at the right, each as wide as its label (quarter-width columns cut "Back to step 2"
    # to "Back to ste…" at 1024 px).
    both = 1 < step < lesson.N_STEPS
    nav = st.container(horizontal=True, horizontal_alignment="distribute" if both else "left" if step > 1 else "right")
    if step > 1:
        nav.button(f"Back to step {step - 1}", icon=":material/arrow_back:", on_click=_go, args=(step - 1,),
                   key="nav_prev")
    if step < lesson.N_STEPS:
        nav.button(f"Next: step {step + 1}", icon=":material/arrow_forward:", type="primary", on_click=_go,
                   args=(step + 1,), key="nav_next")

with st.expander("Teacher: share this lesson", icon=":material/share:"):
    st.caption("The link opens exactly this step with these settings. Tick controls to hide them from students "
               "(the values stay as set).")
    _init("w_hide", sorted(settings.hide, key=lesson.HIDEABLE.index))
    chosen = st.multiselect("Hide these controls", lesson.HIDEABLE, key="w_hide")
    share = {**settings.to_params()}
    if chosen:
        share["hide"] = ",".join(chosen)
    else:
        share.pop("hide", None)
    link = share_link(st.context.url, st.context.headers.get("Host"), share, network_address())
    st.code(link.url, language=None)
    if link.note:
        st.caption(link.note)
    st.caption(f"Current training: {training.status_text()}. The link holds settings, not training progress: "
               "students train for themselves in step 3.")
