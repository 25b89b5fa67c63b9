"""Looking inside a trained FF/FGFF network: how a neuron's significance relates to what it does.

FGFF's significance factor s_j scales neuron j's contribution to the goodness (eq. 3). A neuron
that helps tell positive from negative data should be more active on positive data (true label
embedded) than on negative data (a wrong label embedded); ``neuron_activity`` measures exactly
that, per neuron, so it can be plotted against the neuron's factor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from ..data.loading import Dataset
from ..engine.model import FFNet
from ..engine.training import draw_negative_labels
from .embeddings import DEFAULT_SAMPLES, MAX_SAMPLES, sample_test_indices

ACTIVITY_COLUMNS = ("layer", "neuron", "significance", "pos_activity", "neg_activity", "activity_diff")


@torch.no_grad()
def neuron_activity(model: FFNet, data: Dataset, n_samples: int = DEFAULT_SAMPLES, seed: int = 0) -> pd.DataFrame:
    """Per layer and neuron: its significance factor, its mean squared activation on positive and on
    negative test data, and the difference (pos - neg).

    Uses a fixed subset of ``n_samples`` test samples (the same as the t-SNE maps) and, for the
    negatives, a wrong label per sample drawn with ``draw_negative_labels`` from ``seed``.
    Columns: ``ACTIVITY_COLUMNS``; one row per neuron of every layer.
    """
    if not isinstance(model, FFNet):
        raise ValueError("model: neuron activity needs an FF/FGFF network (significance factors); "
                         f"got {type(model).__name__}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) \
            or not 1 <= n_samples <= MAX_SAMPLES:
        raise ValueError(f"n_samples: {n_samples!r} is out of range; allowed [1, {MAX_SAMPLES}]")
    model.eval()
    device = next(model.parameters()).device
    idx = torch.from_numpy(sample_test_indices(len(data.y_test), n_samples, seed))
    x, y = data.x_test[idx].to(device), data.y_test[idx].to(device)
    y_neg = draw_negative_labels(y, data.n_classes, torch.Generator().manual_seed(seed))
    pos = model.layer_outputs(x, y)
    neg = model.layer_outputs(x, y_neg)
    frames = []
    for i, (hp, hn, s) in enumerate(zip(pos, neg, model.significance())):
        p = hp.float().square().mean(dim=0).cpu().numpy()
        n = hn.float().square().mean(dim=0).cpu().numpy()
        frames.append(pd.DataFrame({"layer": i, "neuron": np.arange(len(p)), "significance": s.cpu().numpy(),
                                    "pos_activity": p, "neg_activity": n, "activity_diff": p - n}))
    return pd.concat(frames, ignore_index=True)[list(ACTIVITY_COLUMNS)]


def activity_correlation(activity: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation between factor and (pos - neg) activity, per layer.

    NaN for a layer whose factors are all equal (FF: every factor is 1). Columns: layer, spearman, n.
    """
    rows = []
    for layer, part in activity.groupby("layer"):
        rho = rank_correlation(part["significance"].to_numpy(), part["activity_diff"].to_numpy())
        rows.append({"layer": int(layer), "spearman": rho, "n": len(part)})
    return pd.DataFrame(rows, columns=["layer", "spearman", "n"])


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of ``a`` and ``b``; NaN when either is constant (FF's factors, all 1)."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)
