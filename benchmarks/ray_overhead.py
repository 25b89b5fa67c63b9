"""What the Ray executor costs against the local one, on one machine, at the same concurrency.

    python -m benchmarks.ray_overhead                 # 20 small digits runs, 2 at a time, prints a table
    python -m benchmarks.ray_overhead --write         # and puts it into benchmarks/RESULTS.md

Measured per executor: start-up (``JobManager(...)`` until it accepts runs: the warm worker, or
``ray.init`` of a local instance), submit to first stored epoch (one run alone, three times), and
the wall time of N small runs submitted at once. Not a test: the figures depend on the machine and
its load, which the table records.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from fgff_core.jobs import JobManager

SECTION = "## Ray executor overhead"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _first_epoch_seconds(jm: JobManager, config: dict) -> float:
    t0 = time.monotonic()
    run_id = jm.submit(config)
    while jm.store.run(run_id)["epochs_done"] < 1:
        time.sleep(0.005)
    seconds = time.monotonic() - t0
    jm.wait(run_id)
    return seconds


def measure(executor: str, runs: int, concurrency: int, config: dict) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"fgff-bench-{executor}-") as tmp:
        t0 = time.monotonic()
        jm = JobManager(tmp, executor=executor, max_concurrent=concurrency)
        startup = time.monotonic() - t0
        try:
            first = [_first_epoch_seconds(jm, config) for _ in range(3)]
            t0 = time.monotonic()
            ids = [jm.submit(config) for _ in range(runs)]
            statuses = jm.wait_all(ids)
            wall = time.monotonic() - t0
            assert set(statuses.values()) == {"done"}, statuses
            train = sum(jm.store.run(r)["train_seconds"] for r in ids)
        finally:
            jm.shutdown()
    return {"startup_s": startup, "first_epoch_s": statistics.median(first), "first_epoch_first_s": first[0],
            "wall_s": wall, "train_s_sum": train}


def table(results: dict[str, dict[str, float]], runs: int, concurrency: int, config: dict,
          load: tuple[float, float]) -> str:
    local, ray = results["local"], results["ray"]
    lines = [
        SECTION, "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} before / {load[1]:.1f} after (shared machine); {runs} runs of "
        f"`{config}`, {concurrency} at a time, Ray {__import__('ray').__version__} local instance "
        f"(1 CPU per run), `python -m benchmarks.ray_overhead`.", "",
        "| | local processes | Ray | Ray - local |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows = [("start-up (manager ready)", "startup_s"),
            ("submit to first stored epoch, first run", "first_epoch_first_s"),
            ("submit to first stored epoch, median of 3", "first_epoch_s"),
            (f"wall time, {runs} runs", "wall_s"),
            ("sum of the runs' training time", "train_s_sum")]
    for label, key in rows:
        lines.append(f"| {label} | {local[key]:.2f} s | {ray[key]:.2f} s | {ray[key] - local[key]:+.2f} s |")
    per_run = (ray["wall_s"] - local["wall_s"]) / runs * concurrency
    lines += ["", f"Per run, at this concurrency: {per_run:+.2f} s of wall time with Ray."]
    return "\n".join(lines) + "\n"


def write(text: str) -> None:
    """Replace this section of RESULTS.md (it is the file's last section), or append it."""
    current = RESULTS.read_text() if RESULTS.exists() else ""
    head, found, tail = current.partition(SECTION)
    notes = ""
    if found:
        _, sep, rest = tail.partition("\n### ")  # keep the hand-written notes that follow the table
        notes = sep + rest if sep else ""
    RESULTS.write_text(head.rstrip("\n") + "\n\n" + text + (notes if notes else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="put the table into benchmarks/RESULTS.md")
    args = parser.parse_args()
    config = {"dataset": "digits", "layers": [32], "epochs": args.epochs, "eval_every": 0}
    before = os.getloadavg()[0]
    results = {name: measure(name, args.runs, args.concurrency, config) for name in ("local", "ray")}
    text = table(results, args.runs, args.concurrency, config, (before, os.getloadavg()[0]))
    print(text)
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
