"""Tables III and IV at the paper's budget on a CUDA GPU, inside a time limit: ``python -m fgff_core.reproduce.gpu``.

Table III at the paper's 1200 epochs per layer takes about 5 hours per run on this project's 2-core CPU, so the
reports have it at 200 (``full``). A session that is lent a GPU runs it, and Table IV's timings, with one command
(docs/REPRODUCTION.md, "Tables III and IV on a GPU", has the device machine's exact line)::

    python -m fgff_core.reproduce.gpu --dry-run          # the plan, its estimates and the data check; trains nothing
    python -m fgff_core.reproduce.gpu --device cuda --time-limit 540 --data-dir ../shared/datasets --out DIR

A log already in DIR (``runs-paper.jsonl``) is continued: a call picks up where the last one stopped.

**What runs**: ``table_specs`` of Tables III and IV under the budget ``paper`` (``paper.py``: ``full``, and
CIFAR-10 at the paper's 1200 epochs per layer), 3 seeds, each trained by ``execution.execute`` (the one training
path of every part) into ``runs-paper.jsonl``; its rows record the device and the GPU's name
(``provenance.machine_fields``), and ``table3-paper.md`` / ``table4-paper.md`` are written from the log at the end.

**Order** (``priority``): the most valuable runs first (its docstring says why).

**Time limit**: a run starts only when ``SAFETY`` times its estimate fits in the time left; a run that does not is
left for the next call and the next one in the plan is tried. A run still training at the limit is stopped between
epochs and not logged. Every finished run is in the log at once, keyed by its config, so the next call with the
same log skips it.

**Estimates** (``estimate``): ``jobs.work.run_work`` counts a run's work (the app's training-time estimate). On a
CUDA device it is timed at ``ASSUMED_CUDA_SPEED``, an assumption, not a measurement (no GPU has run this yet),
until the log holds finished runs on CUDA: then the median of their measured / estimated seconds (the runs of the
same network and batch mode where there are any, else those of the same batch mode) scales it. On a CPU the
app's reference CPU speed (``jobs.estimate.REFERENCE_SPEED``), scaled the same way by the log's CPU runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.loading import data_root, find_dataset, search_roots
from ..data.registry import DATASETS
from ..engine.device import resolve_device
from ..format import duration, percent
from ..jobs.estimate import Speed, device_kind, reference_speed
from ..jobs.work import run_work
from ..vocabulary import algo_label
from . import MAX_SEEDS, _check_out, reproduce
from .execution import DataCache, Say, execute
from .paper import TABLE_TITLES, Budget, get_budget
from .runlog import RunLog
from .specs import RunSpec, table_specs

GPU_PARTS = ("3", "4")
GPU_BUDGET = "paper"
DEFAULT_DATA_DIR = "../shared/datasets"
DEFAULT_TIME_LIMIT_S = 540.0  # the device tool gives one command 600 s: this leaves a minute for start and tables
# Assumed, never measured (no GPU has run this yet): multiply-adds per second in fp32 (about a fifth of an
# H100's fp32 peak) and seconds per fixed-cost call (a layer step, a minibatch, a prediction chunk).
ASSUMED_CUDA_SPEED = Speed(5e12, 1e-3)
SAFETY = 1.25  # a run starts only when this many times its estimate fits in the time left
ALGO_ORDER = ("fgff", "ff", "bp")  # within a tier and seed: the paper's claim (FGFF) first


def priority(spec: RunSpec) -> tuple[int, int, int]:
    """Where ``spec`` comes in the plan, most valuable first:

    0. Table III's FGFF and FF at seed 0: the cells never run at the paper's 1200 epochs on all the data;
    1. all of Table IV: a few seconds per run, a whole table timed on a GPU as the paper's was;
    2. Table III's FGFF and FF at the other seeds, seed by seed;
    3. Table III's BP: the same 50 epochs as in ``full``, whose BP cells the CPU already reproduced (within 2 points).
    """
    tier = 1 if spec.part == "4" else 3 if spec.algo == "bp" else 0 if spec.seed == 0 else 2
    return tier, spec.seed, ALGO_ORDER.index(spec.algo) if spec.algo in ALGO_ORDER else len(ALGO_ORDER)


def plan(budget: Budget, seeds: int, device: str, data_dir: str | None) -> list[RunSpec]:
    """Every run of Tables III and IV under ``budget``, in ``priority`` order."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise ValueError(f"seeds: {seeds} is out of range; choose 1 to {MAX_SEEDS}")
    specs = [s for part in GPU_PARTS for s in table_specs(part, budget, seeds, device, data_dir)]
    return sorted(specs, key=priority)


@dataclass(frozen=True)
class Estimate:
    """A run's expected seconds, and what they rest on ("assumed GPU speed", "measured: 2 runs on cuda", ...)."""

    seconds: float
    basis: str


def _reference(kind: str, full_batch: bool) -> Speed:
    return ASSUMED_CUDA_SPEED if kind == "cuda" else reference_speed(kind, full_batch)


def estimate(spec: RunSpec, rows: Iterable[dict[str, Any]], kind: str) -> Estimate:
    """``spec``'s seconds on a ``kind`` device ("cuda", "cpu"), calibrated by the finished ``rows`` on that kind
    (module docstring)."""
    work = run_work(spec.config)
    ref = _reference(kind, work.full_batch)
    done = [(r, run_work(r["config"])) for r in rows
            if device_kind(r.get("device")) == kind and r.get("wall_seconds") and not r.get("same_run_as")]
    same_mode = [(r, w) for r, w in done if w.full_batch == work.full_batch]
    same_net = [(r, w) for r, w in same_mode
                if r["dataset"] == spec.config.dataset and list(r["layers"]) == list(spec.config.layers)]
    sample = same_net or same_mode
    if not sample:
        return Estimate(ref.seconds(work), "assumed GPU speed" if kind == "cuda" else "reference CPU speed")
    factor = statistics.median(r["wall_seconds"] / ref.seconds(w) for r, w in sample)
    return Estimate(ref.seconds(work) * factor, f"measured: {len(sample)} run{'s' * (len(sample) > 1)} on {kind}")


def missing_datasets(specs: Iterable[RunSpec], data_dir: str | None) -> dict[str, str]:
    """{dataset: where it was looked for} for each dataset of ``specs`` that ``data.find_dataset`` does not find
    (by the files' names: nothing is read)."""
    missing = {}
    for name in dict.fromkeys(s.config.dataset for s in specs):
        if not DATASETS[name].embedded and find_dataset(name, data_dir) is None:
            roots = search_roots(data_root(data_dir))
            missing[name] = f"looked in {', '.join(map(str, roots))} (and their {name} layouts: " \
                            f"python -m fgff_core datasets)"
    return missing


def describe(spec: RunSpec) -> str:
    """"Table III 3x800 FGFF seed 0 (cifar10, 1200 epochs per layer)"."""
    epochs = spec.config.epochs
    per_layer = " per layer" if spec.algo != "bp" else ""
    return f"{TABLE_TITLES[spec.part].split(':')[0]} {spec.row} {algo_label(spec.algo)} seed {spec.seed} " \
           f"({spec.config.dataset}, {epochs} epoch{'s' * (epochs != 1)}{per_layer})"


def dry_run(budget: Budget, seeds: int, device: str, data_dir: str | None, out: Path,
            time_limit: float) -> tuple[list[str], dict[str, str]]:
    """The plan as lines (each run with its estimate, where the time limit falls, what the log already holds) and
    the missing datasets. Reads only the log in ``out``; touches no data and trains nothing."""
    time_limit = _checked_limit(time_limit)
    specs = plan(budget, seeds, device, data_dir)
    log = RunLog(out / f"runs-{budget.name}.jsonl")
    kind = device_kind(device)
    rows = list(log.rows.values())
    lines = [f"Plan: {', '.join(TABLE_TITLES[p].split(':')[0] for p in GPU_PARTS)} at budget `{budget.name}` "
             f"({budget.description}), {seeds} seed{'s' * (seeds > 1)}, device {device}: {len(specs)} runs, "
             f"{sum(s.key in log for s in specs)} already in {log.path}",
             f"{'#':>3}  {'part':4}  {'row':8}  {'algo':4}  {'seed':4}  {'epochs':>6}  {'dataset':13}  "
             f"{'estimate':>10}  basis"]
    used = 0.0
    for i, spec in enumerate(specs, 1):
        cfg = spec.config
        head = f"{i:>3}  {spec.part:4}  {spec.row:8}  {spec.algo:4}  {spec.seed:4}  {cfg.epochs:>6}  {cfg.dataset:13}  "
        if spec.key in log:
            lines.append(f"{head}{'done':>10}  in the log")
            continue
        est = estimate(spec, rows, kind)
        fits = used + est.seconds * SAFETY <= time_limit
        used += est.seconds * SAFETY if fits else 0.0
        later = "" if fits else f"; after the {duration(time_limit)} limit: a later call"
        lines.append(f"{head}{duration(est.seconds):>10}  {est.basis}{later}")
    try:
        resolve_device(device)
        lines.append(f"device {device}: available here")
    except ValueError as exc:
        lines.append(f"device {device}: not here, so only this dry run works on this machine ({exc})")
    missing = missing_datasets(specs, data_dir)
    for name in dict.fromkeys(s.config.dataset for s in specs):
        found = find_dataset(name, data_dir)
        lines.append(f"data {name}: " + (f"missing, {missing[name]}" if name in missing else
                                         f"found in {found} (by name, not read)" if found else "embedded"))
    return lines, missing


@dataclass
class Outcome:
    """What one call did: runs finished now, in the log in all, left for a next call, not finished."""

    finished: list[str] = field(default_factory=list)
    in_log: int = 0
    planned: int = 0
    left: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _checked_limit(seconds: float) -> float:
    if not seconds > 0:  # NaN too
        raise ValueError(f"time_limit: {seconds} s is out of range; give a number of seconds above 0")
    return seconds


def _check_data(specs: list[RunSpec], data_dir: str | None) -> None:
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(f"data_dir: {data_dir!r} is not a folder; pass --data-dir DIR, the folder that holds "
                         "cifar10/ and fashion-mnist/ (python -m fgff_core datasets)")
    missing = missing_datasets(specs, data_dir)
    if missing:
        raise ValueError("data_dir: " + "; ".join(f"{name} not found, {where}" for name, where in missing.items()))


def run_tables(budget: Budget, seeds: int, device: str, data_dir: str | None, out: Path, time_limit: float,
               say: Say = print, clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Train the plan's runs not yet in ``out``'s log, most valuable first, while they fit in ``time_limit``
    seconds (module docstring); then write the tables from the log. One line per run through ``say``."""
    deadline = clock() + _checked_limit(time_limit)
    specs = plan(budget, seeds, device, data_dir)
    resolve_device(device)  # ValueError naming the device, e.g. cuda on a machine without one
    _check_out(out)
    _check_data(specs, data_dir)
    out.mkdir(parents=True, exist_ok=True)
    log, data, kind = RunLog(out / f"runs-{budget.name}.jsonl"), DataCache(), device_kind(device)
    todo = [s for s in specs if s.key not in log]
    outcome = Outcome(planned=len(specs))
    say(f"{len(specs) - len(todo)} of {len(specs)} runs already in {log.path.name}; {len(todo)} to run, "
        f"{duration(time_limit)} at most")
    for i, spec in enumerate(todo, 1):
        est, left = estimate(spec, log.rows.values(), kind), deadline - clock()
        if est.seconds * SAFETY > left:
            outcome.left.append(spec.label)
            say(f"[{i}/{len(todo)}] {describe(spec)}: not started, about {duration(est.seconds)} ({est.basis}) "
                f"with {duration(max(left, 0.0))} left: a later call")
            continue
        started = clock()
        skipped = execute([spec], log, budget.name, data, say=lambda _msg: None,
                          should_stop=lambda: clock() > deadline)
        row = log.get(spec.key)
        if row is None:
            why = skipped.get(spec.key, "no row was logged")
            if why.startswith("stopped"):
                why = f"stopped at the time limit after {duration(clock() - started)}, not logged: a later call"
                outcome.left.append(spec.label)
            else:
                outcome.failed[spec.label] = why
            say(f"[{i}/{len(todo)}] {describe(spec)}: {why} (estimated {duration(est.seconds)})")
            continue
        outcome.finished.append(spec.label)
        say(f"[{i}/{len(todo)}] {summary(spec, row)}, estimated {duration(est.seconds)} ({est.basis})")
    log.reload()
    outcome.in_log = sum(s.key in log for s in specs)
    reproduce(list(GPU_PARTS), budget.name, seeds, data_dir, out, device, say=lambda _msg: None, train=False)
    say(f"{len(outcome.finished)} runs finished in this call; {outcome.in_log} of {len(specs)} in {log.path}; "
        f"{len(outcome.left)} left for a later call (the same command); {len(outcome.failed)} failed; tables: "
        + ", ".join(str(out / f"table{p}-{budget.name}.md") for p in GPU_PARTS))
    return outcome


def summary(spec: RunSpec, row: dict[str, Any]) -> str:
    """One run's line: what it was, its accuracies or its seconds per epoch, its wall time and its machine."""
    if spec.part == "4":
        result = f"{row['epoch_seconds_median']:.4f} s per {'epoch' if spec.algo == 'bp' else 'layer-epoch'}"
    else:
        result = f"train {percent(row['train_acc'])}, test {percent(row['test_acc'])}"
        if spec.algo == "fgff":
            result += f" (without significance {percent(row['test_acc_no_significance'])})"
    return f"{describe(spec)}: {result}, {duration(row['wall_seconds'])} on {row.get('gpu') or row['device']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgff_core.reproduce.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="list the plan with estimates and check the datasets; reads no data, trains nothing")
    parser.add_argument("--device", default="cuda", help="where to train [default: cuda]")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, metavar="S",
                        help=f"start no run that would not end within S seconds [default: {DEFAULT_TIME_LIMIT_S:g}]")
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds per cell [default: 3]")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, metavar="DIR",
                        help=f"the folder with cifar10/ and fashion-mnist/ [default: {DEFAULT_DATA_DIR}]")
    parser.add_argument("--out", type=Path, default=Path("docs/reproduction"), metavar="DIR",
                        help="where the log and the tables go; a log already there is continued")
    args = parser.parse_args(argv)
    budget = get_budget(GPU_BUDGET)
    try:
        if args.dry_run:
            lines, missing = dry_run(budget, args.seeds, args.device, args.data_dir, args.out, args.time_limit)
            print("\n".join(lines))
            return 1 if missing else 0
        outcome = run_tables(budget, args.seeds, args.device, args.data_dir, args.out, args.time_limit,
                             say=lambda msg: print(msg, flush=True))  # each line now: a killed call keeps them
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
