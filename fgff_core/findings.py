"""What a page should say out loud about a run: sentences for people, computed from plain data.

- ``negative_factors`` / ``negative_factor_sentence``: FGFF neurons whose significance factor ``s``
  went below 0 (constraint-violation detectors, section III.E), counted and named per layer.
- ``chance_hint``: a finished run that predicts no better than chance, and the likely reason.
- ``KNN_VS_GOODNESS``: why 5-NN accuracy in a layer can exceed the network's goodness accuracy.
- ``difference_sentence``: one group's accuracy against another's, over seeds, in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .config import RunConfig, algo_uses_significance
from .data import DATASETS
from .launch import TRAIN_SIZES

# Full-batch FF needs roughly this many optimizer steps per layer before the label inputs' weights
# learn (the quick digits preset: 200; MNIST full batch with 30 epochs ends at chance).
MIN_STEPS_PER_LAYER = 100
CHANCE_MARGIN = 0.05  # accuracy within this of 1 / classes counts as chance
SUGGESTED_PRESET = "Quick demo: digits 2x100"

def _points(fraction: float) -> str:
    return f"{100 * fraction:.1f}"


def _seeds(n_a: int, n_b: int) -> str:
    if n_a == n_b:
        return f"{n_a} seed{'s' if n_a != 1 else ''}"
    return f"{n_a} and {n_b} seeds"


def difference_sentence(first: str, first_values: Sequence[float], second: str,
                        second_values: Sequence[float]) -> str:
    """``second``'s mean accuracy (fractions, one per seed) minus ``first``'s, against the spread over seeds.

    "FGFF beats FF by 6.7 points over 2 seeds, spread ±3.0 to 4.1" when the difference is larger than
    either group's standard deviation, "within the spread" otherwise; with one seed, a reminder that one
    seed cannot tell a difference from noise. Both groups need at least one value.
    """
    a, b = np.asarray(first_values, dtype=float), np.asarray(second_values, dtype=float)
    if not len(a) or not len(b):
        raise ValueError("difference_sentence: each group needs at least one value")
    diff = float(b.mean() - a.mean())
    seeds = _seeds(len(a), len(b))
    word = "beats" if diff > 0 else "trails"
    if min(len(a), len(b)) < 2:
        return (f"{second} {word} {first} by {_points(abs(diff))} points over {seeds}: one seed cannot tell a "
                "difference from seed-to-seed noise; launch more seeds.")
    lo, hi = sorted(float(v.std(ddof=1)) for v in (a, b))
    spread = f"±{_points(lo)}" if _points(lo) == _points(hi) else f"±{_points(lo)} to {_points(hi)}"
    if abs(diff) <= hi:
        return (f"{second} and {first} are within the spread: {second} - {first} = {100 * diff:+.1f} points over "
                f"{seeds}, while the seeds alone vary by {spread}.")
    return f"{second} {word} {first} by {_points(abs(diff))} points over {seeds}, spread {spread}."


KNN_VS_GOODNESS = (
    "5-NN accuracy in the layer can exceed the network's own (goodness) accuracy: the neighbours are found "
    "with the true label written into every input, so they compare images that already carry their answer, "
    "while the goodness rule must pick the label itself by trying all ten.")


def negative_factors(factors: Sequence[np.ndarray | None]) -> list[int]:
    """Per layer, how many neurons have a factor below 0 (0 for a layer without factors yet)."""
    return [0 if f is None else int((np.asarray(f, dtype=float) < 0).sum()) for f in factors]


def negative_factor_sentence(factors: Sequence[np.ndarray | None], algo: str) -> str:
    """``"5 neurons of layer 2 have factors below 0: their activity lowers the goodness."``"""
    if not algo_uses_significance(algo):
        return ("Every factor is 1: this algorithm does not train them, so every neuron counts fully in the "
                "goodness (eq. 2).")
    counts = negative_factors(factors)
    parts = [f"{n} neuron{'s' if n != 1 else ''} of layer {i + 1}" for i, n in enumerate(counts) if n]
    if not parts:
        return "No factor is below 0: every neuron's activity raises the goodness (some more, some less)."
    total = sum(counts)
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    verb = "has a factor" if total == 1 else "have factors"
    return (f"{listed} {verb} below 0: {'its' if total == 1 else 'their'} activity lowers the goodness "
            "(constraint-violation detectors, section III.E).")


def steps_per_layer(config: RunConfig | Mapping[str, Any]) -> int:
    """Optimizer steps each layer gets: epochs x batches per epoch (one batch when full-batch)."""
    cfg = RunConfig.coerce(config)
    size = TRAIN_SIZES.get(cfg.dataset, 60000)
    n = min(cfg.train_subset, size) if cfg.train_subset else size
    batch = cfg.batch_size or n
    return cfg.epochs * math.ceil(n / batch)


def chance_hint(run: Mapping[str, Any]) -> str | None:
    """A sentence for a finished run whose test accuracy is at chance level, else None."""
    try:
        acc = float(run.get("test_acc"))
        cfg = RunConfig.coerce(run["config"])
    except (TypeError, ValueError, KeyError):
        return None
    chance = 1.0 / DATASETS[cfg.dataset].n_classes
    if not math.isfinite(acc) or acc > chance + CHANCE_MARGIN:
        return None
    steps = steps_per_layer(cfg)
    head = f"This run predicts at chance level ({100 * acc:.2f} %, chance is {100 * chance:.0f} %)."
    if cfg.algo != "bp" and steps < MIN_STEPS_PER_LAYER:
        return (f"{head} Each layer had only {steps} training steps: full-batch FF needs about "
                f"{MIN_STEPS_PER_LAYER} or more per layer before the label weights learn. Train more epochs, use "
                f"mini-batches (batch size), or start from the preset \"{SUGGESTED_PRESET}\".")
    return (f"{head} Try a smaller learning rate or another seed, or start from the preset "
            f"\"{SUGGESTED_PRESET}\".")
