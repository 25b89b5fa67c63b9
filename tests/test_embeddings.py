"""t-SNE maps with separation scores, their per-(run, layer) cache, the background jobs, neuron activity."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch

from fgff_core.analysis.embeddings import (
    Embedding,
    EmbeddingJobs,
    cached_embedding,
    cached_layer_embedding,
    layer_embedding,
    sample_test_indices,
    separation_scores,
)
from fgff_core.analysis.inspect import activity_correlation, neuron_activity
from fgff_core.config import RunConfig
from fgff_core.engine.model import BPNet
from fgff_core.engine.training import train
from fgff_core.viz.embedding import embedding_figure
from fgff_core.viz.theme import CLASS_COLORS
from fgff_core.vocabulary import RunStatus

N = 120  # small maps keep the suite fast; the page uses 1000


@pytest.fixture(scope="module")
def fgff_model():
    torch.set_num_threads(1)
    trainer, _ = train(RunConfig(algo="fgff", dataset="digits", layers=(20, 20), epochs=60, eval_every=0))
    return trainer.model


def test_separation_scores_separate_from_mixed():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    separated = rng.normal(size=(90, 2)) * 0.1 + labels[:, None] * 5.0
    mixed = rng.normal(size=(90, 2))
    sil_s, knn_s = separation_scores(separated, labels)
    sil_m, knn_m = separation_scores(mixed, labels)
    assert sil_s > 0.8 and knn_s == 1.0
    assert sil_m < 0.2 and knn_m < 0.7
    assert all(np.isnan(separation_scores(separated, np.zeros(90))))  # one class: undefined


def test_sample_test_indices_fixed_and_distinct():
    a, b = sample_test_indices(450, 100, seed=0), sample_test_indices(450, 100, seed=0)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100 and a.max() < 450
    assert not np.array_equal(a, sample_test_indices(450, 100, seed=1))
    assert len(sample_test_indices(50, 100)) == 50  # capped at the test set


def test_layer_embedding_shapes_scores_and_validation(fgff_model, digits):
    emb = layer_embedding(fgff_model, digits, layer=1, n_samples=N, seed=0)
    assert emb.points.shape == (N, 2) and emb.labels.shape == (N,) and emb.layer == 1
    assert np.array_equal(emb.labels, digits.y_test[emb.indices].numpy())
    # The map's scores are those of its own points (not of some other sample or space).
    assert (emb.silhouette, emb.knn_accuracy_2d) == pytest.approx(separation_scores(emb.points, emb.labels))
    # A trained layer separates the classes far better than chance (10%) in its own space.
    assert emb.knn_accuracy_layer > 0.5
    with pytest.raises(ValueError, match="layer"):
        layer_embedding(fgff_model, digits, layer=2, n_samples=N)
    with pytest.raises(ValueError, match="n_samples"):
        layer_embedding(fgff_model, digits, layer=0, n_samples=0)


def test_layer_embedding_reproducible(fgff_model, digits):
    a = layer_embedding(fgff_model, digits, layer=0, n_samples=60, seed=3)
    b = layer_embedding(fgff_model, digits, layer=0, n_samples=60, seed=3)
    assert np.allclose(a.points, b.points)


def test_bp_model_embedding(digits):
    torch.manual_seed(0)
    model = BPNet(digits.input_dim, (16,), digits.n_classes)
    emb = layer_embedding(model, digits, layer=0, n_samples=60)
    assert emb.points.shape == (60, 2)


class DirSource:
    """The two methods the cache needs, over a folder, like RunStore/JobManager."""

    def __init__(self, root: Path, model):
        self.root, self.model, self.loads = root, model, 0

    def artifact_path(self, run_id: str, name: str) -> Path:
        (self.root / run_id).mkdir(parents=True, exist_ok=True)
        return self.root / run_id / name

    def load_model(self, run_id: str):
        self.loads += 1
        return self.model, RunConfig(dataset="digits", layers=(20, 20))


def test_cache_round_trip_and_parameter_check(tmp_path, fgff_model):
    src = DirSource(tmp_path, fgff_model)
    assert cached_embedding(src, "r1", 0, N) is None
    emb = cached_layer_embedding(src, "r1", 0, N)
    assert (tmp_path / "r1" / "tsne_layer0.npz").exists() and src.loads == 1
    again = cached_layer_embedding(src, "r1", 0, N)
    assert src.loads == 1 and np.array_equal(again.points, emb.points) and again.silhouette == emb.silhouette
    assert cached_embedding(src, "r1", 0, N, seed=1) is None  # other parameters: not this cache
    (tmp_path / "r1" / "tsne_layer0.npz").write_bytes(b"garbage")
    assert cached_embedding(src, "r1", 0, N) is None  # unreadable: recomputed, not a crash
    cached_layer_embedding(src, "r1", 0, N)
    assert src.loads == 2 and Embedding.load(tmp_path / "r1" / "tsne_layer0.npz").n_samples == N


def test_background_jobs_compute_once_then_serve_cache(tmp_path, fgff_model):
    src = DirSource(tmp_path, fgff_model)
    jobs = EmbeddingJobs()
    try:
        assert jobs.request(src, "r2", 1, 60) is None  # started, not ready
        jobs.wait(timeout=120)
        assert jobs.error(src, "r2", 1, 60) is None
        emb = jobs.request(src, "r2", 1, 60)
        assert emb is not None and emb.layer == 1 and src.loads == 1
        assert jobs.request(src, "r2", 1, 60) is not None and src.loads == 1
        # A failure is reported, not raised, and can be retried.
        assert jobs.request(src, "r2", 5, 60) is None
        jobs.wait(timeout=120)
        assert "layer" in str(jobs.error(src, "r2", 5, 60))
        jobs.retry(src, "r2", 5, 60)
        assert jobs.error(src, "r2", 5, 60) is None
    finally:
        jobs.shutdown()


class UnreadableSource(DirSource):
    def artifact_path(self, run_id: str, name: str) -> Path:
        raise PermissionError("the run folder cannot be read")


def test_a_maps_status_is_running_while_computed_then_done_or_failed(tmp_path, fgff_model):
    """The Features page polls while a map is running (fgff_core.jobs.polling) and stops once it is done or failed."""
    src = DirSource(tmp_path, fgff_model)
    jobs = EmbeddingJobs()
    try:
        assert jobs.status(src, "r3", 1, 60) == RunStatus.RUNNING  # asking starts it
        assert jobs.status(src, "r3", 5, 60) == RunStatus.RUNNING  # layer 5 of 2: fails in the background
        jobs.wait(timeout=120)
        assert jobs.status(src, "r3", 1, 60) == RunStatus.DONE
        assert jobs.status(src, "r3", 5, 60) == RunStatus.FAILED
        assert jobs.status(UnreadableSource(tmp_path, fgff_model), "r3", 1, 60) == RunStatus.FAILED
    finally:
        jobs.shutdown()


def test_embedding_figure_one_trace_per_class(fgff_model, digits):
    emb = layer_embedding(fgff_model, digits, layer=0, n_samples=N)
    fig = embedding_figure(emb)
    classes = np.unique(emb.labels)
    assert [t.name for t in fig.data] == [str(c) for c in classes]
    assert fig.data[0].marker.color == CLASS_COLORS[int(classes[0])]
    assert "silhouette" in fig.layout.title.text and "Layer 1" in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_neuron_activity_positive_vs_negative(fgff_model, digits):
    act = neuron_activity(fgff_model, digits, n_samples=N)
    assert len(act) == 40 and list(act["layer"].unique()) == [0, 1]
    s = torch.cat(fgff_model.significance()).numpy()
    assert np.allclose(act["significance"], s)
    assert np.allclose(act["activity_diff"], act["pos_activity"] - act["neg_activity"])
    # The first layer has learnt its objective: significance-weighted goodness (eq. 3) higher on
    # positive than on negative test data, i.e. mean over neurons of s * (pos - neg) > 0.
    first = act[act["layer"] == 0]
    assert (first["significance"] * first["activity_diff"]).mean() > 0
    corr = activity_correlation(act)
    assert list(corr["layer"]) == [0, 1] and corr["spearman"].between(-1, 1).all()
    with pytest.raises(ValueError, match="model"):
        neuron_activity(BPNet(digits.input_dim, (8,)), digits)


def test_activity_correlation_nan_for_ff_constant_factors(digits):
    trainer, _ = train(RunConfig(algo="ff", dataset="digits", layers=(10,), epochs=3, eval_every=0))
    corr = activity_correlation(neuron_activity(trainer.model, digits, n_samples=60))
    assert np.isnan(corr["spearman"]).all()


def test_a_cache_write_that_fails_leaves_neither_half_a_file_nor_a_temp(tmp_path, monkeypatch):
    """Issue 35 item 6: the t-SNE cache goes through the one atomic write (its own copy left its temp file)."""
    emb = Embedding(layer=0, points=np.zeros((3, 2), np.float32), labels=np.arange(3), indices=np.arange(3),
                    silhouette=0.5, knn_accuracy_2d=0.5, knn_accuracy_layer=0.5, n_samples=3, seed=0, perplexity=5.0)

    def disk_fills_up(file, **arrays):  # np.savez given a path or a file object: half a zip, then ENOSPC
        with open(file, "wb") if isinstance(file, (str, Path)) else contextlib.nullcontext(file) as handle:
            handle.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_fills_up)
    with pytest.raises(OSError, match="No space"):
        emb.save(tmp_path / "tsne_layer0.npz")
    assert list(tmp_path.iterdir()) == []

