"""Comparing runs: launch FF, FGFF, MF and BP on equal terms, aggregate their curves over seeds, tabulate.

Everything here works on plain data (configs, the store's metric frames, its run table), so the
Compare page stays a thin script and the same numbers can be computed from a notebook or a script:

- ``comparison_configs`` / ``launch_comparison``: the same data, seeds and budget for every
  algorithm; only ``algo`` differs (FF simply ignores ``sig_lr``), or, from a function such as a preset's
  ``config``, each algorithm's own settings at the same epochs (MF and BP: the preset's ``bp_overrides``).
- ``distinct_runs``: one run per (config, seed), so a repeated launch is not counted as a seed.
- ``group_runs``: runs that differ only in their seed form one group (e.g. "FF", "FGFF"), ordered
  by algorithm (FF before FGFF), so differences always read "FGFF - FF".
- ``aggregate_curves``: per group and step, mean, std, min and max of a metric over the group's
  runs, after an optional exponential moving average per run.
- ``final_metrics_table``: final metrics per group and the difference to the first group;
  ``verdict``: that difference in one sentence, measured against the spread over seeds.
- ``has_own_value``, ``without_s_only_where_trained``, ``groups_with_own_value``: a number without s
  (eq. 2) only for runs that train s; FF keeps s at 1, so its number without s repeats the one with s.
- ``config_diff``: only the config fields whose values differ between runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from ..config.choices import LEARNING_INVARIANT_FIELDS
from ..config.schema import RunConfig
from ..config.values import check_choice
from ..engine.events import EPOCH_METRIC_NAMES, EVAL_METRIC_NAMES, FINAL_METRIC_NAMES
from ..jobs.launch import plan_launch, run_key
from ..vocabulary import ALGORITHMS, algo_label, trains_factors
from .findings import difference_sentence

MAX_SEEDS = 16
# Fields that never change what is learned, so they do not split runs into groups.
NON_DEFINING_FIELDS = ("seed", *LEARNING_INVARIANT_FIELDS)
INDEX_COLUMNS = ("run_id", "layer", "epoch", "step")
# Metrics that make sense as curves over training (ids from events.py, not copies of them).
CURVE_METRICS = tuple(m for m in (*EPOCH_METRIC_NAMES, *EVAL_METRIC_NAMES)
                      if m not in INDEX_COLUMNS and m != "seconds")
# Final metrics for the table: everything RunFinished reports except its status and wall clock.
FINAL_TABLE_METRICS = tuple(m for m in FINAL_METRIC_NAMES if m not in ("status", "wall_seconds"))
# How a metric measured without s (eq. 2) is named: test_acc_no_significance, g_pos_no_significance, ...
WITHOUT_S_SUFFIX = "_no_significance"


class Submitter(Protocol):
    """What ``launch_comparison`` needs of a job manager."""

    def submit(self, config: Any, name: str | None = None, owner: str | None = None) -> str: ...


# -- launching ------------------------------------------------------------------------------------
# A comparison's starting config: one for every algorithm, or a function giving each algorithm's own.
BaseConfig = RunConfig | Mapping[str, Any] | Callable[[str], RunConfig]


def comparison_configs(base_config: BaseConfig, seeds: Sequence[int] = (0,),
                       algos: Sequence[str] = ("ff", "fgff")) -> list[RunConfig]:
    """One config per (seed, algo): the base config with only ``algo`` and ``seed`` replaced.

    ``base_config`` may be a function of the algorithm (e.g. ``Preset.config``, with the epochs fixed) giving
    each algorithm its own starting config; ``algo`` and ``seed`` are still set here. Ordered seed by seed, so
    that with a small worker pool the algorithms advance together.
    """
    seeds = _validate_seeds(seeds)
    algos = tuple(algos)
    if not algos:
        raise ValueError(f"algos: give at least one of {', '.join(ALGORITHMS)}")
    for algo in algos:
        check_choice("algos", algo, ALGORITHMS)
    if len(set(algos)) != len(algos):
        raise ValueError(f"algos: each algorithm once, got {list(algos)}")
    if callable(base_config):
        bases = {algo: RunConfig.coerce(base_config(algo)) for algo in algos}
    else:
        bases = dict.fromkeys(algos, RunConfig.coerce(base_config))
    return [bases[algo].replace(algo=algo, seed=seed) for seed in seeds for algo in algos]


class ComparisonLaunch(NamedTuple):
    run_ids: list[str]  # one per (seed, algo), in launch order: new runs and reused twins
    reused: list[str]  # the ones that were already queued or running (not submitted again)


def launch_comparison(jm: Submitter, base_config: BaseConfig, seeds: Sequence[int] = (0,),
                      algos: Sequence[str] = ("ff", "fgff"), name: str | None = None,
                      owner: str | None = None, runs: pd.DataFrame | None = None) -> ComparisonLaunch:
    """Submit one run per (seed, algo) with otherwise identical configs.

    All configs are validated before the first submission, so a bad input submits nothing. With the
    store's run table ``runs``, a run identical in config and seed to one that is queued or running
    is not submitted again: its twin is reused (a form submitted twice launches once).
    """
    configs = comparison_configs(base_config, seeds, algos)
    plan = plan_launch(runs if runs is not None else pd.DataFrame(), configs)
    prefix = name or f"compare {configs[0].dataset} {'x'.join(str(w) for w in configs[0].layers)}"
    ids = dict(plan.twins)
    for i in plan.to_submit:
        cfg = configs[i]
        ids[i] = jm.submit(cfg, name=f"{prefix} {algo_label(cfg.algo)} seed {cfg.seed}",
                           owner=owner)
    return ComparisonLaunch([ids[i] for i in range(len(configs))], list(dict.fromkeys(plan.twins.values())))


def _validate_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not 1 <= len(seeds) <= MAX_SEEDS:
        raise ValueError(f"seeds: give 1 to {MAX_SEEDS} seeds, got {len(seeds)}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s <= 2**32 - 1:
            raise ValueError(f"seeds: each seed must be an integer in [0, {2**32 - 1}], got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: each seed once, got {list(seeds)}")
    return tuple(int(s) for s in seeds)


# -- grouping -------------------------------------------------------------------------------------
def _config_dict(config: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    return RunConfig.coerce(config).to_dict()


def _defining(config: dict[str, Any]) -> tuple:
    return tuple((k, _hashable(v)) for k, v in sorted(config.items()) if k not in NON_DEFINING_FIELDS)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def group_runs(configs: Mapping[str, RunConfig | Mapping[str, Any]]) -> dict[str, str]:
    """A group label per run id: runs whose configs differ only in seed (and other fields that do
    not change learning, ``NON_DEFINING_FIELDS``) share a group.

    Labels are the algorithm ("FF", "FGFF") when that tells the groups apart, else the algorithm
    followed by the fields that differ (``"FGFF sig_lr=0.3"``). Groups are ordered by algorithm
    (``ALGORITHMS``: FF, FGFF, MF, BP), then first seen; the returned mapping follows that order.
    """
    dicts = {rid: _config_dict(cfg) for rid, cfg in configs.items()}
    keys = {rid: _defining(d) for rid, d in dicts.items()}
    distinct: list[tuple] = []
    for key in keys.values():
        if key not in distinct:
            distinct.append(key)
    distinct.sort(key=lambda k: ALGORITHMS.index(dict(k)["algo"]))  # stable: first seen within an algorithm
    rep = {key: dict(key) for key in distinct}
    varying = [f for f in rep[distinct[0]] if len({_hashable(rep[k][f]) for k in distinct}) > 1] if distinct else []
    algos = [rep[k]["algo"] for k in distinct]
    by_algo_only = len(set(algos)) == len(distinct)
    labels: dict[tuple, str] = {}
    for key in distinct:
        cfg = rep[key]
        label = algo_label(cfg["algo"])
        if not by_algo_only:
            extra = [f"{f}={_short(cfg[f])}" for f in varying if f != "algo"]
            label = " ".join([label, *extra])
        labels[key] = label
    rank = {key: i for i, key in enumerate(distinct)}
    return {rid: labels[keys[rid]] for rid in sorted(dicts, key=lambda r: rank[keys[r]])}


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def group_order(groups: Mapping[str, str]) -> list[str]:
    """The distinct group labels in the mapping's order (``group_runs``: by algorithm)."""
    return list(dict.fromkeys(groups.values()))


class DistinctRuns(NamedTuple):
    run_ids: list[str]  # one per (config, seed), in the table's order
    repeats: dict[str, str]  # a left-out run id -> the run id kept for its (config, seed)


def distinct_runs(runs: pd.DataFrame) -> DistinctRuns:
    """One run per (config, seed) among ``runs`` (rows of the run table, with ``config``): a repeated
    launch trains the same thing again and must not count as another seed. The run kept is the first
    one with a final test accuracy, else the first one."""
    kept: dict[str, str] = {}
    has_result: dict[str, bool] = {}
    order: list[str] = []
    for row in runs.to_dict("records"):
        key = run_key(row["config"])
        finished = bool(np.isfinite(pd.to_numeric(row.get("test_acc"), errors="coerce")))
        if key not in kept:
            kept[key], has_result[key] = row["run_id"], finished
            order.append(key)
        elif finished and not has_result[key]:
            kept[key], has_result[key] = row["run_id"], True
    chosen = {kept[k] for k in order}
    ids = [r for r in runs["run_id"] if r in chosen]
    repeats = {row["run_id"]: kept[run_key(row["config"])] for row in runs.to_dict("records")
               if row["run_id"] not in chosen}
    return DistinctRuns(ids, repeats)


# -- numbers without s ----------------------------------------------------------------------------
def has_own_value(metric: str, algo: str) -> bool:
    """Whether runs of ``algo`` have a number of their own for ``metric``: a metric without s (eq. 2) only
    where s is trained (``trains_factors``). FF keeps s at 1, so its number without s would repeat the one
    with s; BP has no s."""
    return not metric.endswith(WITHOUT_S_SUFFIX) or trains_factors(algo)


def without_s_only_where_trained(runs: pd.DataFrame) -> pd.DataFrame:
    """The run table ``runs`` (with ``algo``) with its numbers without s blank (NaN) in the rows of runs
    that do not train s (``has_own_value``); a copy, every other cell as it was."""
    out = runs.copy()
    columns = [c for c in out.columns if str(c).endswith(WITHOUT_S_SUFFIX)]
    if columns:
        untrained = ~out["algo"].map(trains_factors).astype(bool)
        out[columns] = out[columns].mask(untrained)
    return out


def groups_with_own_value(groups: Mapping[str, str], configs: Mapping[str, RunConfig | Mapping[str, Any]],
                          metric: str) -> dict[str, str]:
    """``groups`` (run id -> group) without the runs that have no number of their own for ``metric``
    (``has_own_value``): what ``aggregate_curves`` draws for a metric without s."""
    return {r: g for r, g in groups.items() if has_own_value(metric, RunConfig.coerce(configs[r]).algo)}


# -- curves ---------------------------------------------------------------------------------------
def ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Exponential moving average with TensorBoard's convention: 0 = raw, 0.99 = very smooth.

    Bias-corrected so the first points are not pulled towards 0.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing: {smoothing!r} is out of range; allowed [0, 1)")
    values = np.asarray(values, dtype=float)
    if smoothing == 0.0 or len(values) == 0:
        return values.copy()
    out = np.empty_like(values)
    acc, weight = 0.0, 0.0
    for i, v in enumerate(values):
        acc = smoothing * acc + (1 - smoothing) * v
        weight = smoothing * weight + (1 - smoothing)
        out[i] = acc / weight
    return out


def aggregate_curves(metrics_long: pd.DataFrame, groups: Mapping[str, str], metric: str,
                     smoothing: float = 0.0) -> pd.DataFrame:
    """Per group and step: ``mean, std, min, max, n`` of ``metric`` over the group's runs.

    ``metrics_long`` is the store's long format (run_id, layer, epoch, step, metric, value). Each
    run's curve is smoothed first (``ema``), then runs are aggregated at equal steps; a step only
    some runs have reached (a live comparison) is aggregated over those, ``n`` says how many.
    ``std`` is the sample standard deviation (0 for a single run). Columns: group, step, layer,
    epoch, mean, std, min, max, n.
    """
    check_choice("metric", metric, CURVE_METRICS)
    columns = ["group", "step", "layer", "epoch", "mean", "std", "min", "max", "n"]
    if metrics_long is None or metrics_long.empty:
        return pd.DataFrame(columns=columns)
    df = metrics_long[(metrics_long["metric"] == metric) & metrics_long["run_id"].isin(list(groups))]
    df = df.dropna(subset=["value"]).sort_values(["run_id", "step"])
    if df.empty:
        return pd.DataFrame(columns=columns)
    parts = []
    for run_id, run in df.groupby("run_id", sort=False):
        run = run.copy()
        run["value"] = ema(run["value"].to_numpy(), smoothing)
        run["group"] = groups[run_id]
        parts.append(run)
    df = pd.concat(parts, ignore_index=True)
    agg = (df.groupby(["group", "step"], sort=False)
             .agg(layer=("layer", "first"), epoch=("epoch", "first"), mean=("value", "mean"),
                  std=("value", "std"), min=("value", "min"), max=("value", "max"), n=("value", "size"))
             .reset_index())
    agg["std"] = agg["std"].fillna(0.0)
    order = {g: i for i, g in enumerate(group_order(groups))}
    agg = agg.sort_values(["group", "step"], key=lambda s: s.map(order) if s.name == "group" else s)
    return agg[columns].reset_index(drop=True)


# -- final metrics --------------------------------------------------------------------------------
def final_metrics_table(runs: pd.DataFrame, groups: Mapping[str, str],
                        metrics: Iterable[str] = FINAL_TABLE_METRICS) -> pd.DataFrame:
    """Final metrics per group: one row per metric; per group its mean over runs (and ``sd`` and
    the run count ``n`` when a group holds several runs); then ``<group> - <first group>`` for each
    other group, e.g. "FGFF - FF". Runs without a value (unfinished, failed) are left out of the
    means; ``n`` counts the runs that have one. A number without s counts only for runs that train s
    (``without_s_only_where_trained``): an FF group has none.

    ``runs`` is the store's run table (one row per run, with ``run_id``, ``algo`` and the metric columns).
    """
    metrics = [m for m in metrics if m in runs.columns]
    order = group_order(groups)
    table = without_s_only_where_trained(runs[runs["run_id"].isin(list(groups))])
    table["group"] = table["run_id"].map(groups)
    out = pd.DataFrame(index=pd.Index(metrics, name="metric"))
    means: dict[str, pd.Series] = {}
    for g in order:
        values = table.loc[table["group"] == g, metrics].apply(pd.to_numeric, errors="coerce")
        means[g] = values.mean()
        out[g] = means[g]
        if (table["group"] == g).sum() > 1:
            out[f"{g} sd"] = values.std()
            out[f"{g} n"] = values.notna().sum()
    for g in order[1:]:
        out[f"{g} - {order[0]}"] = means[g] - means[order[0]]
    return out


def verdict(runs: pd.DataFrame, groups: Mapping[str, str], metric: str = "test_acc") -> str | None:
    """The difference of two groups' mean ``metric`` (an accuracy) in one sentence, second group minus
    first (``group_runs`` puts FF first), against the spread over seeds (``findings.difference_sentence``);
    None unless there are exactly two groups and both have a final value. Runs tested on different datasets
    (the table's ``dataset`` column) get no verdict but a sentence saying why: their accuracies do not compare.
    """
    order = group_order(groups)
    if len(order) != 2 or metric not in runs:
        return None
    first, second = order
    table = runs[runs["run_id"].isin(list(groups))]
    if "dataset" in table and table["dataset"].nunique() > 1:
        names = ", ".join(sorted(table["dataset"].astype(str).unique()))
        return (f"No verdict: these runs were tested on different datasets ({names}), so their accuracies do not "
                "compare; pick runs of one dataset.")
    values = {g: pd.to_numeric(table.loc[table["run_id"].map(groups) == g, metric], errors="coerce").dropna()
              for g in order}
    if any(v.empty for v in values.values()):
        return None
    return difference_sentence(first, values[first].tolist(), second, values[second].tolist())


# -- configs --------------------------------------------------------------------------------------
def config_diff(configs: Mapping[str, RunConfig | Mapping[str, Any]]) -> pd.DataFrame:
    """The fields whose values differ between the given configs: rows = fields, columns = the
    mapping's keys (run ids or labels). Empty (no rows) when all configs are equal."""
    dicts = {key: _config_dict(cfg) for key, cfg in configs.items()}
    if not dicts:
        return pd.DataFrame()
    fields = list(next(iter(dicts.values())))
    differing = [f for f in fields if len({_hashable(d[f]) for d in dicts.values()}) > 1]
    data = {key: [_short(d[f]) if isinstance(d[f], (list, tuple)) else d[f] for f in differing]
            for key, d in dicts.items()}
    return pd.DataFrame(data, index=pd.Index(differing, name="field"), dtype=object)
