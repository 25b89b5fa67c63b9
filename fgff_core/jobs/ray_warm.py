"""Warm Ray workers: one worker process per node made ready to train before the first run needs it.

A cold Ray worker has to start and import torch and the engine before its run trains (10-35 s measured on a
loaded 2-CPU machine), so without this the first run of each app process waited that long. ``WarmWorkers``
(the host side, used by ``ray_host.RayExecutor``) starts one ``warm_worker`` task on each live node that can
take a run, asking for no CPU, so it never delays a run or counts against the cluster's runs. The task's
process then stays in the node's pool of idle workers, and Ray hands it the next task of this job: the run.
A run's worker goes back to the pool afterwards, ready for the next run, so only the start needs this.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any, NamedTuple

from ..format import duration, node_id, shorten
from .ray_cluster import cluster_info
from .worker import warm_up_engine

WARM_WAIT_S = 60.0  # the first runs wait for the warm workers at most this long (then start workers of their own)

log = logging.getLogger("fgff_core.jobs")


class WarmReport(NamedTuple):
    """What a warm-up task returns: the node and worker process it made ready, and how long that took."""

    node_id: str
    pid: int
    seconds: float


def warm_worker() -> WarmReport:
    """The body of the warm-up task: make this Ray worker process ready to train (``worker.warm_up_engine``:
    torch, the engine, the digits, one tiny epoch) and say where and how long it took."""
    import ray
    import torch

    t0 = time.monotonic()
    torch.set_num_threads(1)  # it asked for no CPU; a run sets its own threads
    warm_up_engine()
    return WarmReport(ray.get_runtime_context().get_node_id(), os.getpid(), time.monotonic() - t0)


class WarmWorkers:
    """The warm-up tasks of one executor: started with it (unless ``enabled`` is false), collected as they end."""

    def __init__(self, cpus_per_run: int, enabled: bool = True) -> None:
        self.reports: list[WarmReport] = []  # the workers made ready, in the order they became so
        self.since = time.monotonic()
        self._pending: list[Any] = self._start(cpus_per_run) if enabled else []

    @staticmethod
    def _start(cpus_per_run: int) -> list[Any]:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        info = cluster_info()
        nodes = [n.node_id for n in info.nodes if n.alive and n.cpus >= cpus_per_run] if info else []
        task = ray.remote(warm_worker)
        return [task.options(num_cpus=0, max_retries=0, name="fgff-warm-worker",
                             scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False)).remote()
                for node in nodes]

    def holding(self) -> bool:
        """True while a new run should wait rather than start a cold worker: a warm-up is still going and the
        warm-ups have not taken ``WARM_WAIT_S`` yet. All of them, not the first: Ray gives a run's queued
        successors to a worker it has already leased, so runs handed over while one node is ready and another
        still cold all trained one after another on the ready node (seen on a two-node cluster)."""
        return bool(self._pending) and time.monotonic() - self.since < WARM_WAIT_S

    def collect(self, wait: float = 0) -> None:
        """Note the warm-up tasks that ended (their worker is ready; one that failed only means a cold start)."""
        import ray
        from ray.exceptions import TaskCancelledError

        if not self._pending:
            return
        ready, self._pending = ray.wait(self._pending, num_returns=len(self._pending), timeout=wait)
        for ref in ready:
            try:
                report = WarmReport(*ray.get(ref))
            except TaskCancelledError:  # by ``close``
                continue
            except Exception as exc:  # noqa: BLE001 - the next run starts a worker of its own, as without it
                text = str(exc).strip().splitlines()
                log.warning("Ray executor: a warm-up task failed: %s: %s", type(exc).__name__,
                            shorten(text[0]) if text else "")
                continue
            self.reports.append(report)
            log.info("Ray executor: a worker on node %s is ready (%s)", node_id(report.node_id),
                     duration(report.seconds))

    def close(self) -> None:
        """Cancel the warm-ups still going (the executor closes) and fetch them, so that Ray does not report
        them as unhandled errors."""
        import ray

        for ref in self._pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        self.collect(wait=5)
