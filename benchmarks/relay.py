"""The Ray metrics relay under many concurrent runs: events/s end to end, latency, the store's write rate.

    python -m benchmarks.relay                      # 100 and 1000 simulated runs, per-epoch and batched writes
    python -m benchmarks.relay --runs 100 --seconds 5 --write   # and put the table into RESULTS.md

No training. A real local Ray (``ray.init(num_cpus=2, include_dashboard=False)``), a real
``RayExecutor`` (its channel actor and drain thread) and a real SQLite ``RunStore`` in a temporary
folder. Each simulated run is a thread with its own ``_ChannelSink`` (the worker's sender: a buffer of
at most 1,000 unsent events, one batch in flight) that emits epoch events at ``--rate`` per second
(default 370, a digits 2x100 run alone) for ``--seconds``; the N threads live in ``--tasks`` Ray tasks
(default 2: N tasks would not fit on 2 CPUs, and a run's sender is a thread in its task either way).
Each event carries its creation time (``time.time()``, in the ``seconds`` field) and a 100-float
significance snapshot, as a digits run's epoch does. The store's runs are registered with the
executor as runs whose events it drains (no Ray task of their own), so events travel
sender (consecutive epochs packed as columns, ``ray_wire``) -> channel actor (at most
``EventChannel.CAPACITY`` events held; a full one refuses batches and the senders wait) -> drain ->
``RunWriter`` exactly as the app's do.

Measured per mode: *events/s* (rows stored / time from the first event to the last row stored),
*emitted* (events the runs emitted / events they would have emitted at ``--rate``: below 100 % the
simulation itself, 1,000 threads on 2 loaded cores, could not keep pace), *runs waiting on the relay*
(the share of the runs' time spent blocked in ``send`` for buffer room: the only way the relay slows
training, so 1 minus it is the speed a run keeps),
*latency* (p50/p99 from an event's creation to the commit of its row; every event is timed) and the
store's *rows/s* (rows / seconds the drain spent writing). Modes: ``per-epoch`` is the drain as it was
before batching (one transaction per epoch), ``batched`` the drain as it is (one transaction per drain for
every run's epochs, ``RunWriter.epoch_rows_of_runs``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

SECTION = "## Ray metrics relay"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TICK_S = 0.01  # a simulated run emits the events that fell due every TICK_S
DRAIN_CAP_S = 60.0  # how long the drain may take to catch up once the senders are done


class Result(NamedTuple):
    mode: str
    runs: int
    offered: float  # events/s the runs would emit unhindered
    events_per_s: float
    speed_kept: float  # events emitted / offered (below 1: the simulation itself could not keep pace)
    waited: float  # share of the runs' time spent waiting in ``send`` for buffer room (the relay's hold on training)
    p50_ms: float
    p99_ms: float
    rows_per_s: float
    rows: int
    sent: int
    load: float
    backlog: int  # events sent but not stored DRAIN_CAP_S after the senders ended


def simulate_runs(channel: Any, run_ids: list[str], rate: float, seconds: float, units: int) -> tuple[int, float]:
    """The body of one Ray task: one thread per run, each a paced sender; returns (events sent, seconds waited)."""
    from fgff_core.engine.events import EpochMetrics
    from fgff_core.jobs.ray_worker import _ChannelSink

    sent, waited, lock = [0], [0.0], threading.Lock()
    start = time.monotonic() + 0.5  # every thread started before the first event
    sig = np.linspace(0.5, 1.5, units, dtype=np.float32)

    def run(run_id: str) -> None:
        sink, n, blocked = _ChannelSink(channel, run_id), 0, 0.0
        while (now := time.monotonic()) < start:
            time.sleep(start - now)
        end = start + seconds
        while (now := time.monotonic()) < end:
            for _ in range(int((now - start) * rate) + 1 - n):
                t = time.perf_counter()
                sink.epoch(EpochMetrics(layer=0, epoch=n + 1, step=n + 1, loss=0.5, g_pos=2.0, g_neg=1.0,
                                        g_pos_no_significance=2.0, g_neg_no_significance=1.0, seconds=time.time(),
                                        significance=sig))
                blocked += time.perf_counter() - t
                n += 1
            time.sleep(TICK_S)
        sink.close()
        with lock:
            sent[0] += n
            waited[0] += blocked

    threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent[0], waited[0]


def _per_epoch(executor: Any):
    """The drain's writes as they were before batching: one transaction per epoch."""
    from fgff_core.jobs.ray_wire import EPOCHS

    def apply_run(run_id: str, run: Any, events: list[tuple[str, Any]]) -> list:
        for kind, payload in events:
            if kind == EPOCHS:
                for row in payload.rows(run_id):
                    run.writer.epoch_rows([row])
        return []  # nothing left for the drain's one transaction
    return apply_run


def _created(batches: list[tuple[str, list[tuple[str, Any]]]]) -> np.ndarray:
    """When each drained epoch was created (its ``seconds`` field, set to ``time.time()`` by the senders)."""
    from fgff_core.jobs.ray_wire import EPOCHS
    from fgff_core.store.schema import EPOCH_COLUMNS

    column = EPOCH_COLUMNS.index("seconds")
    parts = [cols.values[:, column] for _, wire in batches for kind, cols in wire if kind == EPOCHS]
    return np.concatenate(parts) if parts else np.empty(0)


def measure(mode: str, n_runs: int, rate: float, seconds: float, tasks: int, units: int) -> Result:
    import ray

    from fgff_core.jobs.ray_host import RayExecutor, _RayRun

    with tempfile.TemporaryDirectory(prefix="fgff-relay-") as tmp:
        executor = RayExecutor(tmp)
        store = executor.store
        config = {"dataset": "digits", "layers": [units], "epochs": 10**6, "eval_every": 0}
        run_ids = [store.create_run(config) for _ in range(n_runs)]
        latencies: list[np.ndarray] = []
        write = {"seconds": 0.0, "rows": 0, "last": 0.0, "first": float("inf")}
        apply_all = executor._apply_all
        if mode == "per-epoch":
            executor._apply_run = _per_epoch(executor)

        def timed_apply_all(batches: list[tuple[str, list[tuple[str, Any]]]]) -> None:
            t = time.perf_counter()
            apply_all(batches)
            write["seconds"] += time.perf_counter() - t
            created = _created(batches)
            if len(created):
                now = time.time()
                latencies.append(now - created)
                write["rows"] += len(created)
                write["last"] = now
                write["first"] = min(write["first"], float(created.min()))

        executor._apply_all = timed_apply_all
        with executor._lock:
            for run_id in run_ids:
                executor._runs[run_id] = _RayRun(writer=store.writer(run_id), started=True)
        load = os.getloadavg()[0]
        task = ray.remote(simulate_runs).options(num_cpus=0)
        refs = [task.remote(executor._channel, run_ids[i::tasks], rate, seconds, units) for i in range(tasks)]
        outcomes = ray.get(refs)
        sent = sum(s for s, _ in outcomes)
        deadline = time.monotonic() + DRAIN_CAP_S
        while write["rows"] < sent and time.monotonic() < deadline:  # the senders' last batches are in the channel
            time.sleep(0.05)
        executor._stop.set()  # no final drain: what is left after DRAIN_CAP_S is the backlog
        executor._thread.join()
        ray.kill(executor._channel)
        with store.connection() as con:
            rows = con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
        for run in executor._runs.values():
            run.writer.close()
    lat = np.concatenate(latencies) * 1000
    waited = sum(w for _, w in outcomes) / (n_runs * seconds)
    return Result(mode, n_runs, n_runs * rate, rows / (write["last"] - write["first"]),
                  sent / (n_runs * rate * seconds), waited, float(np.percentile(lat, 50)),
                  float(np.percentile(lat, 99)), write["rows"] / write["seconds"], rows, sent, load, sent - rows)


def table(results: list[Result], args: argparse.Namespace) -> str:
    import ray

    from fgff_core.reproduce.provenance import cpu_model

    lines = [
        SECTION, "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {cpu_model()}, "
        f"shared with other sessions' work (load average at each start below); Ray {ray.__version__} local "
        f"instance, `ray.init(num_cpus=2)`; each simulated run emits {args.rate:g} epoch events/s (a digits "
        f"2x100 run alone) with a {args.units}-float significance snapshot for {args.seconds:g} s, the runs "
        f"as threads in {args.tasks} Ray tasks; `python -m benchmarks.relay`.", "",
        "| drain writes | runs | load | offered events/s | emitted | runs waiting on the relay | "
        "events/s end to end | latency p50 | "
        "latency p99 | store rows/s | not stored after 60 s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(f"| {r.mode} | {r.runs} | {r.load:.1f} | {r.offered:,.0f} | {r.speed_kept:.0%} | "
                     f"{r.waited:.1%} | {r.events_per_s:,.0f} | {r.p50_ms:,.0f} ms | {r.p99_ms:,.0f} ms | "
                     f"{r.rows_per_s:,.0f} | {r.backlog:,} |")
    return "\n".join(lines) + "\n"



def write(text: str) -> None:
    """Replace this section of RESULTS.md up to its hand-written notes (``### ...``), or append it."""
    current = RESULTS.read_text()
    head, found, tail = current.partition(SECTION)
    if not found:
        RESULTS.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    _, sep, rest = tail.partition("\n### ")
    RESULTS.write_text(head + text + (sep + rest if sep else ""))


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--modes", nargs="+", default=["per-epoch", "batched"], choices=["per-epoch", "batched"])
    parser.add_argument("--rate", type=float, default=370.0, help="epoch events per second per run")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--units", type=int, default=100, help="floats in each significance snapshot")
    parser.add_argument("--write", action="store_true", help="put the table into benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = []
        for n in args.runs:
            for mode in args.modes:
                results.append(measure(mode, n, args.rate, args.seconds, args.tasks, args.units))
                print(results[-1], flush=True)
    finally:
        ray.shutdown()
    text = table(results, args)
    print(text)
    if args.write:
        write(text)
    return results


if __name__ == "__main__":
    main()
