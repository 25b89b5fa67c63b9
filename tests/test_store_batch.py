"""``RunWriter.epochs`` (one transaction per batch, as the Ray drain writes) stores exactly what ``epoch`` does."""

from __future__ import annotations

import numpy as np

from fgff_core.config.schema import RunConfig
from fgff_core.engine.events import EpochMetrics
from fgff_core.store import RunStore


def _events(rng: np.random.Generator) -> list[EpochMetrics]:
    events, step = [], 0
    for layer, units in enumerate((4, 3)):
        for epoch in range(1, 8):
            step += 1
            none = epoch == 3  # a metric the engine did not report
            events.append(EpochMetrics(layer=layer, epoch=epoch, step=step, loss=float(rng.random()),
                                       g_pos=None if none else float(rng.random()), g_neg=float("nan"),
                                       g_pos_no_significance=2.0, g_neg_no_significance=float("inf"),
                                       seconds=0.001 * step,
                                       significance=None if none else rng.random(units).astype(np.float32)))
    events.append(events[4])  # a repeated (layer, epoch): the same upsert either way
    return events


def _stored(store: RunStore, run_id: str) -> tuple[list[tuple], tuple]:
    with store.connection() as con:
        rows = con.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY layer, epoch", (run_id,)).fetchall()
        run = con.execute("SELECT epochs_done, status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return [row[1:] for row in rows], tuple(run)  # without the run id


def test_a_batch_write_stores_exactly_the_rows_of_one_by_one_writes(tmp_path):
    store = RunStore(tmp_path)
    config = RunConfig(dataset="digits", layers=(4, 3), epochs=7, eval_every=0)
    events = _events(np.random.default_rng(0))
    one, batched = store.create_run(config), store.create_run(config)
    writer = store.writer(one)
    for event in events:
        writer.epoch(event)
    writer.close()
    writer = store.writer(batched)
    for start, stop in ((0, 1), (1, 6), (6, 6), (6, len(events))):  # batches of 1, 5, none and the rest
        writer.epochs(events[start:stop])
    writer.close()
    rows, run = _stored(store, one)
    assert len(rows) == len(events) - 1 and run[0] == len(events)
    assert (rows, run) == _stored(store, batched)
