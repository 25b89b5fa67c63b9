"""Tables I-IV as Markdown, from the run log: the paper's value, ours over seeds, the difference."""

from __future__ import annotations

import os
import platform

import torch

from ..config import ALGORITHM_LABELS
from .cells import Cell, collect
from .paper import PAPER, TABLE_TITLES, Budget
from .runlog import RunLog
from .specs import RunSpec


def machine() -> str:
    """This machine in a few words, for the tables' headers."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} {platform.processor() or 'CPU'}, {os.cpu_count()} cores, {gpu}, " \
           f"torch {torch.__version__}"


def _diff(cell: Cell, paper: float, scale: float = 100.0) -> str:
    return "" if cell.mean is None else f"{cell.mean * scale - paper:+.2f}"


def _n_train(specs: list[RunSpec], log: RunLog, row: str, algo: str) -> str:
    ns = {r["n_train"] for s in specs if s.row == row and s.algo == algo and (r := log.get(s.key))}
    return ", ".join(map(str, sorted(ns))) or "—"


def accuracy_table(table: str, specs: list[RunSpec], log: RunLog, skipped: dict[str, str], budget: Budget) -> str:
    """Markdown for Table I or II (test accuracy) or III (train and test accuracy)."""
    lines = [f"### {TABLE_TITLES[table]}", "", f"Budget `{budget.name}`: {budget.description}.", ""]
    metrics = [("train_acc", "train"), ("test_acc", "test")] if table == "3" else [("test_acc", None)]
    header = "| Model | Algorithm | Paper (%) | Ours, mean ± std over seeds (%) | Seeds | Ours − paper (pp) " \
             "| Ours without significance at prediction (%) | Training samples |"
    lines += [header, "|---|---|---|---|---|---|---|---|"]
    for metric, which in metrics:
        cells = collect(specs, log, skipped, metric)
        no_sig = collect(specs, log, skipped, metric + "_no_significance")
        for (row, algo), cell in cells.items():
            paper = PAPER[table][which or row][algo]
            label = f"{row} ({which})" if which else row
            ns = "—" if algo == "bp" else no_sig[(row, algo)].fmt()
            lines.append(f"| {label} | {ALGORITHM_LABELS[algo]} | {paper:.2f} | {cell.fmt()} | {cell.n} "
                         f"| {_diff(cell, paper)} | {ns} | {_n_train(specs, log, row, algo)} |")
    return "\n".join(lines) + "\n"


def timing_table(specs: list[RunSpec], log: RunLog, skipped: dict[str, str], budget: Budget) -> str:
    """Markdown for Table IV: our seconds per epoch next to the paper's (different machines)."""
    device = next((r["device"] for s in specs if (r := log.get(s.key))), "?")
    cells = collect(specs, log, skipped, "epoch_seconds_median")
    lines = [f"### {TABLE_TITLES['4']}", "",
             f"Ours: {machine()}, device `{device}`, full 60000-sample training set, full batch for FF/FGFF "
             f"({budget.timing_epochs} epochs per layer), BP with batch 64 ({budget.timing_bp_epochs} epoch(s)); "
             "median seconds per layer-epoch (FF/FGFF) or per epoch (BP). The paper's numbers are from an "
             "RTX 4060 GPU: a different machine, so compare the ratios, not the seconds. A shared machine makes "
             "times noisy; the fastest seed is the least disturbed measurement.", "",
             "| Algorithm | Paper, RTX 4060 (s/epoch) | Ours, mean ± std over seeds (s/epoch) | Ours, fastest "
             "seed (s/epoch) | Seeds | Ours / paper | Ours relative to FF (fastest seeds) | Paper relative to FF |",
             "|---|---|---|---|---|---|---|---|"]
    ff = cells.get(("seconds", "ff"))
    for (_, algo), cell in cells.items():
        paper = PAPER["4"]["seconds"][algo]
        ratio = "" if cell.mean is None else f"{cell.mean / paper:.2f}x"
        fastest = f"{min(cell.values):.4f}" if cell.values else ""
        rel = "" if cell.mean is None or not ff or ff.mean is None else \
            f"{cell.mean / ff.mean:.3f}x ({min(cell.values) / min(ff.values):.3f}x)"
        lines.append(f"| {ALGORITHM_LABELS[algo]} | {paper:.4f} | {cell.fmt(scale=1.0, digits=4)} | {fastest} "
                     f"| {cell.n} | {ratio} | {rel} | {paper / PAPER['4']['seconds']['ff']:.3f}x |")
    return "\n".join(lines) + "\n"
