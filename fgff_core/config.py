"""The run configuration: one validated dataclass, the single source of truth for CLI and UI.

Every field carries its own help text and allowed range in ``dataclasses.field(metadata=...)``;
the CLI builds its flags from that metadata and the app builds its form from it, so adding an
option here adds it everywhere. Bad values raise ``ValueError`` naming the field and the range.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ALGORITHMS = ("ff", "fgff", "bp")
LOSSES = ("softplus", "hinge", "symba", "exp_hinge")
NEGATIVE_STRATEGIES = ("fixed", "resample")
SCHEDULES = ("greedy", "simultaneous")
OPTIMIZERS = ("adam", "adamw", "sgd")
PRECISIONS = ("fp32", "tf32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")
LR_SCHEDULES = ("constant", "linear", "cosine")
PREDICT_LAYERS = ("all", "skip_first")
SIGNIFICANCE_PARAMS = ("unconstrained", "softplus", "exp")

# How each algorithm is named to people (tables, legends, run names): the one place.
ALGORITHM_LABELS = {"ff": "FF", "fgff": "FGFF", "bp": "BP"}

# Fields that never change what is learned: runs that differ only in these are the same experiment
# (compare groups them; reproduce keys on the rest). ``seed`` is listed separately by its users.
LEARNING_INVARIANT_FIELDS = ("device", "eval_chunk", "log_every", "data_dir", "download", "compile")

# Algorithm-dependent defaults: the authors' FF/FGFF settings, and a usual Adam setting for BP.
DEFAULT_LR = {"ff": 0.06, "fgff": 0.06, "bp": 1e-3}
DEFAULT_BATCH_SIZE = {"ff": 0, "fgff": 0, "bp": 128}

MAX_LAYERS = 16
MAX_UNITS = 65536


def _meta(help: str, **kw: Any) -> dict[str, Any]:
    return {"help": help, **kw}


@dataclass
class RunConfig:
    """Everything that defines one training run.

    Field names are the CLI flag names (``--train-subset`` for ``train_subset``) and the JSON keys.
    ``lr`` and ``batch_size`` left as ``None`` resolve to the algorithm's default.
    """

    algo: str = field(
        default="fgff",
        metadata=_meta("Training algorithm: ff (Forward-Forward), fgff (Fine-Grained FF, with the "
                       "trainable significance matrix) or bp (backpropagation baseline).",
                       choices=ALGORITHMS),
    )
    dataset: str = field(
        default="digits",
        metadata=_meta("Dataset: digits is embedded (scikit-learn 8x8 digits); mnist, fashion_mnist "
                       "and cifar10 are read from --data-dir / FGFF_DATA_DIR or downloaded.",
                       choices=None),  # filled from the dataset registry, see data.DATASETS
    )
    layers: tuple[int, ...] = field(
        default=(100, 100),
        metadata=_meta("Hidden layer sizes, comma separated (e.g. 500,500).",
                       min=1, max=MAX_UNITS, min_len=1, max_len=MAX_LAYERS),
    )
    epochs: int = field(
        default=200,
        metadata=_meta("Epochs per layer for FF/FGFF (greedy schedule), epochs in total for BP and "
                       "for the simultaneous schedule.", min=1, max=1_000_000),
    )
    batch_size: int | None = field(
        default=None,
        metadata=_meta("Minibatch size; 0 or 'full' means full batch, one step per epoch, as in the "
                       "paper. Default: full for ff/fgff, 128 for bp.", min=0, max=10_000_000),
    )
    optimizer: str = field(default="adam", metadata=_meta(
        "Optimizer of the weights: adam, adamw or sgd (with momentum). FGFF's significance factors always "
        "use adam.", choices=OPTIMIZERS))
    lr: float | None = field(
        default=None,
        metadata=_meta("Learning rate of the weights and biases. Default: 0.06 for ff/fgff (the "
                       "authors' code), 0.001 for bp.", min=0.0, max=10.0, min_open=True),
    )
    sig_lr: float = field(
        default=0.15,
        metadata=_meta("Learning rate of the significance factors (FGFF only). 0 freezes them at 1, "
                       "which is exactly FF.", min=0.0, max=10.0),
    )
    threshold: float = field(
        default=2.0,
        metadata=_meta("Goodness threshold: positive goodness is pushed above it, negative below.",
                       min=0.0, max=1000.0, min_open=True),
    )
    loss: str = field(
        default="softplus",
        metadata=_meta("Layer loss: softplus = log(1+exp(.)) as in the authors' code; hinge = eq. (1) "
                       "with margin delta; symba = softplus(symba_alpha * (g_neg - g_pos)); exp_hinge = eq. (1) "
                       "with each hinge term t as exp(t) - 1.", choices=LOSSES),
    )
    delta: float = field(
        default=0.5,
        metadata=_meta("Margin of the hinge loss, eq. (1): positive and negative goodness are pushed "
                       "2*delta apart around the threshold.", min=0.0, max=1000.0),
    )
    label_value: float | str = field(
        default=1.0,
        metadata=_meta("Value written at the label's position among the first 10 inputs: a number "
                       "(1.0 as in the authors' code) or 'max' for the training data's maximum.",
                       min=0.0, max=1000.0, min_open=True, special=("max",)),
    )
    negatives: str = field(
        default="fixed",
        metadata=_meta("Negative labels, drawn uniformly among the 9 wrong ones: fixed (drawn once, "
                       "Algorithm 1) or resample (drawn anew every epoch).",
                       choices=NEGATIVE_STRATEGIES),
    )
    schedule: str = field(
        default="greedy",
        metadata=_meta("greedy: layer 1 trained for all its epochs, then its frozen outputs train "
                       "layer 2, ... (Algorithm 1); simultaneous: every layer steps each epoch on "
                       "detached inputs.", choices=SCHEDULES),
    )
    seed: int = field(default=0, metadata=_meta("Random seed (initialisation, negatives, batches).",
                                                min=0, max=2**32 - 1))
    device: str = field(
        default="auto",
        metadata=_meta("auto picks CUDA, then Apple MPS, then CPU; or cpu, cuda, cuda:N, mps.",
                       choices=DEVICES, allow_cuda_index=True),
    )
    eval_every: int = field(
        default=10,
        metadata=_meta("Evaluate train/test accuracy on the evaluation subset every N epochs "
                       "(0: only at the end).", min=0, max=1_000_000),
    )
    eval_subset: int = field(
        default=1000,
        metadata=_meta("Samples of train and of test data used for the evaluations during training.",
                       min=1, max=10_000_000),
    )
    eval_chunk: int = field(
        default=0,
        metadata=_meta("Samples per chunk at prediction; bounds memory. 0: automatic (the fastest measured "
                       "for the device, see FFNet.label_goodness).", min=0, max=10_000_000),
    )
    train_subset: int = field(
        default=0,
        metadata=_meta("Use only the first N training samples of a fixed shuffle (0: all).",
                       min=0, max=10_000_000),
    )
    data_dir: str | None = field(
        default=None,
        metadata=_meta("Folder holding the dataset files (default: $FGFF_DATA_DIR, then "
                       "~/.cache/fgff/data)."),
    )
    download: bool = field(
        default=True,
        metadata=_meta("Try to download a missing dataset through torchvision."),
    )
    factorize: bool = field(
        default=True,
        metadata=_meta("Label-factorised first layer: the image part's matrix product is computed "
                       "once and shared by positive, negative and the 10 candidate labels. Exact "
                       "up to float rounding."),
    )
    precision: str = field(
        default="fp32",
        metadata=_meta("Matmul precision: fp32 (exact), tf32 (CUDA) or bf16 (CUDA, and CPUs with "
                       "bf16 instructions); speed modes that change numbers slightly.", choices=PRECISIONS),
    )
    compile: bool = field(default=False, metadata=_meta(
        "Use torch.compile on the layer step (compiles for a few seconds; not faster than the eager "
        "engine on the benchmark CPU)."))
    log_every: int = field(
        default=1,
        metadata=_meta("Copy per-epoch metrics to the host every N epochs (fewer GPU syncs).",
                       min=1, max=1_000_000),
    )
    # -- strong Forward-Forward recipes (issue 12): hard negatives, schedules, regularisers, readouts --
    hard_negatives: float = field(
        default=0.0,
        metadata=_meta("Fraction of the negative labels that are hard: the wrong label with the highest "
                       "goodness under the current network (never the true one); the rest are random "
                       "(fixed or resampled, see negatives). 0: all random, as in the paper.", min=0.0, max=1.0),
    )
    hard_negatives_every: int = field(
        default=1,
        metadata=_meta("Recompute the hard negatives every N epochs (of each layer for the greedy schedule).",
                       min=1, max=1_000_000),
    )
    lr_schedule: str = field(
        default="constant",
        metadata=_meta("Learning-rate schedule over each layer's epochs (the whole run for simultaneous and "
                       "bp): constant; linear = constant, then linear decay to 0 over the second half "
                       "(Hinton); cosine.", choices=LR_SCHEDULES),
    )
    weight_decay: float = field(
        default=0.0,
        metadata=_meta("Weight decay of the weights (not of the significance factors): L2 for adam and sgd, "
                       "decoupled for adamw.", min=0.0, max=10.0),
    )
    momentum: float = field(
        default=0.9,
        metadata=_meta("Momentum of the sgd optimizer.", min=0.0, max=0.999),
    )
    peer_norm: float = field(
        default=0.0,
        metadata=_meta("Weight of Hinton's peer-normalisation penalty, which keeps each neuron's running mean "
                       "activity on positive data near its layer's mean. 0: off.", min=0.0, max=100.0),
    )
    symba_alpha: float = field(
        default=4.0,
        metadata=_meta("Scale alpha of the symba loss softplus(alpha * (g_neg - g_pos)).",
                       min=0.0, max=100.0, min_open=True),
    )
    predict_layers: str = field(
        default="all",
        metadata=_meta("Layers whose goodness is summed at prediction (and for hard negatives): all, or "
                       "skip_first (all but layer 1, as Hinton; needs 2 or more layers).",
                       choices=PREDICT_LAYERS),
    )
    readout_epochs: int = field(
        default=0,
        metadata=_meta("Epochs of a linear softmax readout trained after FF on the frozen, normalised hidden "
                       "activities (the predict_layers, neutral label); reported as readout_test_acc, never "
                       "in the goodness accuracy. 0: off.", min=0, max=1000),
    )
    significance_param: str = field(
        default="unconstrained",
        metadata=_meta("How FGFF's significance factors s are parameterised: unconstrained (the paper) or "
                       "non-negative, s = softplus(p) or s = exp(p) (all start at 1).",
                       choices=SIGNIFICANCE_PARAMS),
    )

    def __post_init__(self) -> None:
        self._normalise()
        self.validate()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build from a plain dict with the CLI/JSON keys; unknown keys are an error."""
        if not isinstance(values, Mapping):
            raise ValueError(f"config must be a mapping of field names to values, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; allowed: {sorted(known)}")
        return cls(**dict(values))

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from exc
        return cls.from_dict(values)

    @classmethod
    def coerce(cls, config: RunConfig | Mapping[str, Any]) -> RunConfig:
        """Accept a RunConfig or its dict form wherever a config is expected."""
        if isinstance(config, RunConfig):
            return config
        if dataclasses.is_dataclass(config) and type(config).__name__ == cls.__name__:
            # A RunConfig from an earlier import of this module: Streamlit re-imports changed
            # modules in a running server, and a page may still hold the old class.
            return cls.from_dict(config.to_dict())
        return cls.from_dict(config)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["layers"] = list(self.layers)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})

    # -- derived ------------------------------------------------------------------------------
    @property
    def full_batch(self) -> bool:
        return self.batch_size == 0

    @property
    def uses_significance(self) -> bool:
        """FGFF is the one algorithm with trainable significance factors ``s``."""
        return algo_uses_significance(self.algo)

    @property
    def algorithm_label(self) -> str:
        return ALGORITHM_LABELS[self.algo]

    @property
    def epoch_events(self) -> int:
        """How many epoch events a run reports: one per layer per epoch for FF/FGFF (either schedule),
        one per epoch for BP, which trains all layers in one step."""
        return self.epochs if self.algo == "bp" else self.epochs * len(self.layers)

    def resolve_label_value(self, x_max: float) -> float:
        """The value written at the label's position: the number, or ``x_max`` (the training data's
        maximum) for ``label_value='max'``."""
        return float(x_max) if self.label_value == "max" else float(self.label_value)

    @property
    def effective_sig_lr(self) -> float:
        """FF is FGFF with the significance frozen at 1."""
        return self.sig_lr if self.algo == "fgff" else 0.0

    # -- validation ---------------------------------------------------------------------------
    def _normalise(self) -> None:
        """Turn accepted spellings (strings from the CLI or a form) into canonical values."""
        if isinstance(self.layers, str):
            try:
                self.layers = tuple(int(p) for p in self.layers.replace("x", ",").split(","))
            except ValueError:
                raise ValueError(f"layers: expected comma-separated integers like 500,500, "
                                 f"got {self.layers!r}") from None
        elif isinstance(self.layers, int) and not isinstance(self.layers, bool):
            self.layers = (self.layers,)
        elif isinstance(self.layers, (list, tuple)):
            self.layers = tuple(self.layers)
        if isinstance(self.batch_size, str):
            if self.batch_size.strip().lower() == "full":
                self.batch_size = 0
            else:
                try:
                    self.batch_size = int(self.batch_size)
                except ValueError:
                    raise ValueError(f"batch_size: expected an integer >= 0 or 'full', "
                                     f"got {self.batch_size!r}") from None
        if isinstance(self.label_value, str) and self.label_value.strip().lower() != "max":
            try:
                self.label_value = float(self.label_value)
            except ValueError:
                raise ValueError(f"label_value: expected a number in (0, 1000] or 'max', "
                                 f"got {self.label_value!r}") from None
        if isinstance(self.label_value, str):
            self.label_value = "max"
        if self.algo in DEFAULT_LR:
            if self.lr is None:
                self.lr = DEFAULT_LR[self.algo]
            if self.batch_size is None:
                self.batch_size = DEFAULT_BATCH_SIZE[self.algo]
        if isinstance(self.data_dir, str) and not self.data_dir.strip():
            self.data_dir = None

    def validate(self) -> None:
        from .data import DATASETS  # the registry is the source of dataset names

        for f in dataclasses.fields(self):
            meta = f.metadata
            value = getattr(self, f.name)
            choices = meta.get("choices")
            if f.name == "dataset":
                choices = tuple(DATASETS)
            if f.name == "layers":
                _check_layers(value, meta)
                continue
            if f.name == "device":
                _check_device(value)
                continue
            if choices is not None:
                if value not in choices:
                    raise ValueError(f"{f.name}: {value!r} is not allowed; choose one of {', '.join(choices)}")
                continue
            if "min" in meta:
                if value in meta.get("special", ()):
                    continue
                kind = int if f.type in ("int", "int | None") else float
                _check_number(f.name, value, kind, meta)
            elif f.type == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{f.name}: expected true or false, got {value!r}")
            elif f.name == "data_dir":
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"data_dir: expected a folder path, got {value!r}")


def _range_text(meta: Mapping[str, Any]) -> str:
    lo = "(" if meta.get("min_open") else "["
    text = f"{lo}{meta['min']}, {meta['max']}]"
    for extra in meta.get("special", ()):
        text += f" or {extra!r}"
    return text


def _check_number(name: str, value: Any, kind: type, meta: Mapping[str, Any]) -> None:
    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok_type = ok_type and float(value).is_integer()
    if not ok_type or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"{name}: expected {'an integer' if kind is int else 'a number'} in "
                         f"{_range_text(meta)}, got {value!r}")
    lo, hi = meta["min"], meta["max"]
    if value < lo or value > hi or (meta.get("min_open") and value == lo):
        raise ValueError(f"{name}: {value!r} is out of range; allowed {_range_text(meta)}")


def _check_layers(value: Any, meta: Mapping[str, Any]) -> None:
    if not isinstance(value, tuple) or not (meta["min_len"] <= len(value) <= meta["max_len"]):
        raise ValueError(f"layers: expected {meta['min_len']} to {meta['max_len']} hidden layer sizes, "
                         f"got {value!r}")
    for size in value:
        if isinstance(size, bool) or not isinstance(size, int) or not (meta["min"] <= size <= meta["max"]):
            raise ValueError(f"layers: each size must be an integer in [{meta['min']}, {meta['max']}], "
                             f"got {size!r}")


def _check_device(value: Any) -> None:
    if isinstance(value, str) and (value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit())):
        return
    raise ValueError(f"device: {value!r} is not allowed; choose one of {', '.join(DEVICES)} or cuda:N")


def algo_uses_significance(algo: str) -> bool:
    """Whether runs of ``algo`` train significance factors (for stored rows that hold only the name)."""
    return algo == "fgff"


def config_fields() -> list[dataclasses.Field]:
    """The schema, for the CLI and the UI: each field with its metadata (help, range, choices)."""
    return list(dataclasses.fields(RunConfig))


def field_choices(name: str) -> tuple[str, ...] | None:
    """Allowed values of a choice field (``dataset`` comes from the dataset registry)."""
    if name == "dataset":
        from .data import DATASETS

        return tuple(DATASETS)
    for f in dataclasses.fields(RunConfig):
        if f.name == name:
            return f.metadata.get("choices")
    raise KeyError(name)
