import gzip
import os
import shutil
from pathlib import Path

import pytest
import torch

from fgff_core.data import DATASETS, DatasetNotFoundError, load_dataset

# The real datasets: $FGFF_DATA_DIR, else ../shared/datasets beside the checkout (as on this project's machines).
SHARED = Path(os.environ.get("FGFF_DATA_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")


def test_digits_is_embedded_normalised_and_split_stratified(digits):
    assert digits.x_train.shape == (1347, 64) and digits.x_test.shape == (450, 64)
    assert abs(float(digits.x_train.mean())) < 1e-4 and abs(float(digits.x_train.std()) - 1) < 1e-2
    train_counts = torch.bincount(digits.y_train, minlength=10).float()
    test_counts = torch.bincount(digits.y_test, minlength=10).float()
    assert torch.allclose(train_counts / train_counts.sum(), test_counts / test_counts.sum(), atol=0.01)
    again = load_dataset("digits")
    assert torch.equal(again.y_test, digits.y_test)  # fixed split


def test_train_subset_is_fixed_and_independent_of_the_seed():
    a = load_dataset("digits", train_subset=100)
    b = load_dataset("digits", train_subset=100)
    assert len(a.y_train) == 100 and torch.equal(a.x_train, b.x_train)


def test_unknown_dataset_is_a_value_error():
    with pytest.raises(ValueError, match="dataset: 'svhn' is not allowed"):
        load_dataset("svhn")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_dataset_offline_says_where_it_looked_and_how_to_provide_it(tmp_path, name, monkeypatch):
    monkeypatch.setattr("fgff_core.data.DEFAULT_DATA_DIR", tmp_path / "cache")
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, data_dir=tmp_path / "empty", download=False)
    text = str(err.value)
    assert f"Dataset '{name}' not found, and download is off." in text
    assert str(tmp_path / "empty") in text
    assert "How to provide it:" in text and "--data-dir" in text and "FGFF_DATA_DIR" in text
    assert DATASETS[name].how_to_get in text


def _write_tiny_idx(folder: Path, n_train=30, n_test=10):
    """Tiny MNIST-format files, to exercise the loading code without the real data."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write((2051).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + images.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write((2049).to_bytes(4, "big") + n.to_bytes(4, "big") + labels.tobytes())


@pytest.mark.parametrize("layout", ["flat", "parent", "torchvision"])
def test_idx_files_are_found_in_each_documented_layout(tmp_path, monkeypatch, layout):
    """torchvision checks MD5s of known files; tiny files only pass where it does not (already unpacked raw)."""
    monkeypatch.setattr("fgff_core.data.DEFAULT_DATA_DIR", tmp_path / "cache")
    from fgff_core import data as data_mod

    data_mod._load_normalised.cache_clear()
    folder = {"flat": tmp_path / "d", "parent": tmp_path / "d" / "mnist",
              "torchvision": tmp_path / "d" / "MNIST" / "raw"}[layout]
    _write_tiny_idx(folder)
    # Unpacked copies beside the .gz files: torchvision reads them without checking MD5s or downloading.
    for gz in list(folder.glob("*.gz")):
        with gzip.open(gz) as src, open(gz.with_suffix(""), "wb") as dst:
            shutil.copyfileobj(src, dst)
    ds = load_dataset("mnist", data_dir=tmp_path / "d", download=False)
    assert ds.x_train.shape == (30, 784) and ds.x_test.shape == (10, 784)
    assert ds.y_train[:3].tolist() == [0, 1, 2]
    data_mod._load_normalised.cache_clear()


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="needs ../shared/datasets")
@pytest.mark.parametrize("name, mean", [("mnist", 0.1307), ("fashion_mnist", 0.2860)])
def test_real_datasets_from_the_shared_folder(name, mean):
    ds = load_dataset(name, data_dir=os.fspath(SHARED))
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.mean[0] == pytest.approx(mean, abs=1e-4)
    assert abs(float(ds.x_train.mean())) < 1e-3


# -- data folders (issue 16) ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_a_failed_download_leaves_no_folder_behind(tmp_path, monkeypatch, name):
    """torchvision makes <dir>/MNIST/raw before it tries the network; a failed attempt must undo it."""
    import torchvision.datasets.cifar as tv_cifar
    import torchvision.datasets.mnist as tv_mnist

    def offline(*_a, **_kw):
        raise RuntimeError("network unreachable")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    monkeypatch.setattr("fgff_core.data.DEFAULT_DATA_DIR", tmp_path / "cache")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        load_dataset(name, data_dir=data_dir, download=True)
    assert list(data_dir.iterdir()) == []
    assert not (tmp_path / "cache").exists()
    with pytest.raises(DatasetNotFoundError, match="download is off"):
        load_dataset(name, data_dir=tmp_path / "nowhere", download=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_data_folders_outside_the_allowed_roots_are_refused(tmp_path, monkeypatch):
    from fgff_core.data import DATA_ROOTS_ENV, check_data_dir

    allowed, other = tmp_path / "allowed", tmp_path / "other"
    allowed.mkdir()
    other.mkdir()
    (allowed / "escape").symlink_to(other)
    check_data_dir(allowed / "mnist", [allowed])  # inside, even if it does not exist yet
    check_data_dir(None, [allowed])  # the server's own default folder
    check_data_dir(other, None)  # no limit set
    for bad in (other, allowed / ".." / "other", allowed / "escape", "/etc"):
        with pytest.raises(ValueError, match=r"data_dir: .* is outside the data folders this server allows: "):
            check_data_dir(bad, [allowed])
    monkeypatch.setenv(DATA_ROOTS_ENV, os.pathsep.join([str(allowed), str(tmp_path / "second")]))
    check_data_dir(tmp_path / "second" / "x")
    with pytest.raises(ValueError, match=str(allowed)):
        load_dataset("mnist", data_dir=other, download=True)
    assert list(other.iterdir()) == []
