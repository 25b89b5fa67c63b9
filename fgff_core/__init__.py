"""fgff_core: Forward-Forward (FF), Fine-Grained Forward-Forward (FGFF) and backprop training.

A library with no UI in it: the Streamlit app and the CLI both go through this public API.
"""

from .config import RunConfig, config_fields, field_choices
from .data import DATASETS, Dataset, DatasetNotFoundError, load_dataset, load_for_config
from .device import resolve_device
from .events import EpochMetrics, EvalMetrics, Event, RunFinished, RunStarted
from .model import BPNet, FFLayer, FFNet, embed_labels, goodness, hinge_loss, softplus_loss
from .runtime import retain_freed_memory
from .training import Trainer, draw_negative_labels, train

__all__ = [
    "RunConfig", "config_fields", "field_choices",
    "DATASETS", "Dataset", "DatasetNotFoundError", "load_dataset", "load_for_config",
    "Event", "RunStarted", "EpochMetrics", "EvalMetrics", "RunFinished",
    "FFNet", "FFLayer", "BPNet", "embed_labels", "goodness", "softplus_loss", "hinge_loss",
    "Trainer", "train", "resolve_device", "draw_negative_labels", "retain_freed_memory",
]
