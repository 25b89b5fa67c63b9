"""Where and how the logged runs ran, read from their rows, so that a table's caption cannot drift from its log.

Each fact here is computed from run-log rows (``runs-<budget>.jsonl``), never typed into prose:

- the CPU of a row: its own ``cpu`` field (written since rows record it, ``cpu_model``), else the CPU that the
  sessions' notes name for the time the row finished (``CPU_WINDOWS``), else "CPU not recorded"; the machine of a
  row (``row_machine``): its GPU where it trained on one (its ``gpu`` field, ``gpu_model``), else its CPU;
- the losses trained (the paper's hinge loss, eq. (1), against the authors' softplus and SymBa);
- where FF's lr came from: the paper presets' lr, and the only FF lr sweep at the paper's settings, the study's
  (its dataset, size and chosen lr at the sweep's budget, as in ``cells.best_lr``: ties go to the larger lr);
- the significance factors' lr (fixed, never swept, unless the rows or part "siglr"'s rows say otherwise);
- how the seconds were measured (the load of a row is in the log only where the row has ``load_avg``).

Torch-free: the tables' captions and the tests import it without the engine.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.registry import DATASETS

Row = dict[str, Any]

AVX512 = "AVX-512 EPYC"
ZEN3 = "Zen 3 EPYC"
NOT_RECORDED = "CPU not recorded"
#: The CPU models this project's runs used, in full, for the set-up of docs/REPRODUCTION.md.
CPU_NAMES = {AVX512: "AMD EPYC with AVX-512 and bf16 instructions, 2 MB L2 per core (sessions 1-4)",
             ZEN3: "AMD EPYC Zen 3 (family 25 model 1), AVX2 only, 1 MB L2 per core (sessions 5-7)"}


@dataclass(frozen=True)
class CpuWindow:
    """A time span (ISO UTC, start inclusive, end exclusive) whose rows ran on ``cpu``, and who says so."""

    start: str
    end: str
    cpu: str
    source: str


# From docs/reproduction/tuning-best.md (sessions 1-4 on 2026-11-27 and 2026-12-02 up to 16:10 UTC: the AVX-512
# EPYC; session 5 from 17:16 UTC and session 7 on 2026-12-03: the Zen 3 EPYC) and benchmarks/RESULTS.md
# (History: the AVX-512 CPU on 2026-11-27). The rows of 2026-12-06 (the study and part best at `full`) name no
# CPU and no note of that day does: they stay "not recorded".
CPU_WINDOWS = (
    CpuWindow("2026-11-27T00:00", "2026-12-02T16:30", AVX512, "tuning log, sessions 1-4"),
    CpuWindow("2026-12-02T17:00", "2026-12-04T00:00", ZEN3, "tuning log, sessions 5 and 7"),
)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """This machine's CPU in a few words for a new log row: model name, family/model, AVX-512 or not."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return NOT_RECORDED
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    avx = "AVX-512" if "avx512f" in fields.get("flags", "").split() else "no AVX-512"
    return f"{fields.get('model name', 'CPU')} (family {fields.get('cpu family', '?')} model " \
           f"{fields.get('model', '?')}, {avx}, {os.cpu_count()} logical CPUs)"


def gpu_model(device: str) -> str | None:
    """The GPU that ``device`` ("cuda", "cuda:1") is, by its name ("NVIDIA H100 80GB HBM3"); None for a CPU."""
    if not str(device).startswith("cuda"):
        return None
    import torch  # here only: the captions read this module without torch

    return str(torch.cuda.get_device_name(torch.device(device)))


def machine_fields(threads: int, device: str = "cpu") -> Row:
    """What a new log row records about where it ran: the CPU, the GPU of a run on ``device`` "cuda" (None on a
    CPU), torch's thread count, and the 1-minute load average when the run finished (the load of the whole
    machine, this run included)."""
    return {"cpu": cpu_model(), "gpu": gpu_model(device), "threads": threads,
            "load_avg": round(os.getloadavg()[0], 2)}


#: A CPU that rows record in full (``cpu_model``'s words) and that is one of the kinds named above.
RECORDED_KINDS = {"family 25 model 1, no AVX-512": ZEN3}


def row_cpu(row: Row) -> str:
    """The CPU a logged run ran on: its own field (the named kind where ``RECORDED_KINDS`` knows it), else the
    notes' window for its time, else not recorded."""
    if row.get("cpu"):
        cpu = str(row["cpu"])
        return next((kind for words, kind in RECORDED_KINDS.items() if words in cpu), cpu)
    finished = str(row.get("finished_at", ""))[:16]
    return next((w.cpu for w in CPU_WINDOWS if w.start <= finished < w.end), NOT_RECORDED)


def row_machine(row: Row) -> str:
    """What a logged run computed on: its GPU where it trained on one, else its CPU (``row_cpu``)."""
    return str(row["gpu"]) if row.get("gpu") else row_cpu(row)


def machine_word(rows: list[Row], plural: bool = False) -> str:
    """What the machines of ``rows`` are, for a column or a caption: "CPU", "GPU" or "CPU or GPU" ("CPUs", ...)."""
    gpus = {bool(row.get("gpu")) for row in rows}
    word = "GPU" if gpus == {True} else "CPU or GPU" if len(gpus) > 1 else "CPU"
    return word.replace("CPU", "CPUs").replace("GPU", "GPUs").replace(" or ", " and ") if plural else word


def _seeds(seeds: Iterable[int]) -> str:
    seeds = sorted(set(seeds))
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def cpu_cell(rows: list[Row]) -> str:
    """Table text for the machines of one cell's runs (``row_machine``): "Zen 3 EPYC", or each with its seeds
    where they differ."""
    by_cpu: dict[str, list[int]] = {}
    for row in rows:
        by_cpu.setdefault(row_machine(row), []).append(int(row["seed"]))
    if not by_cpu:
        return "—"
    if len(by_cpu) == 1:
        return next(iter(by_cpu))
    return "; ".join(f"{cpu} ({_seeds(seeds)})" for cpu, seeds in sorted(by_cpu.items(), key=lambda i: min(i[1])))


def cpu_counts(rows: list[Row]) -> str:
    """"Zen 3 EPYC 12 runs, CPU not recorded 3 runs": every machine of ``rows`` (``row_machine``) with how many
    ran on it."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row_machine(row)] = counts.get(row_machine(row), 0) + 1
    return ", ".join(f"{cpu} {n} run{'s' if n > 1 else ''}" for cpu, n in sorted(counts.items()))


def _losses(rows: list[Row]) -> list[str]:
    return sorted({str(r["config"].get("loss")) for r in rows if r["algo"] != "bp"})


def loss_sentence(rows: list[Row]) -> str:
    """Which losses the FF/FGFF runs of ``rows`` trained, and whether the paper's hinge loss is among them."""
    losses = _losses(rows)
    if not losses:
        return ""
    names = " and ".join(f"`{loss}`" for loss in losses)
    whose = " (the authors' code's)" if losses == ["softplus"] else ""
    hinge = "" if "hinge" in losses else "; the paper's hinge loss, eq. (1), was never trained"
    return f"Every FF/FGFF run here trained the {names} loss{'es' if len(losses) > 1 else ''}{whose}{hinge}."


def sig_lr_sentence(rows: list[Row], swept: Iterable[str] = ()) -> str:
    """The significance factors' lr over ``rows``: fixed when every FGFF row has the same, and never swept unless
    ``swept`` names recipes of these rows whose sig lr part "siglr" swept (``siglr_recipes``)."""
    lrs = sorted({float(r["config"]["sig_lr"]) for r in rows if r["algo"] == "fgff"})
    swept = list(swept)
    if not lrs:
        return ""
    if len(lrs) == 1:
        fixed = f"FGFF's significance factors train at lr {lrs[0]:g} in every run here (the authors'); "
        if swept:
            return fixed + "part \"siglr\" sweeps that lr on " + ", ".join(f"`{r}`" for r in swept) + \
                " at FGFF's lr chosen here (its own section), not on the other recipes."
        return fixed + "that lr was never swept."
    return "FGFF's significance factors train at lr " + ", ".join(f"{lr:g}" for lr in lrs) + "."


def siglr_recipes(log_rows: Iterable[Row]) -> list[str]:
    """The recipes whose significance lr part "siglr" swept in a log: its sweep rows are named after the recipe
    (``specs.siglr_sweep_row``)."""
    return sorted({str(r["row"]).split(" ", 1)[0] for r in log_rows
                   if r["part"] == "siglr" and r.get("test_on") == "validation"})


@dataclass(frozen=True)
class StudyChoice:
    """FF's lr chosen by the study's sweep (validation, mean over seeds), and on what it was swept."""

    lr: float
    dataset: str
    size: str
    n_train: int
    epochs: int


def study_ff_choice(log_rows: Iterable[Row]) -> StudyChoice | None:
    """FF's best lr in the study's sweep ("sweep lr=..." rows; ties: the larger lr); None without a sweep."""
    runs = [r for r in log_rows if r["part"] == "study" and r["algo"] == "ff" and r["row"].startswith("sweep lr=")]
    if not runs:
        return None
    by_lr: dict[float, list[float]] = {}
    for r in runs:
        by_lr.setdefault(float(r["config"]["lr"]), []).append(float(r["test_acc"]))
    lr = max((statistics.fmean(v), lr) for lr, v in by_lr.items())[1]
    first = runs[0]
    layers = first["layers"]
    size = f"{len(layers)}x{layers[0]}" if len(set(layers)) == 1 else "x".join(map(str, layers))
    return StudyChoice(lr, first["dataset"], size, int(first["n_train"]),
                       int(first["epochs"]))


def _dataset(name: str) -> str:
    return DATASETS[name].title.split(" (")[0] if name in DATASETS else name


def ff_lr_sentence(rows: list[Row], log_rows: Iterable[Row]) -> str:
    """Where the lr of the FF runs in ``rows`` came from: the presets', and the one sweep that tuned FF's lr."""
    lrs = sorted({float(r["config"]["lr"]) for r in rows if r["algo"] == "ff"})
    if not lrs:
        return ""
    text = f"FF's lr in every FF cell here: {', '.join(f'{lr:g}' for lr in lrs)}, the paper presets' (not tuned " \
           "for these cells)"
    choice = study_ff_choice(log_rows)
    if choice is None:
        return text + "; no FF lr sweep at the paper's settings is in this log."
    return (text + f"; this log's only FF lr sweep at the paper's settings is the study's, on "
                   f"{_dataset(choice.dataset)} {choice.size} ({choice.n_train} training samples), which chose "
                   f"{choice.lr:g} at {choice.epochs} epochs per layer.")


def seconds_sentence(rows: list[Row]) -> str:
    """How the seconds of ``rows`` were measured: the load where rows record it, else that the log does not."""
    loads = [float(r["load_avg"]) for r in rows if r.get("load_avg") is not None]
    if len(loads) == len(rows) and loads:
        return f"Seconds: wall time per run; the 1-minute load average when each run finished: " \
               f"{min(loads):.1f}-{max(loads):.1f}."
    return ("Seconds: wall time per run as logged, on a shared 2-core CPU with other runs and often a test suite "
            "beside it; the log does not record the load, so they are not timings of an idle machine.")


def seed_pairs(ff: dict[int, float], fgff: dict[int, float]) -> tuple[int, int]:
    """(seeds where FGFF is ahead of FF, seeds both have): the same seed of the same recipe compared."""
    common = sorted(set(ff) & set(fgff))
    return sum(fgff[s] > ff[s] for s in common), len(common)
