"""The run configuration: ``schema`` (``RunConfig``, the one validated dataclass), ``choices`` (what each field
may hold: the choice lists, defaults and limits), ``values`` (each field's accepted spellings, ``check_choice``),
``form`` (the config as a form and URL parameters), ``labels`` (what the form calls each field) and ``presets``
(named configurations). ``from fgff_core.config import RunConfig`` reads the schema."""

from .._lazy import exports_of, lazy_exports

_EXPORTS = {
    **exports_of(".choices", "LOSSES", "NEGATIVE_STRATEGIES", "SCHEDULES", "OPTIMIZERS", "PRECISIONS",
                 "DEVICES", "LR_SCHEDULES", "PREDICT_LAYERS", "SIGNIFICANCE_PARAMS", "DATASET_NAMES",
                 "FIXED_NORM_DATASETS", "SUBSET_ORDERS", "NORMALIZATIONS",
                 "LEARNING_INVARIANT_FIELDS", "DEFAULT_LR", "DEFAULT_BATCH_SIZE", "MAX_LAYERS", "MAX_UNITS"),
    **exports_of(".schema", "RunConfig", "field_kind", "parse_field", "config_fields", "field_choices"),
    **exports_of(".values", "check_choice"),
    # Defined in ``fgff_core.vocabulary`` (with has_goodness, has_factors, trains_factors, algo_label).
    **exports_of("..vocabulary", "ALGORITHMS", "ALGORITHM_LABELS"),
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
