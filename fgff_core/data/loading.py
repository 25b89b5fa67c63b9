"""Dataset loading: the registry's datasets (``registry.py``) as normalised tensors.

``digits`` (scikit-learn's 8x8 digits) ships with scikit-learn and needs nothing else. MNIST and
Fashion-MNIST are read from their IDX files in a local data folder (``idx.py``); CIFAR-10 from
torchvision's python version (read by torchvision, which checks it) or the binary version (``cifar.py``,
no pickle). A missing dataset is downloaded through torchvision when ``download`` is on and the network
answers. Images are normalised
per channel with the training set's mean/std (``normalize='data'``; for MNIST these are the usual
0.1307/0.3081) or with the authors' fixed CIFAR-10 constants (``normalize='authors'``), and flattened.
``LOADERS`` attaches to each registered name the function that reads its raw arrays.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config.schema import RunConfig
from ..config.values import check_choice
from ..format import shorten
from . import cifar, idx
from .registry import (
    DATASETS,
    DIGITS_SPLIT_SEED,
    DIGITS_TEST_FRACTION,
    FIXED_NORM_DATASETS,
    NORMALIZATIONS,
    SUBSET_ORDERS,
)

DATA_DIR_ENV = "FGFF_DATA_DIR"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "fgff" / "data"


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not in any folder we looked in and could not be downloaded."""


@dataclass(frozen=True)
class Dataset:
    """A dataset ready for training: flattened, normalised float32 tensors on the CPU."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    image_shape: tuple[int, ...]  # (channels, height, width), to draw samples as images
    n_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def input_dim(self) -> int:
        return self.x_train.shape[1]

    def to(self, device: torch.device | str) -> Dataset:
        return Dataset(self.name, self.x_train.to(device), self.y_train.to(device), self.x_test.to(device),
                       self.y_test.to(device), self.image_shape, self.n_classes, self.mean, self.std)

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Back to pixel scale, (N, C, H, W), for display."""
        c = self.image_shape[0]
        mean = torch.tensor(self.mean).view(1, c, 1, 1)
        std = torch.tensor(self.std).view(1, c, 1, 1)
        return x.detach().cpu().reshape(-1, *self.image_shape) * std + mean


# -- digits: embedded ------------------------------------------------------------------------

def _load_digits(_data_dir: Path | None, _download: bool):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float32)  # (1797, 64), values 0..16
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=DIGITS_TEST_FRACTION, stratify=y,
                                              random_state=DIGITS_SPLIT_SEED)
    return x_tr, y_tr, x_te, y_te


# -- MNIST, Fashion-MNIST, CIFAR-10 -------------------------------------------------------------

DATA_ROOTS_ENV = "FGFF_DATA_ROOTS"


def allowed_data_roots() -> list[Path] | None:
    """The data roots a server allows ($FGFF_DATA_ROOTS, os.pathsep-separated), or None: no limit."""
    env = os.environ.get(DATA_ROOTS_ENV, "")
    roots = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    return roots or None


def check_data_dir(data_dir: str | Path | None, allowed_roots: Sequence[str | Path] | None = None) -> None:
    """Refuse a data folder outside the allowed roots (a shared server's limit).

    ``allowed_roots`` defaults to $FGFF_DATA_ROOTS; with neither there is no limit. ``None`` (the
    server's own default folder) is always allowed. Paths are compared after resolving ``..`` and
    symbolic links. Raises ``ValueError`` naming ``data_dir`` and the allowed roots.
    """
    roots = allowed_data_roots() if allowed_roots is None else [Path(r).expanduser() for r in allowed_roots]
    if data_dir is None or not str(data_dir).strip() or not roots:
        return
    try:
        target = Path(data_dir).expanduser().resolve()
        resolved = [r.resolve() for r in roots]
    except (OSError, RuntimeError, ValueError):
        target, resolved = None, []
    if target is None or not any(target == r or target.is_relative_to(r) for r in resolved):
        raise ValueError(f"data_dir: {str(data_dir)[:200]!r} is outside the data folders this server allows: "
                         f"{', '.join(str(r) for r in roots)}")


def data_root(data_dir: str | Path | None) -> Path | None:
    """The data folder in force: the option, else $FGFF_DATA_DIR, else None (default cache)."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else None


# Where each dataset's files may sit inside a data folder DIR: MNIST-family IDX files in DIR, DIR/<name> or
# torchvision's DIR[/<name>]/<Class>/raw; CIFAR-10 (python or binary version) in DIR or DIR/<name>.
IDX_LAYOUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": ("MNIST", ("mnist", "MNIST")),
    "fashion_mnist": ("FashionMNIST", ("fashion-mnist", "fashion_mnist", "FashionMNIST")),
}
CIFAR_FOLDERS = ("cifar10", "cifar-10", "CIFAR10")


def _candidates(name: str, root: Path) -> list[Path]:
    """Folders under ``root`` that may hold ``name``'s files, in the order they are tried."""
    if name == "cifar10":
        return [root, *(root / folder for folder in CIFAR_FOLDERS)]
    tv_class, folder_names = IDX_LAYOUTS[name]
    out = [root, root / tv_class / "raw"]
    out += [root / folder for folder in folder_names]
    out += [root / folder / tv_class / "raw" for folder in folder_names]
    return out


def _holds(name: str, folder: Path) -> bool:
    if name == "cifar10":
        return cifar.has_python_version(folder) or cifar.find_binary(folder) is not None
    return idx.has_files(folder)


def search_roots(data_dir: Path | None) -> list[Path]:
    """The data folders a dataset is looked for in: ``data_dir`` (when given), then the default cache."""
    return [*([data_dir] if data_dir else []), DEFAULT_DATA_DIR]


def find_dataset(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The folder ``name``'s files would be read from (``data_dir``, else $FGFF_DATA_DIR, then the default cache),
    found by their names without reading them; None where no folder holds them (and for the embedded digits)."""
    if DATASETS[check_choice("dataset", name, DATASETS)].embedded:
        return None
    for root in search_roots(data_root(data_dir)):
        for folder in _candidates(name, root):
            if _holds(name, folder):
                return folder
    return None


def _load_idx_dataset(name: str, tv_class: str, data_dir: Path | None, download: bool):
    """The four IDX files from the first folder that has them (read by ``idx.py``), else a download through
    torchvision when ``download`` is on."""
    folder = find_dataset(name, data_dir)
    if folder is not None:
        splits = idx.read_folder(folder)
        return (*_flat_xy(splits.x_train, splits.y_train), *_flat_xy(splits.x_test, splits.y_test))

    def fetch(target: Path):
        import torchvision.datasets as tvd

        return _arrays_from_torchvision(getattr(tvd, tv_class), target, download=True)

    reason = _try_download(fetch, data_dir, download, (tv_class, "raw"))
    if not isinstance(reason, str):
        return reason
    raise DatasetNotFoundError(_missing_message(name, search_roots(data_dir), reason))


def _try_download(fetch: Callable[[Path], Any], data_dir: Path | None, download: bool, subfolders: tuple[str, ...]):
    """Download through ``fetch(target)`` or return why not (a str). Folders the attempt created are
    removed when it fails, so a failed load leaves the data folder as it was."""
    if not download:
        return "download is off"
    target = data_dir or DEFAULT_DATA_DIR
    chain = [target]
    for part in subfolders:
        chain.append(chain[-1] / part)
    new = [p for p in chain if not p.exists()]
    try:
        return fetch(target)
    except Exception as exc:  # network down, mirror gone, disk full: all end the same way
        for folder in reversed(new):
            shutil.rmtree(folder, ignore_errors=True)
        return f"download failed ({type(exc).__name__}: {shorten(str(exc))})"


def _arrays_from_torchvision(cls, root: Path, download: bool):
    train = cls(str(root), train=True, download=download)
    test = cls(str(root), train=False, download=download)
    return (*_split_xy(train), *_split_xy(test))


def _split_xy(ds) -> tuple[np.ndarray, np.ndarray]:
    data = ds.data
    data = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if data.ndim == 4:  # CIFAR: (N, H, W, C) -> (N, C, H, W), channel-major like ToTensor
        data = data.transpose(0, 3, 1, 2)
    return _flat_xy(data, ds.targets)


def _flat_xy(images: np.ndarray, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float32 images in [0, 1] and int64 labels."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, np.asarray(labels, dtype=np.int64)


def _load_mnist(data_dir: Path | None, download: bool):
    return _load_idx_dataset("mnist", IDX_LAYOUTS["mnist"][0], data_dir, download)


def _load_fashion_mnist(data_dir: Path | None, download: bool):
    return _load_idx_dataset("fashion_mnist", IDX_LAYOUTS["fashion_mnist"][0], data_dir, download)


def _load_cifar10(data_dir: Path | None, download: bool):
    import torchvision.datasets as tvd

    folder = find_dataset("cifar10", data_dir)
    if folder is not None and cifar.has_python_version(folder):
        try:
            return _arrays_from_torchvision(tvd.CIFAR10, folder, download=False)
        except RuntimeError:  # torchvision's "Dataset not found or corrupted": an MD5 did not match
            raise cifar.damaged_python_version(folder) from None
    reader = cifar.find_binary(folder) if folder is not None else None
    if reader is not None:
        return tuple(reader())

    reason = _try_download(lambda target: _arrays_from_torchvision(tvd.CIFAR10, target, download=True),
                           data_dir, download, ())
    if not isinstance(reason, str):
        return reason
    raise DatasetNotFoundError(_missing_message("cifar10", search_roots(data_dir), reason))


def _missing_message(name: str, roots: list[Path], reason: str) -> str:
    """Three lines: what is missing and why, the data folders looked in (each with the layouts the
    how-to names), how to provide it."""
    spec = DATASETS[name]
    places = ", ".join(dict.fromkeys(str(p) for p in roots))
    return (f"Dataset '{spec.name}' not found, and {reason}.\n"
            f"Looked in these data folders (DIR below): {places}.\n"
            f"How to provide it: {spec.how_to_get} Then pass --data-dir DIR (or data_dir in the config) "
            f"or set {DATA_DIR_ENV}=DIR.")


RawArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test
#: How to read each registered dataset's raw arrays: ``LOADERS[name](data_dir, download)``.
LOADERS: dict[str, Callable[[Path | None, bool], RawArrays]] = {
    "digits": _load_digits, "mnist": _load_mnist, "fashion_mnist": _load_fashion_mnist, "cifar10": _load_cifar10,
}


@functools.lru_cache(maxsize=4)
def _load_normalised(name: str, root: Path | None, download: bool, normalize: str = "data") -> Dataset:
    spec = DATASETS[name]
    x_tr, y_tr, x_te, y_te = LOADERS[name](root, download)
    c = spec.image_shape[0]
    if normalize == "authors":
        if spec.fixed_norm is None:
            raise ValueError(f"normalize: 'authors' has fixed constants for {', '.join(FIXED_NORM_DATASETS)} only, "
                             f"not {name}")
        shown = spec.fixed_norm  # exactly the published figures
        mean, std = (np.asarray(v, dtype=np.float32) for v in spec.fixed_norm)
    else:  # per channel (one channel for grayscale), from the training set
        per_channel = x_tr.reshape(len(x_tr), c, -1)
        mean = per_channel.mean(axis=(0, 2))
        std = per_channel.std(axis=(0, 2))
        shown = (tuple(float(m) for m in mean), tuple(float(s) for s in std))

    def norm(x: np.ndarray) -> torch.Tensor:
        out = x.reshape(len(x), c, -1) - mean[None, :, None]  # one float32 copy, divided in place
        out /= std[None, :, None]
        return torch.from_numpy(out.reshape(len(x), -1).astype(np.float32, copy=False))

    return Dataset(name, norm(x_tr), torch.from_numpy(y_tr), norm(x_te), torch.from_numpy(y_te),
                   spec.image_shape, spec.n_classes, *shown)


SUBSET_SEED = 12345  # the train-subset shuffle is fixed, so runs with different seeds see the same data


def training_order(n: int, order: str) -> torch.Tensor:
    """The order in which training subsets take the ``n`` training samples: file order (``'first'``) or the
    fixed shuffle (``'shuffled'``, the same for every seed). A subset of N is the first N of it."""
    if order == "first":
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(SUBSET_SEED))


def load_dataset(name: str = "digits", data_dir: str | Path | None = None, download: bool = True,
                 train_subset: int = 0, train_subset_order: str = "shuffled", normalize: str = "data") -> Dataset:
    """Load a registered dataset, normalised and flattened, on the CPU.

    ``train_subset`` N > 0 keeps N training samples: the first N of a fixed shuffle
    (``train_subset_order='shuffled'``, the same for every seed) or the first N in file order
    (``'first'``, as the authors' MNIST code, which trains on the first 50,000). ``normalize``:
    ``'data'`` uses the training set's per-channel mean/std, ``'authors'`` the authors' fixed
    constants (CIFAR-10 only; see ``cifar.AUTHORS_CIFAR10_MEAN``).

    Raises ``DatasetNotFoundError`` (a ``FileNotFoundError``) saying where it looked and how to
    provide the files, and ``ValueError`` for an unknown name or option, or a damaged file.

    Loaded datasets are cached per process and their tensors are shared between callers: copy
    before modifying them in place.
    """
    check_choice("dataset", name, DATASETS)
    check_choice("train_subset_order", train_subset_order, SUBSET_ORDERS)
    check_choice("normalize", normalize, NORMALIZATIONS)
    return _load_checked(name, data_dir, download, train_subset, train_subset_order, normalize)


def _load_checked(name: str, data_dir: str | Path | None, download: bool, train_subset: int, train_subset_order: str,
                  normalize: str) -> Dataset:
    """``load_dataset`` once the names are known to be valid (a ``RunConfig``'s are)."""
    check_data_dir(data_dir)
    ds = _load_normalised(name, data_root(data_dir), download, normalize)
    if train_subset and train_subset < len(ds.y_train):
        idx = training_order(len(ds.y_train), train_subset_order)[:train_subset].sort().values
        ds = Dataset(ds.name, ds.x_train[idx], ds.y_train[idx], ds.x_test, ds.y_test, ds.image_shape,
                     ds.n_classes, ds.mean, ds.std)
    return ds


def train_subset_note(config: RunConfig, data: Dataset) -> str | None:
    """A sentence when ``train_subset`` asks for more samples than the training set has (it is clamped)."""
    if config.train_subset and config.train_subset > len(data.y_train):
        return (f"train_subset {config.train_subset} is larger than the {data.name} training set: "
                f"using all {len(data.y_train)} samples")
    return None


def dataset_arguments(config: RunConfig) -> dict[str, Any]:
    """The ``load_dataset`` arguments that a ``RunConfig`` names: the one place that says which data a run
    trains and tests on (``load_for_config`` and the reproduce cache both read it)."""
    return {"name": config.dataset, "data_dir": config.data_dir, "download": config.download,
            "train_subset": config.train_subset, "train_subset_order": config.train_subset_order,
            "normalize": config.normalize}


def load_for_config(config: RunConfig) -> Dataset:
    """The dataset a ``RunConfig`` asks for (its choices are valid already: ``RunConfig`` checked them)."""
    return _load_checked(**dataset_arguments(config))
