"""t-SNE maps of a layer's features, with separation scores that turn "more distinct" into numbers.

The paper (Figs. 4-5) shows 2-D t-SNE of each layer's output on positive data, coloured by class,
and reads FGFF's clusters as more distinct than FF's. Here the same picture comes with three
scores, so that the claim can be checked rather than eyeballed:

- ``silhouette``: silhouette score of the classes in the 2-D map (-1 .. 1, higher = tighter,
  better separated clusters);
- ``knn_accuracy_2d``: 5-nearest-neighbour accuracy in the 2-D map, stratified 5-fold CV;
- ``knn_accuracy_layer``: the same in the layer's own space. t-SNE distorts distances, so this is
  the more honest measure of how separable the features are.

``layer_embedding`` computes one map; ``cached_layer_embedding`` stores it as an ``.npz`` in the
run's folder; ``EmbeddingJobs`` computes maps in a background thread so that a page never blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from .._files import atomic_open
from ..data.loading import Dataset, load_for_config
from ..engine.model import BPNet
from ..vocabulary import RunStatus

KNN_NEIGHBOURS = 5
CV_FOLDS = 5
DEFAULT_SAMPLES = 1000
DEFAULT_PERPLEXITY = 30.0
MAX_SAMPLES = 10_000
CACHE_VERSION = 1  # bump when the computation changes, so stale caches are recomputed


@dataclass
class Embedding:
    """A 2-D t-SNE map of one layer's output on positive test data, with its separation scores."""

    layer: int  # 0-based
    points: np.ndarray  # (n, 2) float32
    labels: np.ndarray  # (n,) int, true classes
    indices: np.ndarray  # (n,) int, positions in the test set
    silhouette: float
    knn_accuracy_2d: float
    knn_accuracy_layer: float
    n_samples: int
    seed: int
    perplexity: float

    def save(self, path: str | Path) -> None:
        """Write as ``.npz``, atomically (a reader never sees half a file)."""
        with atomic_open(path) as handle:
            np.savez(handle, version=CACHE_VERSION, layer=self.layer, points=self.points, labels=self.labels,
                     indices=self.indices, silhouette=self.silhouette, knn_accuracy_2d=self.knn_accuracy_2d,
                     knn_accuracy_layer=self.knn_accuracy_layer, n_samples=self.n_samples, seed=self.seed,
                     perplexity=self.perplexity)

    @classmethod
    def load(cls, path: str | Path) -> Embedding:
        with np.load(Path(path), allow_pickle=False) as f:
            if int(f["version"]) != CACHE_VERSION:
                raise ValueError(f"{path}: embedding cache version {int(f['version'])}, expected {CACHE_VERSION}")
            return cls(layer=int(f["layer"]), points=f["points"], labels=f["labels"], indices=f["indices"],
                       silhouette=float(f["silhouette"]), knn_accuracy_2d=float(f["knn_accuracy_2d"]),
                       knn_accuracy_layer=float(f["knn_accuracy_layer"]), n_samples=int(f["n_samples"]),
                       seed=int(f["seed"]), perplexity=float(f["perplexity"]))

    def matches(self, layer: int, n_samples: int, seed: int, perplexity: float) -> bool:
        return (self.layer, self.n_samples, self.seed, self.perplexity) == (layer, n_samples, seed, float(perplexity))


def sample_test_indices(n_test: int, n_samples: int, seed: int = 0) -> np.ndarray:
    """A fixed random subset of test indices (sorted); the same for every run with the same seed."""
    if n_samples < 1:
        raise ValueError(f"n_samples: {n_samples!r} is out of range; allowed [1, {MAX_SAMPLES}]")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(n_test, generator=gen)[:n_samples]
    return np.sort(idx.numpy())


@torch.no_grad()
def layer_features(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, layer: int) -> np.ndarray:
    """Layer ``layer``'s output (0-based) for ``x`` with its true labels embedded (positive data).

    For Mono-Forward and the backprop baseline (no label in the input) it is the hidden layer's output on ``x``.
    """
    n_layers = len(model.hidden) if isinstance(model, BPNet) else len(model.layers)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < n_layers:
        raise ValueError(f"layer: {layer!r} is out of range; allowed 0 to {n_layers - 1} (0-based)")
    model.eval()
    device = next(model.parameters()).device
    outs = model.layer_outputs(x.to(device), labels.to(device), upto=layer + 1)
    return outs[layer].float().cpu().numpy()


def separation_scores(points: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """(silhouette, cross-validated kNN accuracy) of the classes in ``points``; NaN where undefined."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or len(classes) >= len(labels):
        return float("nan"), float("nan")
    sil = float(silhouette_score(points, labels))
    folds = min(CV_FOLDS, int(counts.min()))
    if folds < 2:
        return sil, float("nan")
    knn = KNeighborsClassifier(n_neighbors=max(1, min(KNN_NEIGHBOURS, len(labels) - len(labels) // folds - 1)))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return sil, float(cross_val_score(knn, points, labels, cv=cv).mean())


def layer_embedding(model: torch.nn.Module, data: Dataset, layer: int, n_samples: int = DEFAULT_SAMPLES,
                    seed: int = 0, perplexity: float = DEFAULT_PERPLEXITY) -> Embedding:
    """t-SNE (scikit-learn, ``init="pca"``, ``random_state=seed``) of layer ``layer``'s output on
    positive data for a fixed subset of ``n_samples`` test samples, with its separation scores."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) \
            or not 1 <= n_samples <= MAX_SAMPLES:
        raise ValueError(f"n_samples: {n_samples!r} is out of range; allowed [1, {MAX_SAMPLES}]")
    idx = sample_test_indices(len(data.y_test), n_samples, seed)
    if len(idx) < 5:
        raise ValueError(f"n_samples: t-SNE needs at least 5 samples, the test set gives {len(idx)}")
    x, y = data.x_test[idx], data.y_test[idx]
    feats = layer_features(model, x, y, layer)
    labels = y.numpy().astype(np.int64)
    # Perplexity must stay below the sample count; scikit-learn refuses otherwise.
    perp = float(min(perplexity, (len(idx) - 1) / 3))
    tsne = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perp, learning_rate="auto")
    points = tsne.fit_transform(feats.astype(np.float64)).astype(np.float32)
    sil, knn2d = separation_scores(points, labels, seed)
    _, knn_layer = separation_scores(feats, labels, seed)
    return Embedding(layer=int(layer), points=points, labels=labels, indices=idx.astype(np.int64), silhouette=sil,
                     knn_accuracy_2d=knn2d, knn_accuracy_layer=knn_layer, n_samples=int(n_samples), seed=int(seed),
                     perplexity=float(perplexity))


# -- cache per (run, layer) -----------------------------------------------------------------------
class RunSource(Protocol):
    """What the cache needs of a run store (``RunStore``)."""

    def load_model(self, run_id: str) -> tuple[Any, Any]: ...

    def artifact_path(self, run_id: str, name: str) -> Path: ...


def cache_name(layer: int) -> str:
    return f"tsne_layer{layer}.npz"


def cached_embedding(source: RunSource, run_id: str, layer: int, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                     perplexity: float = DEFAULT_PERPLEXITY) -> Embedding | None:
    """The stored map of (run, layer) if it exists and was made with these parameters, else None."""
    path = source.artifact_path(run_id, cache_name(layer))
    if not path.exists():
        return None
    try:
        emb = Embedding.load(path)
    except (OSError, ValueError, KeyError):
        return None  # unreadable or outdated: recompute (and overwrite) rather than fail
    return emb if emb.matches(layer, n_samples, seed, perplexity) else None


def cached_layer_embedding(source: RunSource, run_id: str, layer: int, n_samples: int = DEFAULT_SAMPLES,
                           seed: int = 0, perplexity: float = DEFAULT_PERPLEXITY,
                           data_loader: Callable[[Any], Dataset] = load_for_config) -> Embedding:
    """The map of (run, layer): read from the run's ``tsne_layer<k>.npz`` or computed and stored there."""
    emb = cached_embedding(source, run_id, layer, n_samples, seed, perplexity)
    if emb is not None:
        return emb
    model, config = source.load_model(run_id)
    emb = layer_embedding(model, data_loader(config), layer, n_samples, seed, perplexity)
    emb.save(source.artifact_path(run_id, cache_name(layer)))
    return emb


class EmbeddingJobs:
    """Computes t-SNE maps in one background thread; a page asks, shows a spinner, asks again.

    ``request`` returns the map when it is cached, else starts (once) its computation and returns
    None; ``error`` tells why one failed. One worker: t-SNE is CPU-bound and the machine is shared.
    """

    def __init__(self, max_workers: int = 1, data_loader: Callable[[Any], Dataset] = load_for_config) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tsne")
        self.data_loader = data_loader  # the app's: data_access.load_served_for_config
        self._futures: dict[tuple, Future] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(source: RunSource, run_id: str, layer: int, n_samples: int, seed: int, perplexity: float) -> tuple:
        return (str(source.artifact_path(run_id, cache_name(layer))), n_samples, seed, float(perplexity))

    def request(self, source: RunSource, run_id: str, layer: int, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                perplexity: float = DEFAULT_PERPLEXITY) -> Embedding | None:
        emb = cached_embedding(source, run_id, layer, n_samples, seed, perplexity)
        if emb is not None:
            return emb
        key = self._key(source, run_id, layer, n_samples, seed, perplexity)
        with self._lock:
            fut = self._futures.get(key)
            if fut is not None and fut.done():
                if fut.exception() is not None:
                    return None  # keep the failure visible through error(); retry() clears it
                self._futures.pop(key)
                return fut.result()
            if fut is None:
                self._futures[key] = self._pool.submit(cached_layer_embedding, source, run_id, layer, n_samples,
                                                       seed, perplexity, self.data_loader)
        return None

    def error(self, source: RunSource, run_id: str, layer: int, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
              perplexity: float = DEFAULT_PERPLEXITY) -> BaseException | None:
        fut = self._futures.get(self._key(source, run_id, layer, n_samples, seed, perplexity))
        return fut.exception() if fut is not None and fut.done() else None

    def status(self, source: RunSource, run_id: str, layer: int, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
               perplexity: float = DEFAULT_PERPLEXITY) -> RunStatus:
        """Where a map stands, asking for it (its computation starts once): running while it is computed, done
        when it is ready, failed when its computation failed or cannot start (``request``/``error`` say why)."""
        try:
            if self.request(source, run_id, layer, n_samples, seed, perplexity) is not None:
                return RunStatus.DONE
        except Exception:  # noqa: BLE001 - e.g. an unreadable run folder: request() raises it again to its caller
            return RunStatus.FAILED
        failed = self.error(source, run_id, layer, n_samples, seed, perplexity) is not None
        return RunStatus.FAILED if failed else RunStatus.RUNNING

    def retry(self, source: RunSource, run_id: str, layer: int, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
              perplexity: float = DEFAULT_PERPLEXITY) -> None:
        """Forget a failed computation so the next ``request`` starts it again."""
        with self._lock:
            self._futures.pop(self._key(source, run_id, layer, n_samples, seed, perplexity), None)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every started computation has finished (for tests and scripts)."""
        for fut in list(self._futures.values()):
            try:
                fut.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - reported through error()
                pass

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
