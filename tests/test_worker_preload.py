"""A worker keeps the data it loaded: the standby process loads the dataset of the job handed out before it, so
the next job of a class (the MNIST demo, again and again) does not read and normalise it anew (issue 39 item 5:
the Train page said 'loading the data' for 30 s)."""

from __future__ import annotations

import multiprocessing

import pytest
from test_data import _write_tiny_idx

from fgff_core.config import RunConfig
from fgff_core.data import loading
from fgff_core.jobs.executors import LocalProcessExecutor, preload_arguments
from fgff_core.jobs.worker import standby_main


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr("fgff_core.data.loading.DEFAULT_DATA_DIR", tmp_path / "cache")
    _write_tiny_idx(tmp_path / "d")
    loading._load_normalised.cache_clear()
    yield RunConfig(dataset="mnist", layers=(8,), epochs=1, eval_every=0, data_dir=str(tmp_path / "d"),
                    download=False, train_subset=20)
    loading._load_normalised.cache_clear()


def test_the_dataset_of_a_job_is_what_the_next_standby_loads():
    mnist = RunConfig(dataset="mnist", data_dir="/data", download=False, train_subset=500)
    assert preload_arguments(mnist) == {"name": "mnist", "data_dir": "/data", "download": False, "normalize": "data"}
    assert preload_arguments(RunConfig()) is None  # digits: every standby loads it anyway


def test_a_standby_that_preloaded_a_dataset_hands_its_job_the_same_arrays(tiny_mnist):
    receive, send = multiprocessing.Pipe(duplex=False)
    send.send(None)  # no job: the standby returns once it has loaded everything
    standby_main(receive, None, preload_arguments(tiny_mnist))
    misses = loading._load_normalised.cache_info().misses
    data = loading.load_for_config(tiny_mnist)  # the job's own load: a cache hit, with its train subset cut
    assert loading._load_normalised.cache_info().misses == misses
    assert data.x_train.shape == (20, 784)
    full = loading.load_dataset("mnist", tiny_mnist.data_dir, download=False)
    assert full is loading.load_dataset("mnist", tiny_mnist.data_dir, download=False)  # one copy per process


def test_a_standby_with_missing_files_still_takes_its_job(tmp_path):
    receive, send = multiprocessing.Pipe(duplex=False)
    send.send(None)
    standby_main(receive, None, {"name": "mnist", "data_dir": str(tmp_path / "none"), "download": False,
                                 "normalize": "data"})  # the job that wants them says why they are missing


def test_the_executor_gives_the_next_standby_the_dataset_of_the_job_it_started(tmp_path, tiny_mnist):
    executor = LocalProcessExecutor(tmp_path / "runs", warm_worker=False)
    executor.warm_worker = True  # no real standby processes: their start is recorded
    asked: list = []
    executor._start_standby = lambda: asked.append(executor.preload)
    executor._take_standby = lambda: None

    class _Process:
        pid = 4242

        def __init__(self, **_):
            pass

        def start(self):
            pass

    executor._ctx = type("Ctx", (), {"Process": _Process})()
    assert executor.start("r1", tiny_mnist, None) == 4242
    assert asked == [preload_arguments(tiny_mnist)]
