"""The training-time estimate against measured runs: ``python -m benchmarks.estimate [--train --data-dir DIR]``.

Three checks of ``fgff_core.jobs.estimate.estimate_training`` (its method is in that module's docstring):

1. **Reference points**: runs timed on the idle 2-core CPU, as this project's logs recorded them (the source is
   given with each), against the estimate at the built-in reference speed (no finished runs). ``--fit`` prints
   the speed per batch mode that fits them best (the figures ``REFERENCE_SPEED`` holds).
2. **Replay**: the finished runs of ``docs/reproduction/runs-*.jsonl`` (reproduce's logs: 450 runs of MNIST,
   Fashion-MNIST and CIFAR-10, from seconds to an hour, at one or two threads, often beside other work) in the
   order they finished; each is estimated from the runs before it, as the server would (its newest 10 finished
   runs calibrate), by the estimate and by the one it replaced (sample x weight products over the median rate
   of the newest 10 runs), and compared with its measured ``wall_seconds``.
3. ``--train``: trains ``TRAIN_CONFIGS`` here (the data loaded first, then the engine's ``wall_seconds``), with the
   load average, to compare with the estimate on this machine as it is now.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from pathlib import Path

import numpy as np
import pandas as pd

from fgff_core.config import RunConfig
from fgff_core.config.presets import _BEST_QUICK, preset_config
from fgff_core.data.registry import DATASETS
from fgff_core.jobs.estimate import REFERENCE_SPEED, Speed, estimate_training
from fgff_core.jobs.work import run_work

LOGS = [Path(__file__).resolve().parents[1] / "docs" / "reproduction" / f"runs-{b}.jsonl" for b in ("quick", "full")]
TUNING = "docs/reproduction/tuning-best.md"
TABLE_IV = "docs/reproduction/runs-full.jsonl, Table IV (2 threads, quiet)"


def reference_points() -> list[tuple[str, RunConfig, float, str]]:
    """(name, config, measured wall seconds, source) of runs timed on the idle 2-core CPU, 2 threads."""
    demo = preset_config("ff-best-mnist-quick")
    quick = dict(_BEST_QUICK, algo="ff")
    points = [
        ("quick-digits (the default preset)", preset_config("quick-digits"), 1.4,
         "the former reference of jobs.launch: 'trains in about 1.4 s' on the idle 2-core CPU"),
        ("ff-best-mnist-quick (the MNIST demo), L1", demo, 64.0, f"{TUNING}, L1: 60.1 s train + the final scoring"),
        ("the demo at batch 400, L5", demo.replace(batch_size=400, lr=0.16), 58.5, f"{TUNING}, L5: 54.6 s train"),
        ("the demo's recipe at batch 100, 5 epochs, V0", RunConfig.from_dict({**quick, "epochs": 5,
                                                                              "hard_negatives_every": 1}), 51.3,
         f"{TUNING}, V0 'run s'"),
        ("the same, 15 epochs, V1", RunConfig.from_dict({**quick, "hard_negatives_every": 1}), 152.5,
         f"{TUNING}, V1"),
        ("the same, hard negatives every 3 epochs, V2", RunConfig.from_dict(quick), 101.7, f"{TUNING}, V2"),
    ]
    for row in _log_rows():  # reproduce's Table IV, quiet, 2 threads: the paper's settings, 10 epochs per layer
        if row["part"] == "4" and row["config"]["epochs"] == 10 and row["algo"] == "ff":
            points.append(("Fashion-MNIST 2x500 FF, full batch, 10 epochs per layer",
                           RunConfig.from_dict(row["config"]), row["wall_seconds"], TABLE_IV))
        if row["part"] == "4" and row["config"]["epochs"] == 3 and row["algo"] == "bp":
            points.append(("Fashion-MNIST 2x500 BP, batches of 64, 3 epochs", RunConfig.from_dict(row["config"]),
                           row["wall_seconds"], TABLE_IV))
    return points


def _log_rows() -> list[dict]:
    rows = []
    for path in LOGS:
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("wall_seconds") and r.get("config") and r.get("finished_at")]


# -- the estimate this one replaced (jobs.launch before issue 39 item 5) --------------------------------------
def _old_work(config: RunConfig) -> float:
    spec = DATASETS[config.dataset]
    widths = [spec.input_dim, *config.layers]
    return float(config.epochs) * spec.train_samples(config.train_subset) * sum(
        a * b for a, b in zip(widths[:-1], widths[1:]))


def old_estimate(config: RunConfig, runs: pd.DataFrame) -> float:
    rates = [_old_work(RunConfig.coerce(r["config"])) / r["train_seconds"]
             for r in runs.head(10).to_dict("records") if r["train_seconds"] > 0]
    return _old_work(config) / (float(np.median(rates)) if rates else 3.0e9)


def replay() -> dict[str, list[float]]:
    """measured / estimated for every logged run, estimated from the runs that finished before it."""
    rows = sorted(_log_rows(), key=lambda r: r["finished_at"])
    table = pd.DataFrame([dict(run_id=str(i), status="done", config=r["config"], wall_seconds=r["wall_seconds"],
                               train_seconds=r.get("train_seconds") or r["wall_seconds"],
                               device=r.get("device") or "cpu") for i, r in enumerate(rows)])
    out: dict[str, list[float]] = {"new": [], "old": [], "in_range": []}
    for i, row in enumerate(rows):
        before = table.iloc[:i].iloc[::-1]  # newest first, as the store lists them
        cfg = RunConfig.from_dict(row["config"])
        est = estimate_training(cfg, before)
        out["new"].append(row["wall_seconds"] / est.seconds)
        out["old"].append(row["wall_seconds"] / old_estimate(cfg, before))
        out["in_range"].append(float(est.low <= row["wall_seconds"] <= est.high))
    return out


def summary(ratios: list[float]) -> str:
    off = [max(r, 1 / r) for r in ratios]
    return (f"median {statistics.median(ratios):.2f}, within 2x: {np.mean([o <= 2 for o in off]):.0%}, within 3x: "
            f"{np.mean([o <= 3 for o in off]):.0%}, worst {max(off):.0f}x "
            f"({'over' if ratios[int(np.argmax(off))] < 1 else 'under'}estimated)")


# -- a class server after a few tiny runs (the case) -------------------------------------------------
# The test suites' tiny run (tests/app/conftest.py TINY), timed here in one process at load average 7.9
# (2026-12-07 15:21 UTC): (wall_seconds, train_seconds) of three seeds.
TINY = dict(algo="fgff", dataset="digits", layers=[12, 12], epochs=4, eval_every=2, eval_subset=200)
TINY_TIMES = [(0.638, 0.366), (0.768, 0.136), (1.239, 0.685)]


def class_server() -> None:
    """The two class presets estimated on a server whose newest 10 finished runs are tiny ones."""
    runs = pd.DataFrame([dict(run_id=str(i), status="done", config=RunConfig.from_dict({**TINY, "seed": i}).to_dict(),
                              wall_seconds=w, train_seconds=t, device="cpu")
                         for i, (w, t) in enumerate(TINY_TIMES * 4)][:10])
    print("| preset | the estimate it replaced | this estimate | measured (idle CPU) |")
    print("|---|---:|---|---:|")
    for name, measured in (("quick-digits", "1.4 s"), ("ff-best-mnist-quick", "59-72 s")):
        cfg = preset_config(name)
        est = estimate_training(cfg, runs)
        print(f"| {name} | {old_estimate(cfg, runs):.0f} s | {est.text()} | {measured} |")


# -- timing here ----------------------------------------------------------------------------------------------
TRAIN_CONFIGS: dict[str, dict] = {
    "quick-digits (fgff, the default preset)": {"preset": "quick-digits"},
    "tiny-digits (fgff)": {"preset": "tiny-digits"},
    "quick-digits, bp": {"preset": "quick-digits", "algo": "bp"},
    "digits 2x100 ff, batches of 100, simultaneous, 20 epochs": {"algo": "ff", "batch_size": 100, "epochs": 20,
                                                                "schedule": "simultaneous"},
    "paper-mnist-2x500 ff, 10 epochs per layer": {"preset": "paper-mnist-2x500", "algo": "ff", "epochs": 10},
    "ff-best-mnist-quick (the MNIST demo)": {"preset": "ff-best-mnist-quick"},
}


def train_here(only: str | None, data_dir: str | None) -> list[tuple[str, RunConfig, float]]:
    from fgff_core.data.loading import load_for_config
    from fgff_core.engine.training import train

    out = []
    for name, spec in TRAIN_CONFIGS.items():
        if only and only not in name:
            continue
        spec = dict(spec)
        preset = spec.pop("preset", None)
        if data_dir:
            spec["data_dir"] = data_dir
        cfg = preset_config(preset, **spec) if preset else RunConfig.from_dict(spec)
        data = load_for_config(cfg)
        _, result = train(cfg, data)
        out.append((name, cfg, float(result.wall_seconds)))
        print(f"  trained {name}: {result.wall_seconds:.1f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    return out


def fit(points: list[tuple[RunConfig, float]], call_s: float | None = None) -> Speed:
    """The speed whose predictions have the smallest squared log error (a grid search)."""
    best = None
    calls = [call_s] if call_s is not None else [10 ** (x / 40) for x in range(-200, -80)]
    for rate in (10 ** (x / 80) for x in range(760, 920)):
        for c in calls:
            speed = Speed(rate, c)
            err = sum(math.log(speed.seconds(run_work(cfg)) / s) ** 2 for cfg, s in points)
            if best is None or err < best[0]:
                best = (err, speed)
    return best[1]


def table(points: list[tuple[str, RunConfig, float]], runs: pd.DataFrame | None = None) -> None:
    print("| config | multiply-adds | calls | estimate (expected) | measured | measured / expected |")
    print("|---|---:|---:|---|---:|---:|")
    for name, cfg, measured in points:
        work = run_work(cfg)
        est = estimate_training(cfg, pd.DataFrame() if runs is None else runs)
        print(f"| {name} | {work.macs:.3g} | {work.calls:.0f} | {est.low:.1f}-{est.high:.1f} s ({est.seconds:.1f} s) | "
              f"{measured:.1f} s | {measured / est.seconds:.2f} |")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit", action="store_true", help="print the reference speeds that fit the reference points")
    p.add_argument("--train", action="store_true", help="also train TRAIN_CONFIGS here and compare")
    p.add_argument("--only", default=None, help="with --train: only the configs whose name contains this text")
    p.add_argument("--data-dir", default=os.environ.get("FGFF_DATA_DIR"))
    args = p.parse_args(argv)
    points = reference_points()
    print(f"## Reference points (idle CPU, 2 threads), at REFERENCE_SPEED {REFERENCE_SPEED}\n")
    table([(n, c, s) for n, c, s, _ in points])
    if args.fit:
        full = [(c, s) for _, c, s, _ in points if run_work(c).full_batch]
        speed = fit(full)
        print(f"\nbest fit: full batch {speed}; minibatches "
              f"{fit([(c, s) for _, c, s, _ in points if not run_work(c).full_batch], speed.call_s)}")
    result = replay()
    print(f"\n## Replay of {len(result['new'])} logged runs, each estimated from the runs before it\n")
    print(f"- this estimate: measured / expected {summary(result['new'])}; "
          f"inside the shown range: {np.mean(result['in_range']):.0%}")
    print(f"- the estimate it replaced: measured / estimate {summary(result['old'])}")
    print("\n## A class server whose newest 10 finished runs are the tests' tiny run\n")
    class_server()
    if args.train:
        print(f"\n## Trained here, load average {os.getloadavg()[0]:.1f} at the start\n")
        table(train_here(args.only, args.data_dir))
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
