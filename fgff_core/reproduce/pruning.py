"""Part "pruning" (issue 34): is the factor s a better removal order than activity, weight norm or random?

For the paper's 2x500 MNIST and Fashion-MNIST presets (Tables I and II's configs under the budget) and the
quick strong recipes (part "best"'s test runs, each algorithm at the lr that part "best" chose from the run
log), FF and FGFF, several seeds: train the network exactly as that part does (the same ``RunSpec`` config),
keep it in memory only (no weights are stored), run ``analysis.ablation_curves`` on the full test set and
append one row per (run, order, removal, rule) to ``pruning-<budget>.jsonl``: the curve, its area, the
neurons it can remove for at most 1 point, the unpruned accuracy, and where and how it ran (CPU, load
average at the start and the end, seconds, the full config and ablation settings).

A run whose rows are all in the log is not trained again (keyed by its config and the ablation settings);
a run that did not finish, or whose lr part "best" has not chosen yet, writes nothing: the report shows it
missing. The Markdown is ``pruning_report``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import read_config_file
from ..analysis.ablation_result import AblationResult
from ..analysis.ablation_settings import FLAG_HELP, AblationSettings
from ..config.presets import PRESETS
from ..format import duration, percent
from .paper import TABLE_PRESETS, Budget
from .runlog import append_rows, read_rows
from .specs import SWEPT_ALGOS, RunSpec, best_specs, row_name, run_identity, table_specs

Say = Callable[[str], None]
LOG_VERSION = 1  # in every key: bump when a row's meaning changes, so old rows are not reused
#: The quick strong recipes (part "best"'s), then the paper's 2x500 presets (Tables I and II): the order the
#: runs are trained in, so that a run cut short leaves the first recipes complete.
STRONG_RECIPES = ("ff-best-mnist-quick", "ff-best-fashion-quick")
PAPER_PRESETS = ("paper-mnist-2x500", "paper-fashion-mnist-2x500")
RECIPES = (*STRONG_RECIPES, *PAPER_PRESETS)
#: The part's default settings: every order (random: 5 draws), both kinds of removal, the whole network
#: (one order over the neurons of both layers), 100 % kept down to 5 %. FF is scored with its one rule.
DEFAULT_SETTINGS = AblationSettings(scopes=("network",))


def add_pruning_flags(parser: Any) -> None:
    """``reproduce``'s flags for part "pruning": ``--ablation-config FILE`` and one flag per ablation setting,
    spelled as ``python -m fgff_core ablate``'s (``AblationSettings.from_dict`` reads both)."""
    group = parser.add_argument_group("part pruning (--table pruning): ablation settings over the part's defaults")
    group.add_argument("--ablation-config", type=Path, metavar="FILE",
                       help="the ablation settings as a JSON object, as `ablate --config`; flags override it")
    defaults = DEFAULT_SETTINGS.to_dict()
    for name, text in FLAG_HELP.items():
        value = defaults[name]
        shown = ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in value) if isinstance(value, list) \
            else value
        group.add_argument("--" + name.replace("_", "-"), dest=name, default=None, metavar="VALUE",
                           help=f"{text} [default: {shown}]")


def pruning_values(args: Any) -> dict[str, Any]:
    """The ablation settings given on the command line (JSON file, then flags), checked now: a bad value is a
    ValueError naming the field before anything trains."""
    values: dict[str, Any] = {}
    if getattr(args, "ablation_config", None) is not None:
        values.update(read_config_file(args.ablation_config))
    values.update({k: getattr(args, k) for k in FLAG_HELP if getattr(args, k, None) is not None})
    pruning_settings(values)
    return values


def settings_for(algo: str, settings: AblationSettings) -> AblationSettings:
    """``settings`` for one algorithm: FF has no factors (both rules are the same), so only ``with_factors``."""
    if algo == "fgff" or "with_factors" not in settings.rules:
        return settings
    return AblationSettings.from_dict({**settings.to_dict(), "rules": ["with_factors"]})


def pruning_settings(values: Mapping[str, Any] | None = None) -> AblationSettings:
    """``DEFAULT_SETTINGS`` with ``values`` (CLI flags or a JSON config, ``AblationSettings.from_dict``) over it."""
    return AblationSettings.from_dict({**DEFAULT_SETTINGS.to_dict(), **(values or {})})


def row_key(run_key: str, layer: int | None, order: str, removal: str, rule: str) -> str:
    """A log row's key: the run's, then the scope (nothing for the whole network; ``layer1``..), order, removal
    and rule."""
    scope = "" if layer is None else f"layer{layer + 1}|"
    return f"{run_key}|{scope}{order}|{removal}|{rule}"


@dataclass(frozen=True)
class PruningRun:
    """One network to train and prune: a recipe, an algorithm, a seed, and the part's run behind it (None with
    ``reason`` where there is none yet, e.g. no lr chosen)."""

    recipe: str
    algo: str
    seed: int
    spec: RunSpec | None
    settings: AblationSettings
    reason: str = ""

    @property
    def key(self) -> str:
        """The run's key: its config (as part "best" / the tables key it) and the ablation settings."""
        if self.spec is None:
            return f"{self.recipe}|{self.algo}|seed{self.seed}|missing"
        blob = json.dumps({"version": LOG_VERSION, "cfg": run_identity(self.spec.config),
                           "settings": self.settings.to_dict()}, sort_keys=True, default=str)
        return f"{self.recipe}|{self.algo}|seed{self.seed}|{hashlib.sha1(blob.encode()).hexdigest()[:12]}"

    def row_keys(self) -> list[str]:
        """The keys of the rows a finished run writes: one per scope, order, removal and rule."""
        s = self.settings
        scopes = [None] if "network" in s.scopes else []
        if "layer" in s.scopes and self.spec is not None:
            scopes += list(range(len(self.spec.config.layers)))
        return [row_key(self.key, scope, o, r, u) for scope in scopes for o in s.orders for r in s.removals
                for u in s.rules]

    @property
    def source(self) -> str:
        """Where the training comes from, in words."""
        if self.recipe in STRONG_RECIPES:
            return "part best's test run" + (f" at lr {self.spec.config.lr:g}" if self.spec else "")
        table = next(t for t, presets in TABLE_PRESETS.items() if self.recipe in presets)
        return f"Table {'I' * int(table)} run"


def pruning_runs(budget: Budget, seeds: int, device: str, data_dir: str | None, runs_log: Path,
                 settings: AblationSettings = DEFAULT_SETTINGS) -> list[PruningRun]:
    """Every run of the part, in the order to train them: recipe by recipe (``RECIPES``), seed by seed, FF then
    FGFF. The strong recipes' lrs are those part "best" chose in ``runs_log`` (read only; nothing trains)."""
    from .execution import DataCache, run_best
    from .runlog import RunLog

    chosen: dict[tuple[str, str], float] = {}
    if any(r in budget.best.recipes for r in STRONG_RECIPES):
        best = run_best(budget, seeds, device, data_dir, RunLog(runs_log), DataCache(), say=lambda _m: None,
                        train_missing=False)
        chosen = dict(best.sweep.settled)
    specs = {(s.row, s.algo, s.seed): s for s in best_specs(budget, seeds, device, data_dir, chosen)}
    for table in ("1", "2"):  # Tables I and II's runs of the paper presets, as ``table_specs`` makes them
        for preset in TABLE_PRESETS[table]:
            if preset in PAPER_PRESETS:
                row = row_name(PRESETS[preset].config("fgff").layers)
                specs.update({(preset, s.algo, s.seed): s for s in table_specs(table, budget, seeds, device, data_dir)
                              if s.row == row})
    runs = []
    for recipe in RECIPES:
        for seed in range(seeds):
            for algo in SWEPT_ALGOS:
                spec = specs.get((recipe, algo, seed))
                reason = "" if spec else (f"part best has chosen no lr for {algo.upper()} on {recipe} in "
                                          f"{runs_log.name} yet" if recipe in budget.best.recipes else
                                          f"{recipe} is not a part best recipe of this budget")
                runs.append(PruningRun(recipe, algo, seed, spec, settings_for(algo, settings), reason))
    return runs


class PruningLog:
    """``pruning-<budget>.jsonl``: append-only, one row per (run, order, removal, rule); rows by their key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        self.reload()

    def reload(self) -> None:
        self.rows.update(read_rows(self.path))

    def done(self, run: PruningRun) -> bool:
        return run.spec is not None and all(k in self.rows for k in run.row_keys())

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Append one run's rows in one flushed write (``runlog.append_rows``)."""
        append_rows(self.path, rows)
        self.rows.update({r["key"]: r for r in rows})


def result_rows(run: PruningRun, result: AblationResult, provenance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The log rows of one pruned network: one per curve, with the run's provenance."""
    assert run.spec is not None
    cfg = run.spec.config
    rows = []
    for c in result.curves:
        rows.append({"key": row_key(run.key, c.layer, c.order, c.removal, c.rule), "run_key": run.key,
                     "scope": c.scope, "recipe": run.recipe,
                     "source": run.source, "algo": run.algo, "seed": run.seed, "dataset": cfg.dataset,
                     "layers": list(cfg.layers), "epochs": cfg.epochs, "lr": cfg.lr,
                     "sig_lr": cfg.sig_lr if cfg.trains_factors else None, "train_subset": cfg.train_subset,
                     "order": c.order, "removal": c.removal, "rule": c.rule,
                     "draws": result.settings.draws if c.order == "random" else 1, "n_neurons": c.n_neurons,
                     "unpruned_acc": c.accuracy[0], "area": c.area, "removable": c.removable(),
                     "kept": list(c.kept), "accuracy": list(c.accuracy), "spread": list(c.spread),
                     **provenance})
    return rows


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_pruning(runs: list[PruningRun], log: PruningLog, budget: str, runs_log: Path, say: Say = print,
                train_missing: bool = True) -> dict[str, str]:
    """Train and prune every run whose rows are not in ``log``. Returns {run key: why it has no rows}."""
    import torch

    from ..data.loading import DatasetNotFoundError
    from ..engine.training import train
    from ..vocabulary import RunStatus
    from .execution import DataCache
    from .provenance import cpu_model
    from .runlog import RunLog, claim

    missing = {r.key: r.reason for r in runs if r.spec is None}
    todo = [r for r in runs if r.spec is not None and not log.done(r)]
    say(f"pruning: {len(runs) - len(todo) - len(missing)} of {len(runs)} runs already in {log.path.name}; "
        f"{len(todo)} to run, {len(missing)} without a run to train")
    if not train_missing:
        missing.update({r.key: "not run yet" for r in todo})
        return missing
    data, reference = DataCache(), RunLog(runs_log)
    for n, run in enumerate(todo, 1):
        spec = run.spec
        assert spec is not None
        log.reload()
        if log.done(run):  # another process (same --out) finished it meanwhile
            continue
        claimed = claim(log.path.parent, "pruning|" + run.key)
        if claimed is None:
            missing[run.key] = "running in another process"
            say(f"{run.key}: running in another process; skipped here")
            continue
        say(f"{run.recipe} {run.algo} seed {run.seed}: training ({run.source}), then its curves")
        try:
            load_start, start = os.getloadavg(), time.perf_counter()
            try:
                dataset = data.get(spec.config)
            except DatasetNotFoundError as exc:
                missing[run.key] = f"{spec.config.dataset} not found ({str(exc).splitlines()[0]})"
                say(f"skipped: {missing[run.key]}")
                continue
            trainer, result = train(spec.config, dataset)
            trained = time.perf_counter()
            if result.status != RunStatus.DONE:  # a failed run is missing, never a number
                missing[run.key] = f"{result.status}: {result.reason or 'no reason recorded'}"
                say(f"{run.key}: {missing[run.key]}")
                continue
            from ..analysis.ablation import ablation_curves

            curves = ablation_curves(trainer.model, dataset, run.settings)
            end = time.perf_counter()
            ref = reference.get(spec.key)
            provenance = {"budget": budget, "n_train": len(dataset.y_train), "n_test": len(dataset.y_test),
                          "train_test_acc": result.test_acc,
                          "reference_key": spec.key, "reference_test_acc": ref["test_acc"] if ref else None,
                          "cpu": cpu_model(), "threads": torch.get_num_threads(),
                          "device": str(trainer.device), "load_start": [round(x, 2) for x in load_start],
                          "load_end": [round(x, 2) for x in os.getloadavg()],
                          "train_seconds": round(trained - start, 1), "ablation_seconds": round(end - trained, 1),
                          "finished_at": _now(), "settings": run.settings.to_dict(), "config": spec.config.to_dict()}
            rows = result_rows(run, curves, provenance)
            log.add(rows)
            s_row = next(r for r in rows if r["order"] == "s" and r["removal"] == "silenced")
            say(f"[{n}/{len(todo)}] {run.recipe} {run.algo} seed {run.seed}: test {percent(result.test_acc)}, "
                f"s-order area {percent(s_row['area'])}, removable {s_row['removable']}; train "
                f"{duration(trained - start)}, curves {duration(end - trained)}, load {load_start[0]:.1f}")
        finally:
            claimed.unlink(missing_ok=True)
    return missing
