"""The dataset registry: what each dataset is, without loading it (no torch, no numpy).

The config reads the dataset names and which of them have the authors' fixed constants from here; the
launch estimates and the page sentences read the sizes; ``loading`` attaches a loader to each name. The one
place these facts live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Choices of how a dataset is loaded (``load_dataset``'s arguments, the config's fields of the same names).
SUBSET_ORDERS = ("shuffled", "first")  # train_subset_order
NORMALIZATIONS = ("data", "authors")  # normalize

# The fixed per-channel constants of the authors' CIFAR-10 code (their transforms.Normalize, as
# issue 14 reads it; the same figures circulate in many PyTorch CIFAR-10 examples). The mean is the
# training set's; the "std" is not its pixel std, which is (0.2470, 0.2435, 0.2616) and what
# normalize='data' computes. Used by normalize='authors'.
AUTHORS_CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
AUTHORS_CIFAR10_STD = (0.2023, 0.1994, 0.2010)
#: The constants as the config's help shows them: "mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010)".
AUTHORS_CIFAR10_TEXT = (f"mean ({', '.join(f'{v:.4f}' for v in AUTHORS_CIFAR10_MEAN)}), "
                        f"std ({', '.join(f'{v:.4f}' for v in AUTHORS_CIFAR10_STD)})")

# digits: scikit-learn's 1797 images, split once into train and test, stratified, with a fixed seed so
# every run and every user sees the same split. scikit-learn's test part is ceil(fraction x samples).
DIGITS_SAMPLES = 1797
DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0
_DIGITS_TEST = math.ceil(DIGITS_TEST_FRACTION * DIGITS_SAMPLES)


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: one dataset's facts (``loading.LOADERS`` holds how to read it)."""

    name: str
    title: str
    image_shape: tuple[int, ...]  # (channels, height, width)
    n_classes: int
    n_train: int  # the full training set (before any train_subset)
    n_test: int
    embedded: bool  # ships with a Python package: no data folder needed
    how_to_get: str
    # The authors' fixed per-channel (mean, std), for normalize='authors'; None: not known for this set.
    fixed_norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    @property
    def input_dim(self) -> int:
        """Inputs of the first layer: the flattened image."""
        return math.prod(self.image_shape)

    def train_samples(self, train_subset: int = 0) -> int:
        """Training samples a run uses: ``train_subset`` (0: all), at most the training set."""
        return min(train_subset, self.n_train) if train_subset else self.n_train


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec("digits", "Digits (scikit-learn 8x8, embedded)", (1, 8, 8), 10,
                          DIGITS_SAMPLES - _DIGITS_TEST, _DIGITS_TEST, True,
                          "It ships with scikit-learn; nothing to do."),
    "mnist": DatasetSpec("mnist", "MNIST (28x28 handwritten digits)", (1, 28, 28), 10, 60_000, 10_000, False,
                         "Put the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                         "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in DIR, DIR/mnist or "
                         "DIR/MNIST/raw."),
    "fashion_mnist": DatasetSpec("fashion_mnist", "Fashion-MNIST (28x28 clothing)", (1, 28, 28), 10, 60_000, 10_000,
                                 False, "Put the four Fashion-MNIST files (train-images-idx3-ubyte.gz, ...) in "
                                 "DIR, DIR/fashion-mnist or DIR/FashionMNIST/raw."),
    "cifar10": DatasetSpec("cifar10", "CIFAR-10 (32x32 colour)", (3, 32, 32), 10, 50_000, 10_000, False,
                           "Put the binary version's cifar-10-binary.tar.gz (read as it is, never unpacked "
                           "into DIR) or its unpacked cifar-10-batches-bin/, or the python version's "
                           "unpacked cifar-10-batches-py/, in DIR or DIR/cifar10.",
                           fixed_norm=(AUTHORS_CIFAR10_MEAN, AUTHORS_CIFAR10_STD)),
}

DATASET_NAMES = tuple(DATASETS)
#: Datasets with the authors' fixed normalisation constants (normalize='authors' needs one of them).
FIXED_NORM_DATASETS = tuple(name for name, spec in DATASETS.items() if spec.fixed_norm is not None)
