"""Live views' shared reads (fgff_core.store.live): store queries per tick of twenty browser sessions, counted.

Before (issue 39 item 3), a Train page's tick read ``run``, ``metrics`` and ``runs`` (twice while queued) straight
from the store: 3-4 queries per session per tick, 60-80 for twenty students in the same second. The counts here
are connections the store opened, so every SQL read is counted.
"""

from __future__ import annotations

import contextlib
import threading

import pytest

from fgff_core.config import RunConfig
from fgff_core.engine.events import EpochMetrics
from fgff_core.jobs import launch
from fgff_core.jobs.polling import run_statuses
from fgff_core.store import LiveReads, RunStore, UnknownRunError, ticking

CONFIG = RunConfig(dataset="digits", layers=(8,), epochs=3)
TICK = 0.9  # app_pages._shared.TICK_MAX_AGE_S


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def counted(store: RunStore) -> list[int]:
    """Count the connections ``store`` opens from now on (one per store query)."""
    calls = [0]
    connection = store.connection

    @contextlib.contextmanager
    def counting():
        calls[0] += 1
        with connection() as con:
            yield con

    store.connection = counting  # type: ignore[method-assign]
    return calls


def epoch(step: int) -> EpochMetrics:
    return EpochMetrics(layer=0, epoch=step, step=step, loss=0.5, g_pos=2.5, g_neg=1.5, g_pos_no_significance=2.5,
                        g_neg_no_significance=1.5, seconds=0.1)


def running_runs(store: RunStore, n: int) -> list[str]:
    ids = []
    for seed in range(n):
        rid = store.create_run(CONFIG.replace(seed=seed))
        assert store.queue.claim(rid)
        store.writer(rid).epoch(epoch(1))
        ids.append(rid)
    return ids


def train_tick(reads, run_id: str) -> None:
    """What the Train page's live view reads per tick (app_pages/train.py live_run and its statuses)."""
    run = reads.run(run_id)
    reads.metrics(run_id)
    if run["status"] == "queued":
        launch.queue_position(reads.runs(), run_id)
    run_statuses(reads.runs(), [run_id])


def test_twenty_sessions_ticking_at_once_cost_one_table_query_and_one_per_run(store):
    ids = running_runs(store, 20)
    calls = counted(store)
    for rid in ids:  # before: straight from the store
        train_tick(store, rid)
    assert calls[0] == 60  # 3 per session's tick
    calls[0] = 0
    live = LiveReads(store, clock=Clock())
    with ticking(TICK):
        for rid in ids:  # twenty students, each watching their own run
            train_tick(live, rid)
        assert calls[0] == 1 + 20  # the table once, each run's metrics once
        calls[0] = 0
        for _ in range(20):  # twenty students watching one shared run
            train_tick(live, ids[0])
        assert calls[0] == 0  # all answered from the same second's reads


def test_a_tick_reads_again_once_its_reads_are_older_than_max_age(store):
    (rid,) = running_runs(store, 1)
    clock = Clock()
    live = LiveReads(store, clock=clock)
    calls = counted(store)
    with ticking(TICK):
        train_tick(live, rid)
        clock.now += TICK / 2
        train_tick(live, rid)
        assert calls[0] == 2  # table and metrics, once
        store.writer(rid).epoch(epoch(2))
        clock.now += TICK
        assert len(live.metrics(rid)) == 2 and live.run(rid)["status"] == "running"
        assert calls[0] == 4 + 1  # the epoch's write, then the table and the metrics again


def test_outside_a_tick_every_read_is_fresh_and_refreshes_what_ticks_share(store):
    (rid,) = running_runs(store, 1)
    live = LiveReads(store, clock=Clock())
    calls = counted(store)
    assert live.run(rid)["status"] == "running" and len(live.runs()) == 1
    live.runs()
    assert calls[0] == 3  # a page's own draw, or a click's rerun: never older than the click
    store.finish_run(rid, "done")
    calls[0] = 0
    assert live.runs()["status"].tolist() == ["done"]
    with ticking(TICK):
        assert live.run(rid)["status"] == "done"  # the fresh read is what the next tick shares
    assert calls[0] == 1


def test_a_run_queued_after_the_shared_table_was_read_is_still_found(store):
    live = LiveReads(store, clock=Clock())
    with ticking(TICK):
        assert live.runs().empty
        rid = store.create_run(CONFIG)
        assert live.run(rid)["status"] == "queued" and live.run(rid)["owner"] is None
        with pytest.raises(UnknownRunError, match="no run '0123456789ab'"):
            live.run("0123456789ab")


def test_sessions_asking_at_once_wait_for_one_query(store):
    ids = running_runs(store, 2)
    live = LiveReads(store, clock=Clock())
    calls = counted(store)
    start = threading.Barrier(20)

    def session() -> None:
        start.wait()
        with ticking(TICK):
            train_tick(live, ids[0])

    threads = [threading.Thread(target=session) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls[0] == 2


@pytest.mark.parametrize("bad", [-1, float("nan"), "1", True])
def test_a_bad_max_age_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="max_age"), ticking(bad):
        pass
