"""The first run of a process on Ray: submit to first stored epoch, with and without the warm worker.

    python -m benchmarks.ray_first_run               # warm worker off/on, Start pressed at once and after 20 s
    python -m benchmarks.ray_first_run --write       # and put the table into benchmarks/RESULTS.md

Each case is a fresh Python process (a fresh local Ray instance, ``num_cpus=2``, no worker of an earlier
case left): ``JobManager(executor="ray")`` as the app makes it on its first page visit, then, ``--delay``
seconds later (0: Start pressed at once), one small digits run submitted; measured: submit to its first
stored epoch, and the same for a second run submitted after the first ended (a reused worker). With the warm
worker (``$FGFF_WARM_WORKER``, on by default) the executor starts a warm-up task on each node when it
starts, and a run submitted before that worker is ready waits for it (``ray_host.WARM_WAIT_S``). Not a test:
the figures depend on the machine and its load, which the table records for each case.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from fgff_core.reproduce.provenance import cpu_model

SECTION = "## Ray: the first run of a process"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ROOT = Path(__file__).resolve().parents[1]
RUN = {"dataset": "digits", "layers": [8], "epochs": 3, "eval_every": 0}

_CASE = """
import json, sys, time
from fgff_core.jobs import JobManager

def first_epoch(jm, seed):
    t0 = time.monotonic()
    run_id = jm.submit(dict(json.loads(sys.argv[3]), seed=seed))
    while jm.store.run(run_id)["epochs_done"] < 1:
        time.sleep(0.01)
    seconds = time.monotonic() - t0
    assert jm.wait(run_id, 120) == "done", jm.store.run(run_id)["error"]
    return seconds

t0 = time.monotonic()
jm = JobManager(sys.argv[1], executor="ray", max_concurrent=2)
ready = time.monotonic() - t0
time.sleep(float(sys.argv[2]))
first, second = first_epoch(jm, 0), first_epoch(jm, 1)
warm = [round(w.seconds, 2) for w in jm.executor.warm]
jm.shutdown()
print(json.dumps({"ready_s": ready, "first_s": first, "second_s": second, "warm_s": warm}))
"""


def measure(warm: bool, delay: float) -> dict:
    env = {**os.environ, "FGFF_WARM_WORKER": "1" if warm else "0", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fgff-first-run-") as tmp:
        done = subprocess.run([sys.executable, "-c", _CASE, tmp, str(delay), json.dumps(RUN)], capture_output=True,
                              text=True, env=env, timeout=600, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return {"warm": warm, "delay": delay, "load": load, **json.loads(done.stdout.splitlines()[-1])}


def table(rows: list[dict]) -> str:
    import ray

    lines = [
        SECTION, "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.uname().nodename}, {cpu_model()}, {os.cpu_count()} "
        f"CPUs, shared with other sessions (load average at each case's start below); Ray {ray.__version__} local "
        f"instance (2 CPUs), runs of `{RUN}`, each case a fresh process, `python -m benchmarks.ray_first_run`.", "",
        "| warm worker | Start pressed | load | manager ready | first run: submit to first epoch | second run | "
        "warm-up took |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        pressed = "at once" if not r["delay"] else f"{r['delay']:g} s after"
        warm = ", ".join(f"{s:.1f} s" for s in r["warm_s"]) or "-"
        lines.append(f"| {'on' if r['warm'] else 'off'} | {pressed} | {r['load']:.1f} | {r['ready_s']:.1f} s | "
                     f"{r['first_s']:.2f} s | {r['second_s']:.2f} s | {warm} |")
    return "\n".join(lines) + "\n"


def write(text: str) -> None:
    """Replace this section of RESULTS.md (keeping its hand-written notes), or append it."""
    current = RESULTS.read_text()
    head, found, tail = current.partition(SECTION)
    rest = ""
    if found:
        notes, sep, after = tail.partition("\n## ")
        _, nsep, kept = notes.partition("\n### ")
        rest = (nsep + kept if nsep else "") + (sep + after if sep else "")
    RESULTS.write_text(head.rstrip("\n") + "\n\n" + text + rest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=20.0, help="seconds from start-up to Start in the late cases")
    parser.add_argument("--write", action="store_true", help="put the table into benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = [measure(warm, delay) for delay in (0.0, args.delay) for warm in (False, True)]
    text = table(rows)
    print(text)
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
