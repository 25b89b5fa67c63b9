"""fgff_core: Forward-Forward (FF), Fine-Grained Forward-Forward (FGFF), Mono-Forward (MF) and backprop training.

A library with no UI in it: the Streamlit app and the CLI both go through this public API. Its packages, from
the paper's math outwards:

- ``engine``: the formulas (goodness, loss, eq. 1-3), the networks, optimizers, the trainer and its driver;
- ``data``: the dataset registry (no torch) and the loaders; ``config``: the run configuration and presets;
- ``store``: the SQLite run store; ``jobs``: training jobs (local processes or Ray);
- ``analysis``: comparing runs, t-SNE, what a page says; ``viz``: Plotly figures; ``lesson``, ``reproduce``.

Names are imported on first use (PEP 562), so reading runs never loads torch.
"""

from ._lazy import exports_of, lazy_exports

_EXPORTS = {
    **exports_of(".config.schema", "RunConfig", "config_fields", "field_choices"),
    **exports_of(".data.registry", "DATASETS"),
    **exports_of(".data.loading", "Dataset", "DatasetNotFoundError", "load_dataset", "load_for_config"),
    **exports_of(".engine.device", "resolve_device"),
    **exports_of(".engine.events", "Event", "RunStarted", "EpochMetrics", "EvalMetrics", "RunFinished"),
    **exports_of(".engine.model", "FFNet", "FFLayer", "BPNet", "embed_labels", "goodness", "softplus_loss",
                 "hinge_loss"),
    **exports_of(".engine.training", "Trainer", "train", "draw_negative_labels"),
    **exports_of(".engine.runtime", "retain_freed_memory"),
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
