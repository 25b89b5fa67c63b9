"""The Ray metrics relay's bound, with a real local Ray: a channel that nobody drains fills up to its capacity, then
refuses batches; the sender keeps them, its run's events gather in its bounded buffer, and training waits in
``send``; once drained, every event arrives once and in order (issue 36 item 3: the backlog was unbounded)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from test_ray import local_ray  # noqa: F401 - the module's Ray instance
from waiting import wait_for

from fgff_core.engine.events import EpochMetrics
from fgff_core.jobs.ray_wire import EPOCHS

ray = pytest.importorskip("ray")

CAPACITY, BUFFERED, EVENTS = 50, 20, 400


def _epoch(step: int) -> EpochMetrics:
    return EpochMetrics(layer=0, epoch=step, step=step, loss=0.5, g_pos=2.0, g_neg=1.0, g_pos_no_significance=2.0,
                        g_neg_no_significance=1.0, seconds=0.01, significance=np.full(8, step, np.float32))


@pytest.mark.timeout(120)
def test_a_full_channel_holds_training_back_within_its_bounds_and_loses_nothing(local_ray):  # noqa: F811
    from fgff_core.jobs.ray_worker import EventChannel, _ChannelSink

    channel = ray.remote(EventChannel).options(num_cpus=0).remote(CAPACITY)
    sink = _ChannelSink(channel, "run1")
    sink.MAX_BUFFERED = BUFFERED
    sent = [0]

    def train() -> None:
        for step in range(1, EVENTS + 1):
            sink.epoch(_epoch(step))
            sent[0] = step
        sink.close()

    trainer = threading.Thread(target=train, daemon=True)
    trainer.start()
    wait_for(lambda: ray.get(channel.held.remote()) >= CAPACITY and len(sink._buffer) >= BUFFERED, 60,
             "the channel, then the run's buffer, to fill")
    held = ray.get(channel.held.remote())
    assert CAPACITY <= held <= CAPACITY + BUFFERED  # full, and over by at most the batch that crossed it
    assert trainer.is_alive() and sent[0] <= held + 2 * BUFFERED + 1  # waiting in send: the rest is in its bounds
    ray.get(channel.stop.remote("run1", 1))
    wait_for(sink.should_stop, 10, "the stop flag to reach the run while the channel is full")

    steps: list[int] = []
    while trainer.is_alive() or len(steps) < EVENTS:  # the app's drain, at last
        for run_id, wire in ray.get(channel.take.remote()):
            assert run_id == "run1"
            steps += [int(k[2]) for kind, cols in wire if kind == EPOCHS for k in cols.keys]
        assert ray.get(channel.held.remote()) <= CAPACITY + BUFFERED
    trainer.join(timeout=30)
    assert steps == list(range(1, EVENTS + 1))  # every event once, in order
