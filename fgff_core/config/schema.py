"""The run configuration: one validated dataclass, the single source of truth for CLI and UI.

Every field carries its own help text and allowed range in ``dataclasses.field(metadata=...)``;
the CLI builds its flags from that metadata and the app builds its form from it, so adding an
option here adds it everywhere. Bad values raise ``ValueError`` naming the field and the range.
The lists a field chooses from, the defaults and the limits live in ``choices.py``; this module declares
the fields with them and checks a config.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..data.registry import AUTHORS_CIFAR10_TEXT
from ..vocabulary import ALGORITHMS, trains_factors, trains_locally
from .choices import (
    DATASET_NAMES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_LR,
    DEVICES,
    FIXED_NORM_DATASETS,
    LOSSES,
    LR_SCHEDULES,
    MAX_LAYERS,
    MAX_UNITS,
    NEGATIVE_STRATEGIES,
    NORMALIZATIONS,
    OPTIMIZERS,
    PRECISIONS,
    PREDICT_LAYERS,
    SCHEDULES,
    SIGNIFICANCE_PARAMS,
    SUBSET_ORDERS,
)
from .values import KINDS, check_requires, choices_of, parse_value, short_repr


def _meta(kind: str, help: str, **kw: Any) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown field kind {kind!r}")
    return {"kind": kind, "help": help, **kw}


@dataclass
class RunConfig:
    """Everything that defines one training run.

    Field names are the CLI flag names (``--train-subset`` for ``train_subset``) and the JSON keys.
    ``lr`` and ``batch_size`` left as ``None`` resolve to the algorithm's default.
    """

    algo: str = field(
        default="fgff",
        metadata=_meta("choice", "Training algorithm: ff (Forward-Forward), fgff (Fine-Grained FF, with the "
                       "trainable significance matrix), mf (Mono-Forward: each layer's own class scores by "
                       "cross-entropy, no negative data) or bp (backpropagation baseline).",
                       choices=ALGORITHMS),
    )
    dataset: str = field(
        default="digits",
        metadata=_meta("choice", "Dataset: digits is embedded (scikit-learn 8x8 digits); mnist, fashion_mnist "
                       "and cifar10 are read from --data-dir / FGFF_DATA_DIR or downloaded.",
                       choices=DATASET_NAMES),  # the dataset registry is the source of names
    )
    layers: tuple[int, ...] = field(
        default=(100, 100),
        metadata=_meta("int_list", "Hidden layer sizes, comma separated (e.g. 500,500).",
                       min=1, max=MAX_UNITS, min_len=1, max_len=MAX_LAYERS),
    )
    epochs: int = field(
        default=200,
        metadata=_meta("int", "Epochs per layer for FF/FGFF/MF (greedy schedule), epochs in total for BP and "
                       "for the simultaneous schedule.", min=1, max=1_000_000),
    )
    batch_size: int | None = field(
        default=None,
        metadata=_meta("int", "Minibatch size; 0 or 'full' means full batch, one step per epoch, as in the "
                       "paper. Default: full for ff/fgff, 128 for mf and bp.", min=0, max=10_000_000,
                       optional=True, aliases={"full": 0}),
    )
    optimizer: str = field(default="adam", metadata=_meta(
        "choice", "Optimizer of the weights: adam, adamw or sgd (with momentum). FGFF's significance factors "
        "always use adam.", choices=OPTIMIZERS))
    lr: float | None = field(
        default=None,
        metadata=_meta("float", "Learning rate of the weights and biases (MF: and its projections). Default: 0.06 "
                       "for ff/fgff (the authors' code), 0.001 for mf and bp.", min=0.0, max=10.0, min_open=True,
                       optional=True),
    )
    sig_lr: float = field(
        default=0.15,
        metadata=_meta("float", "Learning rate of the significance factors (FGFF only). 0 freezes them at 1, "
                       "which is exactly FF.", min=0.0, max=10.0),
    )
    threshold: float = field(
        default=2.0,
        metadata=_meta("float", "Goodness threshold: positive goodness is pushed above it, negative below.",
                       min=0.0, max=1000.0, min_open=True),
    )
    loss: str = field(
        default="softplus",
        metadata=_meta("choice", "Layer loss: softplus = log(1+exp(.)) as in the authors' code; hinge = the "
                       "plain hinge of eq. (1) with margin delta; symba = softplus(symba_alpha * (g_neg - g_pos)); "
                       "exp_hinge = eq. (1) with each hinge term t as exp(t) - 1 (our reading of the exponential "
                       "hinge that the authors' code's 'hinge' switch runs; their formula was not available).",
                       choices=LOSSES),
    )
    delta: float = field(
        default=0.5,
        metadata=_meta("float", "Margin of the hinge loss, eq. (1): positive and negative goodness are pushed "
                       "2*delta apart around the threshold. The authors' code defaults to 1.0; ours is 0.5.",
                       min=0.0, max=1000.0),
    )
    label_value: float | str = field(
        default=1.0,
        metadata=_meta("float", "Value written at the label's position among the first 10 inputs: a number "
                       "(1.0 as in the authors' code) or 'max' for the training data's maximum.",
                       min=0.0, max=1000.0, min_open=True, special=("max",)),
    )
    negatives: str = field(
        default="fixed",
        metadata=_meta("choice", "Negative labels, drawn uniformly among the 9 wrong ones: fixed (drawn once, "
                       "Algorithm 1) or resample (drawn anew every epoch).",
                       choices=NEGATIVE_STRATEGIES),
    )
    schedule: str = field(
        default="greedy",
        metadata=_meta("choice", "greedy: layer 1 trained for all its epochs, then its frozen outputs train "
                       "layer 2, ... (Algorithm 1); simultaneous: every layer steps each epoch on "
                       "detached inputs.", choices=SCHEDULES),
    )
    seed: int = field(default=0, metadata=_meta("int", "Random seed (initialisation, negatives, batches).",
                                                min=0, max=2**32 - 1))
    device: str = field(
        default="auto",
        metadata=_meta("choice", "auto picks CUDA, then Apple MPS, then CPU; or cpu, cuda, cuda:N, mps.",
                       choices=DEVICES, pattern=r"cuda:\d{1,3}", pattern_text="cuda:N"),
    )
    eval_every: int = field(
        default=10,
        metadata=_meta("int", "Evaluate train/test accuracy on the evaluation subset every N epochs "
                       "(0: only at the end).", min=0, max=1_000_000),
    )
    eval_subset: int = field(
        default=1000,
        metadata=_meta("int", "Samples of train and of test data used for the evaluations during training.",
                       min=1, max=10_000_000),
    )
    eval_chunk: int = field(
        default=0,
        metadata=_meta("int", "Samples per chunk at prediction; bounds memory. 0: automatic (the fastest measured "
                       "for the device, see FFNet.label_goodness).", min=0, max=10_000_000),
    )
    train_subset: int = field(
        default=0,
        metadata=_meta("int", "Use only N training samples (0: all), chosen by train_subset_order. More "
                       "than the training set has means all of it (the CLI says so).",
                       min=0, max=10_000_000),
    )
    train_subset_order: str = field(
        default="shuffled",
        metadata=_meta("choice", "Which N samples train_subset keeps: shuffled = the first N of a fixed "
                       "shuffle (the same for every seed); first = the first N in file order, as the "
                       "authors' MNIST code, which trains on the first 50,000 of the 60,000.",
                       choices=SUBSET_ORDERS),
    )
    normalize: str = field(
        default="data",
        metadata=_meta("choice", "Input normalisation per channel: data = the training set's mean and std "
                       "(MNIST: 0.1307, 0.3081); authors = the fixed constants of the authors' CIFAR-10 "
                       f"code, {AUTHORS_CIFAR10_TEXT} ({', '.join(FIXED_NORM_DATASETS)} only).",
                       choices=NORMALIZATIONS, requires={"authors": {"dataset": FIXED_NORM_DATASETS}}),
    )
    data_dir: str | None = field(
        default=None,
        metadata=_meta("path", "Folder holding the dataset files (default: $FGFF_DATA_DIR, then "
                       "~/.cache/fgff/data)."),
    )
    download: bool = field(
        default=True,
        metadata=_meta("bool", "Try to download a missing dataset through torchvision."),
    )
    factorize: bool = field(
        default=True,
        metadata=_meta("bool", "Label-factorised first layer: the image part's matrix product is computed "
                       "once and shared by positive, negative and the 10 candidate labels. Exact "
                       "up to float rounding."),
    )
    precision: str = field(
        default="fp32",
        metadata=_meta("choice", "Matmul precision: fp32 (exact), tf32 (CUDA) or bf16 (CUDA, and CPUs with "
                       "bf16 instructions); speed modes that change numbers slightly.", choices=PRECISIONS),
    )
    compile: bool = field(default=False, metadata=_meta(
        "bool", "Use torch.compile on the layer step (compiles for a few seconds; not faster than the eager "
        "engine on the benchmark CPU)."))
    log_every: int = field(
        default=1,
        metadata=_meta("int", "Copy per-epoch metrics to the host every N epochs (fewer GPU syncs).",
                       min=1, max=1_000_000),
    )
    # -- strong Forward-Forward recipes (issue 12): hard negatives, schedules, regularisers, readouts --
    hard_negatives: float = field(
        default=0.0,
        metadata=_meta("float", "Fraction of the negative labels that are hard: the wrong label with the highest "
                       "goodness under the current network (never the true one); the rest are random "
                       "(fixed or resampled, see negatives). 0: all random, as in the paper.", min=0.0, max=1.0),
    )
    hard_negatives_every: int = field(
        default=1,
        metadata=_meta("int", "Recompute the hard negatives every N epochs (of each layer for the greedy schedule).",
                       min=1, max=1_000_000),
    )
    lr_schedule: str = field(
        default="constant",
        metadata=_meta("choice", "Learning-rate schedule over each layer's epochs (the whole run for simultaneous and "
                       "bp): constant; linear = constant, then linear decay to 0 over the second half "
                       "(Hinton); cosine.", choices=LR_SCHEDULES),
    )
    weight_decay: float = field(
        default=0.0,
        metadata=_meta("float", "Weight decay of the weights (not of the significance factors): L2 for adam and sgd, "
                       "decoupled for adamw.", min=0.0, max=10.0),
    )
    momentum: float = field(
        default=0.9,
        metadata=_meta("float", "Momentum of the sgd optimizer.", min=0.0, max=0.999),
    )
    peer_norm: float = field(
        default=0.0,
        metadata=_meta("float", "Weight of Hinton's peer-normalisation penalty, which keeps each neuron's running mean "
                       "activity on positive data near its layer's mean. 0: off.", min=0.0, max=100.0),
    )
    symba_alpha: float = field(
        default=4.0,
        metadata=_meta("float", "Scale alpha of the symba loss softplus(alpha * (g_neg - g_pos)).",
                       min=0.0, max=100.0, min_open=True),
    )
    predict_layers: str = field(
        default="all",
        metadata=_meta("choice", "Layers whose goodness is summed at prediction (and for hard negatives): all, or "
                       "skip_first (all but layer 1, as Hinton; needs 2 or more layers). FF/FGFF only: MF predicts "
                       "from its last layer's class scores.",
                       choices=PREDICT_LAYERS),
    )
    readout_epochs: int = field(
        default=0,
        metadata=_meta("int", "Epochs of a linear softmax readout trained after FF on the frozen, normalised hidden "
                       "activities (the predict_layers, neutral label); reported as readout_test_acc, never "
                       "in the goodness accuracy; FF/FGFF only. 0: off.", min=0, max=1000),
    )
    augment_shift: int = field(
        default=0,
        metadata=_meta("int", "Data augmentation: every epoch, each training image moves by a random whole number of "
                       "pixels, up to N in each direction (the border filled with background). Uses the image "
                       "layout, so a run with N > 0 is not permutation-invariant (the paper's and Hinton's MLP "
                       "results are). The greedy schedule passes each epoch's images through the frozen layers "
                       "below anew. 0: off.", min=0, max=8),
    )
    significance_param: str = field(
        default="unconstrained",
        metadata=_meta("choice", "How FGFF's significance factors s are parameterised: unconstrained (the paper) or "
                       "non-negative, s = softplus(p) or s = exp(p) (all start at 1).",
                       choices=SIGNIFICANCE_PARAMS),
    )

    def __post_init__(self) -> None:
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
            shown = ", ".join([short_repr(k) for k in unknown[:5]] + (["..."] if len(unknown) > 5 else []))
            raise ValueError(f"unknown config field(s) [{shown}]; allowed: {sorted(known)}")
        return cls(**dict(values))

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            values = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"config is not valid JSON: {str(exc)[:200]}") from None
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
    def trains_factors(self) -> bool:
        """Whether this run trains the significance factors ``s`` (``vocabulary.trains_factors``: FGFF)."""
        return trains_factors(self.algo)

    @property
    def epoch_events(self) -> int:
        """How many epoch events a run reports: one per layer per epoch for FF/FGFF/MF (either schedule),
        one per epoch for BP, which trains all layers in one step."""
        return self.epochs * len(self.layers) if trains_locally(self.algo) else self.epochs

    def resolve_label_value(self, x_max: float) -> float:
        """The value written at the label's position: the number, or ``x_max`` (the training data's
        maximum) for ``label_value='max'``."""
        return float(x_max) if self.label_value == "max" else float(self.label_value)

    @property
    def effective_sig_lr(self) -> float:
        """FF is FGFF with the significance frozen at 1."""
        return self.sig_lr if self.trains_factors else 0.0

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Turn every accepted spelling (text from the CLI, a form, a URL or JSON) into its canonical
        value and check its range; ``ValueError`` names the field and what is allowed."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, parse_field(f.name, getattr(self, f.name)))
        for f in dataclasses.fields(self):
            check_requires(f.name, getattr(self, f.name), f.metadata, self)
        if self.lr is None:
            self.lr = DEFAULT_LR[self.algo]
        if self.batch_size is None:
            self.batch_size = DEFAULT_BATCH_SIZE[self.algo]


def _field(name: str) -> dataclasses.Field:
    for f in dataclasses.fields(RunConfig):
        if f.name == name:
            return f
    raise ValueError(f"{name}: not a config field")


def field_kind(name: str) -> str:
    """The kind of a field (one of ``KINDS``), from its metadata."""
    return _field(name).metadata["kind"]


def parse_field(name: str, value: Any) -> Any:
    """The one place where a value of field ``name`` in any accepted spelling (a CLI or URL string,
    a JSON number or string, a widget value) becomes the canonical value, checked against the
    field's range. Raises ``ValueError`` naming the field and what it allows."""
    return parse_value(name, value, _field(name).metadata)


def config_fields() -> list[dataclasses.Field]:
    """The schema, for the CLI and the UI: each field with its metadata (help, range, choices)."""
    return list(dataclasses.fields(RunConfig))


def field_choices(name: str) -> tuple[str, ...] | None:
    """Allowed values of a choice field (``dataset`` comes from the dataset registry)."""
    for f in dataclasses.fields(RunConfig):
        if f.name == name:
            return choices_of(f.metadata)
    raise KeyError(name)
