"""The Ray relay's wire format (``fgff_core.jobs.ray_wire``): epochs packed as columns store exactly the rows that
``RunWriter.epochs`` stores from the events (issue 36 item 3: a compact payload instead of one dataclass per epoch)."""

from __future__ import annotations

import pickle

import numpy as np
from test_store_batch import _events, _stored

from fgff_core.config.schema import RunConfig
from fgff_core.engine.events import EvalMetrics
from fgff_core.jobs.ray_wire import EPOCHS, EpochColumns, event_count, pack
from fgff_core.store import RunStore


def test_packed_epochs_store_exactly_the_rows_of_the_events(tmp_path):
    store = RunStore(tmp_path)
    config = RunConfig(dataset="digits", layers=(4, 3), epochs=7, eval_every=0)
    events = _events(np.random.default_rng(0))  # None, NaN, inf, no snapshot, a repeated (layer, epoch)
    direct, packed = store.create_run(config), store.create_run(config)
    writer = store.writer(direct)
    writer.epochs(events)
    writer.close()
    writer = store.writer(packed)
    for start, stop in ((0, 1), (1, 6), (6, len(events))):
        columns = pickle.loads(pickle.dumps(EpochColumns.of(events[start:stop])))  # as Ray moves it
        writer.epoch_rows(columns.rows(packed))
    writer.close()
    assert _stored(store, direct) == _stored(store, packed)


def test_pack_keeps_the_order_and_turns_each_run_of_epochs_into_one_column_batch():
    epochs = _events(np.random.default_rng(1))
    evaluation = EvalMetrics(layer=0, epoch=2, step=2, train_acc=0.5, test_acc=0.4, train_acc_no_significance=None,
                             test_acc_no_significance=None)
    batch = [("started", ("cpu", 10, 14)), *[("epoch", e) for e in epochs[:2]], ("eval", evaluation),
             *[("epoch", e) for e in epochs[2:]]]
    wire = pack(batch)
    assert [kind for kind, _ in wire] == ["started", EPOCHS, "eval", EPOCHS]
    assert [payload.count for kind, payload in wire if kind == EPOCHS] == [2, len(epochs) - 2]
    assert wire[0] == batch[0] and wire[2] == batch[3]
    assert event_count(wire) == len(batch)
    assert pack([]) == []


def test_several_runs_epochs_in_one_transaction_store_what_each_run_stores_alone(tmp_path):
    """The drain writes every run's drained epochs with one commit (``RunWriter.epoch_rows_of_runs``)."""
    from fgff_core.store.writer import RunWriter

    store = RunStore(tmp_path)
    config = RunConfig(dataset="digits", layers=(4, 3), epochs=7, eval_every=0)
    events = [_events(np.random.default_rng(seed)) for seed in (2, 3)]
    alone = [store.create_run(config) for _ in events]
    together = [store.create_run(config) for _ in events]
    for run_id, run_events in zip(alone, events, strict=True):
        writer = store.writer(run_id)
        writer.epochs(run_events)
        writer.close()
    writers = [store.writer(run_id) for run_id in together]
    for start, stop in ((0, 5), (5, len(events[0]))):
        RunWriter.epoch_rows_of_runs([(w, EpochColumns.of(e[start:stop]).rows(w.run_id))
                                      for w, e in zip(writers, events, strict=True)] + [(writers[0], [])])
    for writer in writers:
        writer.close()
    assert [_stored(store, r) for r in alone] == [_stored(store, r) for r in together]
