"""Running specs: load each dataset once, train every run not yet in the log, append its row.

Nothing here writes Markdown: the report reads the log afterwards.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import torch

from ..config.schema import RunConfig
from ..data.loading import (
    Dataset,
    DatasetNotFoundError,
    dataset_arguments,
    load_dataset,
    load_for_config,
    training_order,
)
from ..engine.events import RunFinished
from ..engine.training import train
from ..format import duration, percent
from ..vocabulary import RunStatus
from . import sharing
from .cells import Cells, best_lr, collect
from .paper import Budget
from .provenance import machine_fields
from .runlog import RunLog, claim, claim_all
from .specs import SWEPT_ALGOS, RunSpec, best_specs, best_sweep_lrs, best_sweep_row, study_specs, study_sweep_row, widen

Say = Callable[[str], None]
WAIT_POLL_SECONDS = 30.0  # how often a process waiting for another's run looks at the log


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class DataCache:
    """Each dataset a config asks for (``data.load_for_config``) is loaded once per process, not once per run."""

    def __init__(self) -> None:
        self._data: dict[tuple, Dataset] = {}
        self._fingerprints: dict[tuple, str] = {}

    @staticmethod
    def _key(cfg: RunConfig, val_size: int) -> tuple:
        return (*dataset_arguments(cfg).items(), val_size)

    def get(self, cfg: RunConfig, val_size: int = 0) -> Dataset:
        key = self._key(cfg, val_size)
        if key not in self._data:
            self._data[key] = validation_split(cfg, val_size) if val_size else load_for_config(cfg)
        return self._data[key]

    def training_key(self, spec: RunSpec) -> str:
        """``sharing.training_key`` of ``spec`` (its training tensors hashed once per dataset)."""
        key = self._key(spec.config, spec.val_size)
        if key not in self._fingerprints:
            self._fingerprints[key] = sharing.data_fingerprint(self.get(spec.config, spec.val_size))
        return sharing.training_key(spec, self._fingerprints[key])


def validation_split(cfg: RunConfig, val_size: int) -> Dataset:
    """Train on ``load_dataset``'s training subset; test on ``val_size`` other training samples.

    Takes the samples in ``data.training_order``, as ``load_dataset`` does, so the training samples are
    exactly those of the test-set runs, and the validation samples are none of them.
    """
    full = load_dataset(**{**dataset_arguments(cfg), "train_subset": 0})
    n = cfg.train_subset or len(full.y_train) - val_size
    if n + val_size > len(full.y_train):
        raise ValueError(f"study: train_subset {n} + validation {val_size} exceed the {len(full.y_train)} "
                         f"training samples of {cfg.dataset}")
    perm = training_order(len(full.y_train), cfg.train_subset_order)
    tr, va = perm[:n].sort().values, perm[n:n + val_size].sort().values
    return Dataset(full.name, full.x_train[tr], full.y_train[tr], full.x_train[va], full.y_train[va],
                   full.image_shape, full.n_classes, full.mean, full.std)


def log_row(spec: RunSpec, budget: str, dataset: Dataset, device: str, result: RunFinished) -> dict[str, Any]:
    """The run log's row for a finished run (``ROW_FIELDS`` plus the full config)."""
    cfg = spec.config
    return {"key": spec.key, "part": spec.part, "row": spec.row, "algo": spec.algo, "seed": spec.seed,
            "budget": budget, "dataset": cfg.dataset, "layers": list(cfg.layers),
            "train_subset": cfg.train_subset, "n_train": len(dataset.y_train), "n_test": len(dataset.y_test),
            "test_on": spec.test_on, "epochs": cfg.epochs, "lr": cfg.lr,
            "sig_lr": cfg.sig_lr if cfg.trains_factors else None, "batch_size": cfg.batch_size,
            **{k: v for k, v in result.to_dict().items() if k not in ("event", "status", "reason")},
            "device": device, "finished_at": now(), "config": cfg.to_dict()}


def execute(specs: Iterable[RunSpec], log: RunLog, budget: str, data: DataCache, say: Say = print,
            train_missing: bool = True, executor: str = "local", poll_seconds: float = WAIT_POLL_SECONDS,
            more: Callable[[], Iterable[RunSpec]] | None = None,
            should_stop: Callable[[], bool] | None = None) -> dict[str, str]:
    """Run every spec whose row is not in ``log`` yet. Returns {key: skip reason} for runs that could not run.

    A run that another live ``reproduce`` process (same ``--out``) is training is waited for, polling
    the log every ``poll_seconds``, so that the next stage (the best lr of a sweep) sees every run of
    this one; if that process dies first, this one takes the run over.
    ``more``: asked, whenever every run left has been started (here or elsewhere), for runs of a later stage
    that the log now allows (the next lr of a grid whose runs have all landed, the test runs at a settled
    lr), so that a process whose remaining runs are all running elsewhere trains those instead of waiting;
    they are run (or waited for) like ``specs``. Only the local executor asks.
    ``should_stop``: polled between epochs (local executor); when it says so the run ends ``stopped``, unlogged,
    and is skipped with that reason (a time limit: ``gpu_tables``).
    ``train_missing=False`` only counts them (for writing the tables of a log that another process fills).
    """
    skipped: dict[str, str] = {}
    missing: dict[str, str] = {}  # dataset -> reason, so a missing dataset is tried once
    specs = list(specs)
    known = {s.key for s in specs}  # every run this call has been given, so ``more`` adds each once

    def unrun(new: Iterable[RunSpec]) -> list[RunSpec]:
        # seed-major: every cell gets its first seed before any gets its second, so partial results cover the table
        return sorted((s for s in new if s.key not in log), key=lambda s: s.seed)

    todo = unrun(specs)
    say(f"{len(specs) - len(todo)} of {len(specs)} runs already done; {len(todo)} to run")
    if not train_missing:
        return skipped
    if executor != "local":
        return _execute_on(executor, todo, log, budget, data, say)
    queue, elsewhere, n, told = deque(todo), [], 0, set()
    while queue or elsewhere:
        if not queue and more is not None:  # every run is started: take on what the log allows now
            log.reload()
            added = unrun(s for s in more() if s.key not in known)
            known.update(s.key for s in added)
            todo += added
            queue.extend(added)
        if not queue:  # only runs of other processes are left: wait for them to land or their process to die
            time.sleep(poll_seconds)
            queue.extend(elsewhere)
            elsewhere = []
        spec = queue.popleft()
        cfg = spec.config
        log.reload()
        if spec.key in log:  # another reproduce process (same --out) finished it meanwhile
            continue
        if cfg.dataset in missing:
            skipped[spec.key] = missing[cfg.dataset]
            continue
        try:
            dataset = data.get(cfg, spec.val_size)
        except DatasetNotFoundError as exc:
            missing[cfg.dataset] = f"{cfg.dataset} not found ({str(exc).splitlines()[0]})"
            skipped[spec.key] = missing[cfg.dataset]
            say(f"skipped: {missing[cfg.dataset]}")
            continue
        training = data.training_key(spec)
        trained = sharing.find_shared(log, training, spec)
        if trained is not None:  # the same network, trained for another spec, was scored on this one's set too
            log.add(sharing.shared_row(spec, budget, trained, now()))
            say(f"{spec.label}: the same training as {trained['part']} {trained['row']} (not trained again): "
                f"{percent(log.rows[spec.key]['test_acc'])}")
            continue
        # the spec's key (what one process runs) and its training (which another spec may share)
        claims = claim_all(log.path.parent, (spec.key, training))
        if claims is None:  # another live reproduce process is running it right now
            if spec.key not in told:
                say(f"{spec.label}: running in another process, waiting for it")
                told.add(spec.key)
            elsewhere.append(spec)
            continue
        try:
            trainer, result = train(cfg, dataset, should_stop=should_stop)
            done = result.status == RunStatus.DONE
            scores = sharing.scores(spec, dataset, result, trainer, data.get) if done else None
        finally:
            for claimed in claims:
                claimed.unlink(missing_ok=True)
        if not done:  # failed (a NaN loss): a skipped cell with its reason, never a number
            skipped[spec.key] = _not_done(spec, result.status, result.reason, say)
            continue
        # where it ran (CPU, GPU, threads, load): a remote run's row (below) does not know
        row = {**log_row(spec, budget, dataset, str(trainer.device), result), "training": training, "scores": scores,
               **machine_fields(torch.get_num_threads(), str(trainer.device))}
        log.add(row)
        n += 1
        say(f"[{n}/{len(todo)}] {spec.label}: test {percent(row['test_acc'])} "
            f"(no sig {percent(row['test_acc_no_significance'])}), {duration(row['wall_seconds'])}")
    return skipped


def _not_done(spec: RunSpec, status: str, reason: str | None, say: Say) -> str:
    """The skip reason of a run that did not finish (failed, cancelled), said once; its cell shows it."""
    why = f"{status}: {reason or 'no reason recorded'}"
    say(f"{spec.label}: {why}")
    return why


def _execute_on(executor: str, todo: list[RunSpec], log: RunLog, budget: str, data: DataCache,
                say: Say) -> dict[str, str]:
    """``--executor ray``: submit the runs through the job manager, which fans them over the cluster.

    Runs tested on a validation split are trained here (the split is not a ``RunConfig``). The
    host loads each dataset once to check it exists and to count its samples for the log. A remote run's
    row holds its own score only (no ``scores``/``training``), so no other spec takes its row from it.
    """
    from ..jobs.batch import run_configs

    skipped: dict[str, str] = {}
    here = [s for s in todo if s.val_size]
    remote, datasets, claims = [], {}, []
    for spec in todo:
        if spec.val_size:
            continue
        try:
            datasets[spec.key] = data.get(spec.config)
        except DatasetNotFoundError as exc:
            skipped[spec.key] = f"{spec.config.dataset} not found ({str(exc).splitlines()[0]})"
            continue
        claimed = claim(log.path.parent, spec.key)
        if claimed is not None:  # else another live reproduce process is running it
            remote.append(spec)
            claims.append(claimed)
    say(f"{len(remote)} runs submitted through the {executor} executor")
    try:
        results = run_configs([s.config for s in remote], executor, names=[s.label for s in remote], say=say)
    finally:
        for claimed in claims:
            claimed.unlink(missing_ok=True)
    for spec, res in zip(remote, results):
        if res.status != RunStatus.DONE:
            skipped[spec.key] = _not_done(spec, res.status, res.error, say)
            continue
        log.add(log_row(spec, budget, datasets[spec.key], res.device or "unknown",
                        RunFinished(status=res.status, **res.final)))
    if here:
        skipped.update(execute(here, log, budget, data, say))
    return skipped


K = TypeVar("K")  # what a sweep's grid belongs to: an algorithm, or (recipe, algorithm)


@dataclass
class Sweep(Generic[K]):
    """An lr sweep as run: each grid (widened where its best lr sat at an end), its runs, and the lr chosen."""

    lrs: dict[K, tuple[float, ...]]
    specs: list[RunSpec]
    best: dict[K, float]  # only for grids whose every run finished
    settled: dict[K, float] = field(default_factory=dict)  # the best lrs that no widening will change


class Run(Protocol):
    """``execute`` with a stage's arguments bound: run ``specs``, and what ``more`` allows meanwhile."""

    def __call__(self, specs: list[RunSpec], more: Callable[[], Iterable[RunSpec]] | None = None) -> object: ...


def stage_runner(skipped: dict[str, str], log: RunLog, budget: Budget, data: DataCache, say: Say,
                 train_missing: bool, executor: str) -> Run:
    """``execute`` bound to a part's arguments; each stage's skipped runs are added to ``skipped``."""

    def run(specs: list[RunSpec], more: Callable[[], Iterable[RunSpec]] | None = None) -> None:
        skipped.update(execute(specs, log, budget.name, data, say, train_missing, executor, more=more))

    return run


def bracketed_sweep(lrs: dict[K, tuple[float, ...]], specs_for: Callable[[dict[K, tuple[float, ...]]], list[RunSpec]],
                    choose: Callable[[list[RunSpec], dict[K, tuple[float, ...]]], dict[K, float]],
                    run: Run, widenings: int,
                    then: Callable[[dict[K, float]], list[RunSpec]] = lambda settled: []) -> Sweep[K]:
    """Sweep every grid; while a grid's best lr sits at one of its ends, add the next lr past that end
    (``specs.widen``) and sweep again, at most ``widenings`` times, so that the chosen lr is bracketed by lrs
    that did worse. Each grid widens on its own results only, as soon as they are all in, while other grids
    still run; a grid still open at the end stays as it is. ``then(settled)``: the runs that a settled best
    lr allows (its test runs), started as soon as it is settled."""

    def so_far() -> Sweep[K]:  # each grid widened as far as its finished runs decide
        grids = lrs
        for _ in range(widenings):
            best = choose(specs_for(grids), grids)
            wider = {k: widen(grid, best[k]) if k in best else grid for k, grid in grids.items()}
            if wider == grids:
                break
            grids = wider
        specs = specs_for(grids)
        best = choose(specs, grids)
        settled = {k: lr for k, lr in best.items()
                   if widen(grids[k], lr) == grids[k] or len(grids[k]) - len(lrs[k]) == widenings}
        return Sweep(grids, specs, best, settled)

    def ready(sweep: Sweep[K]) -> list[RunSpec]:
        return sweep.specs + then(sweep.settled)

    given: set[str] = set()
    while True:
        sweep = so_far()
        specs = ready(sweep)
        if given.issuperset(s.key for s in specs):  # until a stage adds nothing new
            return sweep
        given.update(s.key for s in specs)
        run(specs, more=lambda: ready(so_far()))


@dataclass
class StudyRuns:
    """The study's runs, stage by stage; a stage is empty where the one before it did not finish."""

    sweep: Sweep[str]
    curve: list[RunSpec] = field(default_factory=list)
    long_sweep: Sweep[str] | None = None
    long_runs: list[RunSpec] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def run_study(budget: Budget, seeds: int, device: str, data_dir: str | None, log: RunLog, data: DataCache,
              say: Say = print, train_missing: bool = True, executor: str = "local") -> StudyRuns:
    """lr sweep -> best lr per algorithm (validation) -> budget curve (test) -> the same at the long budget."""
    s = budget.study
    skipped: dict[str, str] = {}
    run = stage_runner(skipped, log, budget, data, say, train_missing, executor)

    def sweep(long: bool) -> Sweep[str]:
        prefix = study_sweep_row(long_epochs=s.long_epochs if long else None)
        return bracketed_sweep(
            {algo: s.long_lrs if long else s.lrs for algo in SWEPT_ALGOS},
            lambda lrs: study_specs(budget, seeds, device, data_dir, long=long, lrs=lrs),
            lambda specs, lrs: best_lr(collect(specs, log, skipped, "test_acc"), prefix, lrs, seeds),
            run, s.widenings)

    runs = StudyRuns(sweep(long=False), skipped=skipped)
    if len(runs.sweep.best) < 2:
        return runs
    runs.curve = study_specs(budget, seeds, device, data_dir, runs.sweep.best)
    # the long sweep's first grid needs nothing from the curve: a process with no curve run left to start
    # trains those instead of waiting for another process's last curve run
    run(runs.curve, more=lambda: study_specs(budget, seeds, device, data_dir, long=True))
    # Equal budget, longer: sweep again at long_epochs, then test each algorithm at its best lr there.
    runs.long_sweep = sweep(long=True)
    if len(runs.long_sweep.best) == 2:
        runs.long_runs = study_specs(budget, seeds, device, data_dir, runs.long_sweep.best, long=True)
        run(runs.long_runs)
    return runs


@dataclass
class BestRuns:
    """Part "best": the sweep, the lr chosen per (recipe, algo) on validation, and the test runs at it."""

    sweep: Sweep[tuple[str, str]]
    sweep_cells: Cells  # (sweep row, algo) -> validation accuracy over the sweep's seed
    test: list[RunSpec] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def run_best(budget: Budget, seeds: int, device: str, data_dir: str | None, log: RunLog, data: DataCache,
             say: Say = print, train_missing: bool = True, executor: str = "local") -> BestRuns:
    """Same starting lr grid for FF and FGFF on each strong recipe, widened where a best lr sits at an end
    (validation) -> the test runs at each one's best lr, started as soon as that grid is settled."""
    skipped: dict[str, str] = {}
    run = stage_runner(skipped, log, budget, data, say, train_missing, executor)

    def choose(specs: list[RunSpec], lrs: dict[tuple[str, str], tuple[float, ...]]) -> dict[tuple[str, str], float]:
        cells = collect(specs, log, skipped, "test_acc")  # the sweep's test_acc is on the validation split
        return {(recipe, algo): lr for recipe in budget.best.recipes
                for algo, lr in best_lr(cells, best_sweep_row(recipe),
                                        {a: lrs[(recipe, a)] for a in SWEPT_ALGOS}).items()}

    def tests(settled: dict[tuple[str, str], float]) -> list[RunSpec]:  # every seed at each settled lr
        return best_specs(budget, seeds, device, data_dir, settled)

    sweep = bracketed_sweep({(recipe, algo): best_sweep_lrs(recipe, budget)
                             for recipe in budget.best.recipes for algo in SWEPT_ALGOS},
                            lambda lrs: best_specs(budget, seeds, device, data_dir, lrs=lrs), choose, run,
                            budget.best.widenings, then=tests)
    runs = BestRuns(sweep, collect(sweep.specs, log, skipped, "test_acc"), skipped=skipped)
    runs.test = tests(sweep.settled)  # already run by the sweep, as each lr settled
    return runs
