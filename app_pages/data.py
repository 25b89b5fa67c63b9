"""Data: what the network sees (positive and negative samples, paper Fig. 2) and the prediction rule."""

from __future__ import annotations

import streamlit as st
import torch

from app_pages._shared import job_manager, pick_one_run, runs_or_stop
from fgff_core.config import RunConfig, config_fields, field_choices
from fgff_core.config.labels import field_help, field_label, not_applicable
from fgff_core.data import DATASETS
from fgff_core.data.access import load_served
from fgff_core.public import model_problem
from fgff_core.viz import samples
from fgff_core.vocabulary import RunStatus, has_goodness

DATA_DIR_HELP = next(f.metadata["help"] for f in config_fields() if f.name == "data_dir")

jm = job_manager()
st.title("Data: positive and negative samples")
st.caption("Forward-Forward writes a label into the first 10 inputs of every image (one-hot times the label "
           "value, outlined in amber). With the true label it is a **positive** sample, whose goodness each layer "
           "pushes above the threshold; with a wrong label it is a **negative** sample, pushed below.")


@st.cache_resource(max_entries=4, show_spinner="Loading the dataset...")
def _cached_dataset(name: str, data_dir: str | None):
    return load_served(name, data_dir)  # only this server's data folders; a failure raises and is not cached


def _load(name: str, data_dir: str | None = None):
    try:
        return _cached_dataset(name, data_dir or None)
    except ValueError as exc:  # a sentence that names no server path
        st.error(str(exc))
    return None


# -- samples -----------------------------------------------------------------------------------
# The dataset's title needs room: in a quarter of the page it read "Digits (scikit-learn 8x8, e" at 1024-1280 px.
c1, c2 = st.columns([2, 1])
c3, c4 = st.columns(2)
dataset = c1.selectbox("Dataset", field_choices("dataset"), format_func=lambda n: DATASETS[n].title, key="ds")
split = c2.radio("Split", ["train", "test"], horizontal=True, key="split")
n = c3.slider("Samples", 1, 8, 6, key="n")
seed = c4.number_input("Seed", 0, 2**31 - 1, 0, key="seed", help="Which samples and which wrong labels are drawn.")
data_dir = None
if not DATASETS[dataset].embedded:  # read from files: say where, as the Train form does
    data_dir = st.text_input(field_label("data_dir"), key="data_dir", placeholder="the server's default data folder",
                             help=field_help("data_dir", DATA_DIR_HELP)).strip() or None
ds = _load(dataset, data_dir)
if ds is not None:
    x, y = (ds.x_train, ds.y_train) if split == "train" else (ds.x_test, ds.y_test)
    label_value = RunConfig().resolve_label_value(float(ds.x_train.max()))
    pairs = samples.sample_pairs(x, y, ds.image_shape, label_value, n=n, seed=int(seed))
    st.plotly_chart(samples.samples_figure(pairs), key="samples")
    st.caption(f"{DATASETS[dataset].title}: {len(ds.y_train)} training and {len(ds.y_test)} test images of "
               f"shape {'x'.join(map(str, ds.image_shape))}, normalised with the training set's mean and std; "
               f"label value {label_value:g}. Images are shown as the network receives them.")

# -- the prediction rule of a trained run ------------------------------------------------------
st.header("The prediction rule: goodness for each candidate label")
st.caption("At test time each of the 10 labels is written into the image in turn; the label whose input gives the "
           "highest goodness, summed over the layers, is the prediction. FGFF weighs each neuron's squared activity "
           "by its significance factor; without them the rule is plain FF's.")
usable = runs_or_stop("No finished FF or FGFF run yet: train one on the **Train** page, then come back.",
                      keep=lambda r: r[(r["status"] == RunStatus.DONE) & r["algo"].map(has_goodness)],
                      not_here=lambda algo: None if has_goodness(algo) else not_applicable(algo, "this rule"))
run_id = pick_one_run(usable, "Trained run", key="rule_run")


@st.cache_resource(max_entries=4, show_spinner="Loading the trained model...")
def _model(run_id: str, checkpoint: str | None):
    model, config = jm.store.load_model(run_id)
    return model.cpu().eval(), config


try:
    ckpt = jm.store.checkpoint_path(run_id)
    model, cfg = _model(run_id, str(ckpt) if ckpt else None)
except Exception as exc:  # noqa: BLE001 - a missing or damaged checkpoint is a sentence, never a traceback
    st.error(model_problem(run_id, exc))
    st.stop()

run_ds = _load(cfg.dataset, cfg.data_dir)
if run_ds is None:
    st.stop()
left, right = st.columns([1, 3])
index = left.number_input("Test sample", 0, len(run_ds.y_test) - 1, 0, key="sample_index",
                          help="Index into the run's test set.")
xi = run_ds.x_test[int(index):int(index) + 1]
true_label = int(run_ds.y_test[int(index)])
g_sig, g_raw = model.label_goodness(xi.to(torch.float32))
left.plotly_chart(samples.image_figure(xi[0].numpy(), run_ds.image_shape, f"test sample {int(index)}: "
                                       f"label {true_label}"), key="rule_image")
right.plotly_chart(samples.label_goodness_figure(g_sig[0].numpy(), g_raw[0].numpy(), true_label, cfg.algo),
                   key="rule_bars")
