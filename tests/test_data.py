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


def test_the_registry_says_what_digits_loads(digits):
    """Issue 35: the sizes live in the dataset registry, and loading agrees with it."""
    spec = DATASETS["digits"]
    assert (spec.n_train, spec.n_test) == (len(digits.y_train), len(digits.y_test))
    assert (spec.image_shape, spec.n_classes, spec.input_dim) == (digits.image_shape, digits.n_classes,
                                                                  digits.input_dim)
    assert spec.train_samples(0) == spec.n_train and spec.train_samples(100) == 100
    assert spec.train_samples(10 * spec.n_train) == spec.n_train


def test_every_registered_dataset_has_a_loader():
    from fgff_core.data import LOADERS

    assert set(LOADERS) == set(DATASETS)


def test_train_subset_is_fixed_and_independent_of_the_seed():
    a = load_dataset("digits", train_subset=100)
    b = load_dataset("digits", train_subset=100)
    assert len(a.y_train) == 100 and torch.equal(a.x_train, b.x_train)


def test_unknown_dataset_is_a_value_error():
    with pytest.raises(ValueError, match="dataset: 'svhn' is not allowed"):
        load_dataset("svhn")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_dataset_offline_says_where_it_looked_and_how_to_provide_it(tmp_path, name, monkeypatch):
    monkeypatch.setattr("fgff_core.data.loading.DEFAULT_DATA_DIR", tmp_path / "cache")
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, data_dir=tmp_path / "empty", download=False)
    text = str(err.value)
    assert f"Dataset '{name}' not found, and download is off." in text
    assert str(tmp_path / "empty") in text
    assert "How to provide it:" in text and "--data-dir" in text and "FGFF_DATA_DIR" in text
    assert DATASETS[name].how_to_get in text


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_the_missing_dataset_message_is_a_few_lines(tmp_path, name, monkeypatch):
    """Issue 38: it listed every folder layout it tried, 15-24 lines; now the data folders once each."""
    monkeypatch.setattr("fgff_core.data.loading.DEFAULT_DATA_DIR", tmp_path / "cache")
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, data_dir=tmp_path / "empty", download=False)
    lines = str(err.value).splitlines()
    assert len(lines) <= 5, lines
    assert lines[1] == f"Looked in these data folders (DIR below): {tmp_path / 'empty'}, {tmp_path / 'cache'}."


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


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("layout", ["flat", "parent", "torchvision"])
def test_idx_files_are_found_in_each_documented_layout(tmp_path, monkeypatch, layout, packed):
    """The four files, as .gz or unpacked, in the folder itself, a named child or torchvision's layout."""
    monkeypatch.setattr("fgff_core.data.loading.DEFAULT_DATA_DIR", tmp_path / "cache")
    from fgff_core.data import loading as data_mod

    data_mod._load_normalised.cache_clear()
    folder = {"flat": tmp_path / "d", "parent": tmp_path / "d" / "mnist",
              "torchvision": tmp_path / "d" / "MNIST" / "raw"}[layout]
    _write_tiny_idx(folder)
    if not packed:
        for gz in list(folder.glob("*.gz")):
            with gzip.open(gz) as src, open(gz.with_suffix(""), "wb") as dst:
                shutil.copyfileobj(src, dst)
            gz.unlink()
    ds = load_dataset("mnist", data_dir=tmp_path / "d", download=False)
    assert ds.x_train.shape == (30, 784) and ds.x_test.shape == (10, 784)
    assert ds.y_train[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert not (tmp_path / "cache").exists()  # read in place: nothing copied or linked
    data_mod._load_normalised.cache_clear()


def test_idx_pixels_are_read_exactly(tmp_path):
    from fgff_core.data import idx

    _write_tiny_idx(tmp_path, n_train=3, n_test=2)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz") as fh:
        stored = fh.read()[16:]
    splits = idx.read_folder(tmp_path)
    assert splits.x_train.shape == (3, 28, 28) and splits.x_train.tobytes() == stored
    assert splits.y_test.tolist() == [0, 1]


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-5], "expected 2368 for shape (3, 28, 28)"),
    (lambda raw: (2049).to_bytes(4, "big") + raw[4:], "magic 0x00000803 expected"),
    (lambda raw: b"", "not an IDX file"),
])
def test_a_damaged_idx_file_is_named_with_what_was_expected(tmp_path, damage, message):
    from fgff_core.data import idx

    _write_tiny_idx(tmp_path, n_train=3, n_test=2)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path) as fh:
        raw = fh.read()
    with gzip.open(path, "wb") as fh:
        fh.write(damage(raw))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: ") as err:
        idx.read_folder(tmp_path)
    assert message in str(err.value)


def test_a_truncated_gzip_stream_is_a_clear_error(tmp_path):
    from fgff_core.data import idx

    _write_tiny_idx(tmp_path, n_train=3, n_test=2)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: cannot read it as an IDX file"):
        idx.read_folder(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="needs ../shared/datasets")
@pytest.mark.parametrize("name, mean", [("mnist", 0.1307), ("fashion_mnist", 0.2860)])
def test_real_datasets_from_the_shared_folder(name, mean):
    ds = load_dataset(name, data_dir=os.fspath(SHARED))
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    spec = DATASETS[name]  # the registry's sizes are the files' sizes
    assert (len(ds.y_train), len(ds.y_test), ds.image_shape) == (spec.n_train, spec.n_test, spec.image_shape)
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
    monkeypatch.setattr("fgff_core.data.loading.DEFAULT_DATA_DIR", tmp_path / "cache")
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


# -- CIFAR-10, binary version (issue 14) ----------------------------------------------------------

def _cifar_records(n_per_class: int, seed: int) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.uint8), n_per_class)
    pixels = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    pixels[:, :1024] = labels[:, None] * 20  # red plane encodes the label: lets the test check the layout
    return np.concatenate([labels[:, None], pixels], axis=1).tobytes()


def _write_cifar_bin(folder: Path) -> dict[str, bytes]:
    """A tiny binary-version CIFAR-10: two records per class in each of the six batch files."""
    folder.mkdir(parents=True)
    files = {f"data_batch_{i}.bin": _cifar_records(2, i) for i in range(1, 6)}
    files["test_batch.bin"] = _cifar_records(2, 99)
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    (folder / "batches.meta.txt").write_text("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n")
    return files


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    from fgff_core.data import loading as data_mod

    monkeypatch.setattr("fgff_core.data.loading.DEFAULT_DATA_DIR", tmp_path / "cache")
    data_mod._load_normalised.cache_clear()
    yield
    data_mod._load_normalised.cache_clear()


def _check_tiny_cifar(ds):
    assert ds.x_train.shape == (100, 3072) and ds.x_test.shape == (20, 3072)
    assert torch.bincount(ds.y_train).tolist() == [10] * 10 and torch.bincount(ds.y_test).tolist() == [2] * 10
    red = ds.denormalise(ds.x_train)[:, 0]  # channel 0 (red), back in [0, 1]
    assert torch.allclose(red.mean(dim=(1, 2)), ds.y_train.float() * 20 / 255, atol=1e-4)


@pytest.mark.parametrize("layout", ["folder", "archive", "archive_in_cifar10"])
def test_cifar10_binary_version_from_the_folder_or_the_archive(tmp_path, fresh_cache, layout):
    import tarfile

    src = tmp_path / "src" / "cifar-10-batches-bin"
    _write_cifar_bin(src)
    data_dir = tmp_path / "data"
    if layout == "folder":
        data_dir.mkdir()
        src.rename(data_dir / "cifar-10-batches-bin")
    else:
        target = data_dir / "cifar10" if layout == "archive_in_cifar10" else data_dir
        target.mkdir(parents=True)
        with tarfile.open(target / "cifar-10-binary.tar.gz", "w:gz") as tar:
            tar.add(src, arcname="cifar-10-batches-bin")
        data_dir.chmod(0o555)  # read-only: nothing is extracted into it
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    ds = load_dataset("cifar10", data_dir=data_dir, download=False)
    _check_tiny_cifar(ds)
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before
    assert not (tmp_path / "cache").exists()


def test_a_truncated_or_wrong_sized_cifar10_file_names_the_file_and_the_expected_size(tmp_path, fresh_cache):
    import tarfile

    from fgff_core.data.cifar import CifarFormatError

    folder = tmp_path / "d" / "cifar-10-batches-bin"
    files = _write_cifar_bin(folder)
    (folder / "data_batch_3.bin").write_bytes(files["data_batch_3.bin"][:-100])
    with pytest.raises(CifarFormatError, match=r"data_batch_3\.bin has 61,360 bytes; expected 61,460 \(20 records"):
        load_dataset("cifar10", data_dir=tmp_path / "d", download=False)
    (folder / "data_batch_3.bin").write_bytes(files["data_batch_3.bin"][:3073 * 19])  # a whole record short
    with pytest.raises(CifarFormatError, match=r"data_batch_3\.bin has 58,387 bytes; expected 61,460"):
        load_dataset("cifar10", data_dir=tmp_path / "d", download=False)
    (folder / "data_batch_3.bin").write_bytes(b"\x0c" + files["data_batch_3.bin"][1:])
    with pytest.raises(CifarFormatError, match=r"data_batch_3\.bin has a label 12; labels are 0 to 9"):
        load_dataset("cifar10", data_dir=tmp_path / "d", download=False)
    (folder / "test_batch.bin").unlink()
    with pytest.raises(CifarFormatError, match=r"test_batch\.bin is missing"):
        load_dataset("cifar10", data_dir=tmp_path / "d", download=False)
    archive_dir = tmp_path / "a"
    archive_dir.mkdir()
    (archive_dir / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(CifarFormatError, match="is not a readable tar archive"):
        load_dataset("cifar10", data_dir=archive_dir, download=False)
    with tarfile.open(archive_dir / "cifar-10-binary.tar.gz", "w:gz") as tar:
        tar.add(folder / "data_batch_1.bin", arcname="cifar-10-batches-bin/data_batch_1.bin")
    with pytest.raises(CifarFormatError, match="lacks cifar-10-batches-bin/data_batch_2.bin"):
        load_dataset("cifar10", data_dir=archive_dir, download=False)


def test_cifar10_normalisation_data_or_the_authors_constants(tmp_path, fresh_cache):
    from fgff_core.data import AUTHORS_CIFAR10_MEAN, AUTHORS_CIFAR10_STD

    _write_cifar_bin(tmp_path / "cifar-10-batches-bin")
    data = load_dataset("cifar10", data_dir=tmp_path, download=False, normalize="data")
    assert data.x_train.view(100, 3, -1).mean(dim=(0, 2)).abs().max() < 1e-4  # computed: zero mean
    fixed = load_dataset("cifar10", data_dir=tmp_path, download=False, normalize="authors")
    assert (fixed.mean, fixed.std) == (AUTHORS_CIFAR10_MEAN, AUTHORS_CIFAR10_STD)
    raw = fixed.denormalise(fixed.x_train).reshape(100, -1)
    expected = (raw.view(100, 3, -1) - torch.tensor(AUTHORS_CIFAR10_MEAN)[:, None]) / \
        torch.tensor(AUTHORS_CIFAR10_STD)[:, None]
    assert torch.allclose(fixed.x_train, expected.reshape(100, -1), atol=1e-5)
    assert torch.allclose(data.denormalise(data.x_train), fixed.denormalise(fixed.x_train), atol=1e-5)
    with pytest.raises(ValueError, match="normalize: 'authors' has fixed constants for cifar10 only, not digits"):
        load_dataset("digits", normalize="authors")


def test_train_subset_first_n_in_file_order():
    full = load_dataset("digits")
    first = load_dataset("digits", train_subset=300, train_subset_order="first")
    assert torch.equal(first.x_train, full.x_train[:300]) and torch.equal(first.y_train, full.y_train[:300])
    shuffled = load_dataset("digits", train_subset=300)
    assert not torch.equal(shuffled.y_train, first.y_train)
    from fgff_core.config import RunConfig
    from fgff_core.data import load_for_config

    cfg = RunConfig(train_subset=300, train_subset_order="first")
    assert torch.equal(load_for_config(cfg).x_train, full.x_train[:300])


def test_reproduce_trains_on_the_data_its_config_names(tmp_path, fresh_cache):
    """reproduce's data cache honours train_subset_order and normalize, as load_for_config does (it once
    ignored both: Table I's first full runs trained on a random 50,000, not the first)."""
    from fgff_core.config import RunConfig
    from fgff_core.reproduce import DataCache, validation_split

    full = load_dataset("digits")
    cache = DataCache()
    first = RunConfig(dataset="digits", train_subset=300, train_subset_order="first")
    assert torch.equal(cache.get(first).x_train, full.x_train[:300])
    assert torch.equal(cache.get(first.replace(train_subset_order="shuffled")).x_train,
                       load_dataset("digits", train_subset=300).x_train)
    split = validation_split(first, 200)  # file order: the next 200 samples validate
    assert torch.equal(split.x_train, full.x_train[:300]) and torch.equal(split.x_test, full.x_train[300:500])
    _write_cifar_bin(tmp_path / "cifar-10-batches-bin")
    for normalize in ("data", "authors"):
        cfg = RunConfig(dataset="cifar10", data_dir=str(tmp_path), download=False, normalize=normalize)
        expected = load_dataset("cifar10", data_dir=tmp_path, download=False, normalize=normalize)
        assert torch.equal(cache.get(cfg).x_train, expected.x_train), normalize
        rows = {tuple(r) for r in expected.x_train.tolist()}  # the validation samples, normalised alike
        assert all(tuple(r) in rows for r in validation_split(cfg, 20).x_test.tolist()), normalize


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "cifar10" / "cifar-10-binary.tar.gz").is_file(), reason="needs ../shared/datasets")
def test_real_cifar10_binary_archive_from_the_shared_folder():
    ds = load_dataset("cifar10", data_dir=os.fspath(SHARED))
    assert ds.x_train.shape == (50000, 3072) and ds.x_test.shape == (10000, 3072)
    spec = DATASETS["cifar10"]
    assert (len(ds.y_train), len(ds.y_test), ds.image_shape) == (spec.n_train, spec.n_test, spec.image_shape)
    assert torch.bincount(ds.y_train).tolist() == [5000] * 10 and torch.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=1e-4)
    assert ds.std == pytest.approx((0.2470, 0.2435, 0.2616), abs=1e-4)
