"""Job manager demo: train in the background, watch live, cancel, restart, find the runs again.

    python examples/jobs_demo.py [RUNS_DIR]      # default: a fresh temporary folder

1. A JobManager submits an FGFF and an FF job (the quick-digits preset) and a third, long job.
2. It polls their live metrics while they train, and cancels the third after a few epochs.
3. This process ends; a new Python process opens a new JobManager on the same folder (a
   restart) and finds both finished runs with all their epochs and significance snapshots.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fgff_core.config.presets import preset_config  # noqa: E402
from fgff_core.jobs import JobManager  # noqa: E402
from fgff_core.vocabulary import RunStatus, is_active  # noqa: E402


def train_and_watch(runs_dir: Path) -> list[str]:
    with JobManager(runs_dir, max_concurrent=3) as jm:
        fgff = jm.submit(preset_config("quick-digits", "fgff"), name="demo FGFF digits")
        ff = jm.submit(preset_config("quick-digits", "ff"), name="demo FF digits")
        third = jm.submit(preset_config("quick-digits", "fgff", epochs=100_000), name="demo: to be cancelled")
        print(f"submitted {fgff} (fgff), {ff} (ff), {third} (long) -- submit returned at once")
        cancelled = False
        t0 = time.monotonic()
        while any(is_active(jm.store.status(r)) for r in (fgff, ff)):
            parts = []
            for run_id in (fgff, ff, third):
                m = jm.store.metrics(run_id)  # live: rows appear epoch by epoch
                acc = m["test_acc"].dropna()
                parts.append(f"{run_id[:6]} {jm.store.status(run_id):9s} {len(m):4d} epochs"
                             + (f" test_acc {acc.iloc[-1]:.3f}" if len(acc) else ""))
            print(f"[{time.monotonic() - t0:5.1f}s] " + " | ".join(parts))
            if not cancelled and len(jm.store.metrics(third)) >= 20:
                jm.cancel(third)
                cancelled = True
                print(f"cancel({third}) requested")
            time.sleep(0.5)
        if not cancelled:
            jm.cancel(third)
        print("third job:", jm.wait(third, timeout=60), f"after {len(jm.store.metrics(third))} epochs")
        for run_id in (fgff, ff):
            print(run_id, jm.wait(run_id), jm.store.run(run_id)["error"] or "")
    return [fgff, ff, third]


def inspect_after_restart(runs_dir: Path, run_ids: list[str]) -> int:
    with JobManager(runs_dir, max_concurrent=1) as jm:  # a new process: the "restarted server"
        runs = jm.store.runs().set_index("run_id")
        print(runs.loc[run_ids, ["name", "algo", "status", "epochs_done", "epoch_events", "test_acc",
                                 "train_seconds"]].to_string())
        ok = True
        for run_id in run_ids[:2]:
            row, m, sig = jm.store.run(run_id), jm.store.metrics(run_id), jm.store.significance(run_id)
            complete = row["status"] == RunStatus.DONE and len(m) == row["epoch_events"] and m["loss"].notna().all()
            snapshots = [a.shape for a in sig]
            ok &= complete and all(s[0] == row["config"]["epochs"] for s in snapshots)
            model, config = jm.store.load_model(run_id)
            print(f"{run_id}: {len(m)} epoch rows, significance snapshots {snapshots}, "
                  f"checkpoint {jm.store.checkpoint_path(run_id).name} ({config.algo}), "
                  f"mean |significance| last layer {abs(sig[-1][-1]).mean():.3f}")
        third = jm.store.run(run_ids[2])
        print(f"{run_ids[2]}: {third['status']} with {third['epochs_done']} epochs")
        ok &= third["status"] == RunStatus.CANCELLED
    print("ALL FOUND" if ok else "SOMETHING IS MISSING")
    return 0 if ok else 1


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--inspect":
        return inspect_after_restart(Path(sys.argv[2]), sys.argv[3:])
    runs_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="fgff-demo-"))
    print("runs folder:", runs_dir)
    ids = train_and_watch(runs_dir)
    print("--- a new process opens the same runs folder ---")
    return subprocess.call([sys.executable, __file__, "--inspect", str(runs_dir), *ids])


if __name__ == "__main__":
    sys.exit(main())
