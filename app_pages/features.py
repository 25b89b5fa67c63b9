"""Features (t-SNE): each layer's output on positive data in 2-D, coloured by class, with separation scores."""

from __future__ import annotations

import streamlit as st

from app_pages._shared import job_manager, live_view, run_picker, runs_or_stop, url_from_outside, write_url
from fgff_core.analysis import findings
from fgff_core.analysis.embeddings import DEFAULT_SAMPLES, Embedding, EmbeddingJobs
from fgff_core.config.form import choice_param, int_param
from fgff_core.data import DATASETS
from fgff_core.data.access import load_served_for_config
from fgff_core.format import percent, points
from fgff_core.store import RunStore
from fgff_core.viz.embedding import embedding_figure
from fgff_core.vocabulary import algo_label

SELECT_KEY = "features_runs"
SAMPLE_CHOICES = (250, 500, 1000, 2000)
POLL_SECONDS = 1.0  # the maps are looked for this often while one is being computed

jm = job_manager()
st.title("Features (t-SNE)")
st.caption("t-SNE of a layer's output on positive data (the true label embedded) for a fixed subset of test "
           "samples, coloured by class, as in the paper's Figs. 4-5. Beside each map, numbers for how distinct "
           "the classes are: the silhouette of the 2-D map, and 5-nearest-neighbour accuracy (5-fold CV) in the "
           "map and in the layer's own space (t-SNE distorts distances; the layer-space score is the honest one).")


@st.cache_resource(show_spinner=False)
def embedding_jobs() -> EmbeddingJobs:
    """One background t-SNE worker per server; maps are cached per (run, layer) in the run's folder. Datasets are
    read from this server's data folders only (``load_served_for_config``)."""
    return EmbeddingJobs(data_loader=load_served_for_config)


runs = runs_or_stop("No finished runs with a checkpoint yet. t-SNE maps need a trained model: train one on the "
                    "**Train** page or launch FF vs FGFF on **Compare**.",
                    keep=lambda r: r[r["run_id"].map(lambda rid: jm.store.checkpoint_path(rid) is not None)])
newest = [rid for a in ("ff", "fgff") for rid in runs.loc[runs["algo"] == a, "run_id"].head(1)]
chosen = run_picker(runs, "Runs (one, or two side by side: e.g. FF and FGFF)", SELECT_KEY,
                    default=newest or runs["run_id"].head(1).tolist(), max_selections=2)
if not chosen:
    st.info("Select a finished run to map its features.")
    st.stop()

configs = [jm.store.config(r) for r in chosen]
n_layers = min(len(c.layers) for c in configs)
n_test = min(DATASETS[c.dataset].n_test for c in configs)
# Never offer more samples than the test set has (digits: 450); its whole size is the last choice.
choices = tuple(sorted({min(c, n_test) for c in SAMPLE_CHOICES}))
if "features_layer" not in st.session_state or url_from_outside():  # first load, Back: the link's layer and samples
    link_errors: list[str] = []
    layer_param = int_param(st.query_params, "layer", n_layers, 1, n_layers, link_errors)
    samples_param = int(choice_param(st.query_params, "samples", str(DEFAULT_SAMPLES), tuple(map(str, SAMPLE_CHOICES)),
                                     link_errors))
    samples_param = min(samples_param, n_test)
    for message in link_errors:
        st.warning(f"The link's {message}.")
    st.session_state["features_layer"] = layer_param - 1
    st.session_state["features_samples"] = samples_param
st.session_state["features_layer"] = min(st.session_state["features_layer"], n_layers - 1)
st.session_state["features_samples"] = min(st.session_state["features_samples"], n_test)
c1, c2 = st.columns(2)
layer = c1.selectbox("Layer", list(range(n_layers)), format_func=lambda i: f"layer {i + 1}", key="features_layer")
n_samples = c2.select_slider("Test samples", choices, key="features_samples",
                             help=f"More samples: a fuller picture, a slower t-SNE (about 1000 points take seconds). "
                                  f"At most the test set's {n_test}.")
write_url({"layer": str(layer + 1), "samples": str(n_samples)})
jobs = embedding_jobs()


def _metrics(emb, ref) -> None:
    m1, m2, m3 = st.columns(3)
    m1.metric("Silhouette", f"{emb.silhouette:.3f}",
              delta=None if ref is None else f"{emb.silhouette - ref.silhouette:+.3f}",
              help="Silhouette score of the classes in the t-SNE map: -1 .. 1, higher = more distinct.")
    m2.metric("5-NN, 2-D", percent(emb.knn_accuracy_2d, 1),
              delta=None if ref is None else
              points(emb.knn_accuracy_2d - ref.knn_accuracy_2d, 1),
              help="Accuracy of a 5-nearest-neighbour classifier in the map, 5-fold cross-validated.")
    m3.metric("5-NN, layer", percent(emb.knn_accuracy_layer, 1),
              delta=None if ref is None else
              points(emb.knn_accuracy_layer - ref.knn_accuracy_layer, 1),
              help="The same in the layer's own feature space: not distorted by t-SNE.")


def _ready_map(store: RunStore, jobs: EmbeddingJobs, rid: str, layer: int, n_samples: int) -> Embedding | None:
    """The map of a run, or None (shown why: still computing, or failed with a Retry)."""
    try:
        emb = jobs.request(store, rid, layer, n_samples)
    except Exception as exc:  # noqa: BLE001 - e.g. a checkpoint that cannot be read
        st.error(f"Could not start the t-SNE of run {rid}: {exc}")
        return None
    error = jobs.error(store, rid, layer, n_samples)
    if error is not None:
        st.error(f"The t-SNE of layer {layer + 1} failed: {error}")
        if st.button("Retry", key=f"retry_{rid}_{layer}_{n_samples}"):
            jobs.retry(store, rid, layer, n_samples)
            st.rerun()
        return None
    if emb is None:
        st.info(f"Computing the t-SNE of layer {layer + 1} on {n_samples} test samples in the background; "
                "this view updates when it is ready.", icon=":material/hourglass_top:")
    return emb


def show_maps(store: RunStore, jobs: EmbeddingJobs, run_ids: list[str], layer: int, n_samples: int) -> None:
    """Draw the ready maps and start the missing ones (a live view: it redraws itself while one is computed).

    Row by row (titles, scores, maps), so the two maps stay level when one title wraps.
    """
    algos = {}
    for col, rid in zip(st.columns(len(run_ids)), run_ids):
        run = store.live.run(rid)
        algos[rid] = algo_label(run["algo"])
        col.subheader(f"{run['name']} ({algos[rid]})")
    embeddings = {}
    for col, rid in zip(st.columns(len(run_ids)), run_ids):
        with col:
            emb = _ready_map(store, jobs, rid, layer, n_samples)
            if emb is not None:
                embeddings[rid] = emb
                _metrics(emb, embeddings.get(run_ids[0]) if rid != run_ids[0] else None)
    for col, rid in zip(st.columns(len(run_ids)), run_ids):
        if rid in embeddings:
            col.plotly_chart(embedding_figure(embeddings[rid], title=f"{algos[rid]}, layer {layer + 1}: t-SNE of "
                                              "positive-data features", show_scores=False), key=f"tsne_{rid}_{layer}")
    if len(embeddings) == 2:
        st.caption("Deltas in the second column are relative to the first run.")
    if embeddings:
        st.caption(findings.KNN_VS_GOODNESS)


live_view(show_maps, jm.store, jobs, chosen, layer, n_samples, every=POLL_SECONDS,
          statuses=lambda: [jobs.status(jm.store, r, layer, n_samples) for r in chosen])  # starts every missing map
