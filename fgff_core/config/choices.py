"""What the run configuration's fields may hold, apart from the ``RunConfig`` class that declares them: the
choice lists, the algorithms' names and defaults, the size limits. Modules that check or branch on a field's
value (the engine's losses and optimizers, the analysis) read the lists here; the dataset names and the
loading choices come from the dataset registry, which is their one source."""

from __future__ import annotations

from ..data.registry import DATASET_NAMES, FIXED_NORM_DATASETS, NORMALIZATIONS, SUBSET_ORDERS

__all__ = [
    "LOSSES", "NEGATIVE_STRATEGIES", "SCHEDULES", "OPTIMIZERS", "PRECISIONS", "DEVICES", "LR_SCHEDULES",
    "PREDICT_LAYERS", "SIGNIFICANCE_PARAMS", "DATASET_NAMES", "FIXED_NORM_DATASETS", "SUBSET_ORDERS", "NORMALIZATIONS",
    "LEARNING_INVARIANT_FIELDS", "DEFAULT_LR", "DEFAULT_BATCH_SIZE", "MAX_LAYERS", "MAX_UNITS",
]

LOSSES = ("softplus", "hinge", "symba", "exp_hinge")
NEGATIVE_STRATEGIES = ("fixed", "resample")
SCHEDULES = ("greedy", "simultaneous")
OPTIMIZERS = ("adam", "adamw", "sgd")
PRECISIONS = ("fp32", "tf32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")
LR_SCHEDULES = ("constant", "linear", "cosine")
PREDICT_LAYERS = ("all", "skip_first")
SIGNIFICANCE_PARAMS = ("unconstrained", "softplus", "exp")

# Fields that never change what is learned: runs that differ only in these are the same experiment
# (compare groups them; reproduce keys on the rest). ``seed`` is listed separately by its users.
LEARNING_INVARIANT_FIELDS = ("device", "eval_chunk", "log_every", "data_dir", "download", "compile")

# Algorithm-dependent defaults: the authors' FF/FGFF settings, and a usual Adam setting for the two algorithms
# trained by cross-entropy, MF (each layer's own) and BP (end to end).
DEFAULT_LR = {"ff": 0.06, "fgff": 0.06, "mf": 1e-3, "bp": 1e-3}
DEFAULT_BATCH_SIZE = {"ff": 0, "fgff": 0, "mf": 128, "bp": 128}

MAX_LAYERS = 16
MAX_UNITS = 65536

