"""Datasets: ``registry`` (the registry ``DATASETS``: names, shapes, sizes; no torch), ``loading``
(``load_dataset`` / ``load_for_config``), and the file readers ``idx`` (MNIST-family IDX) and ``cifar``
(CIFAR-10, without pickle)."""

from .._lazy import exports_of, lazy_exports

_EXPORTS = {
    **exports_of(".registry", "DATASETS", "DatasetSpec", "DATASET_NAMES", "FIXED_NORM_DATASETS", "SUBSET_ORDERS",
                 "NORMALIZATIONS", "AUTHORS_CIFAR10_MEAN", "AUTHORS_CIFAR10_STD", "DIGITS_SAMPLES",
                 "DIGITS_TEST_FRACTION", "DIGITS_SPLIT_SEED"),
    **exports_of(".loading", "DATA_DIR_ENV", "DEFAULT_DATA_DIR", "DatasetNotFoundError", "Dataset", "LOADERS",
                 "DATA_ROOTS_ENV", "allowed_data_roots", "check_data_dir", "data_root", "find_dataset", "SUBSET_SEED",
                 "training_order", "load_dataset", "train_subset_note", "dataset_arguments", "load_for_config"),
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
