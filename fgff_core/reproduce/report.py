"""Tables I-IV as Markdown, from the run log: the paper's value, ours over seeds, the difference."""

from __future__ import annotations

import os
import platform
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from .._files import atomic_write
from ..vocabulary import algo_label, has_factors
from .cells import Cell, collect
from .paper import AUTHORS_FF_AT_LR_006, PAPER, TABLE_TITLES, VERDICT_MARGIN_PP, Budget
from .provenance import (
    cpu_cell,
    cpu_counts,
    ff_lr_sentence,
    loss_sentence,
    machine_word,
    seconds_sentence,
    sig_lr_sentence,
)
from .runlog import RunLog
from .specs import RunSpec


def machine() -> str:
    """This machine in a few words, for the tables' headers."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} {platform.processor() or 'CPU'}, {os.cpu_count()} cores, {gpu}, " \
           f"torch {torch.__version__}"


@dataclass(frozen=True)
class Verdict:
    """How one cell compares with the paper: within ``VERDICT_MARGIN_PP`` points, above or below."""

    kind: str  # "within", "above", "below"
    diff_pp: float  # ours (mean over seeds) minus the paper, in points
    std_pp: float | None  # our spread over seeds, in points (None: one seed)

    def __str__(self) -> str:
        spread = "one seed" if self.std_pp is None else f"seed std {self.std_pp:.2f}"
        if self.kind == "within":
            return f"within {VERDICT_MARGIN_PP:g} pp ({self.diff_pp:+.2f}, {spread})"
        return f"{self.kind} by {abs(self.diff_pp):.2f} pp ({spread})"


def verdict(cell: Cell, paper: float) -> Verdict | None:
    """The cell's verdict against the paper's value (percent); None when the cell has no runs yet."""
    if cell.mean is None:
        return None
    diff = cell.mean * 100 - paper
    kind = "within" if abs(diff) <= VERDICT_MARGIN_PP else ("above" if diff > 0 else "below")
    return Verdict(kind, diff, None if cell.std is None else cell.std * 100)


def _diff(cell: Cell, paper: float, scale: float = 100.0) -> str:
    return "" if cell.mean is None else f"{cell.mean * scale - paper:+.2f}"


def _run_facts(specs: list[RunSpec], log: RunLog, row: str, algo: str) -> tuple[str, str, str, str]:
    """Training samples, epochs, the median wall seconds per run and the machine of one cell, as table text."""
    rows = [r for s in specs if s.row == row and s.algo == algo and (r := log.get(s.key))]
    if not rows:
        return "—", "—", "—", "—"
    first = " (the first, in file order)" if any(r["config"].get("train_subset_order") == "first" for r in rows) else ""
    return (", ".join(map(str, sorted({r["n_train"] for r in rows}))) + first,
            ", ".join(map(str, sorted({r["epochs"] for r in rows}))),
            f"{statistics.median(r['wall_seconds'] for r in rows):.0f}", cpu_cell(rows))


def provenance_lines(rows: list[dict], log: RunLog) -> list[str]:
    """The caption lines every table of runs carries, each computed from its rows: loss, the lrs' provenance,
    the CPUs (or GPUs) and how the seconds were measured."""
    sentences = [loss_sentence(rows), ff_lr_sentence(rows, log.rows.values()), sig_lr_sentence(rows),
                 f"{machine_word(rows, plural=True)}: {cpu_counts(rows)}." if rows else "",
                 seconds_sentence(rows) if rows else ""]
    return [text for text in sentences if text]


def _ff_note(table: str) -> list[str]:
    if table not in AUTHORS_FF_AT_LR_006:
        return []
    at_006 = " / ".join(f"{v:.2f}" for v in AUTHORS_FF_AT_LR_006[table].values())
    sizes = " / ".join(AUTHORS_FF_AT_LR_006[table])
    return ["", "The paper's FF column is the authors' \"FF (lr tuned)\" (the tuned lr is not stated); our FF runs "
                f"use lr 0.06, at which the authors' README gives FF {at_006} % ({sizes}). Verdicts for FF compare "
                "with the paper's (tuned) column."]


def accuracy_table(table: str, specs: list[RunSpec], log: RunLog, skipped: dict[str, str], budget: Budget) -> str:
    """Markdown for Table I or II (test accuracy) or III (train and test accuracy), with a verdict per cell."""
    lines = [f"### {TABLE_TITLES[table]}", "", f"Budget `{budget.name}`: {budget.description}.", ""]
    metrics = [("train_acc", "train"), ("test_acc", "test")] if table == "3" else [("test_acc", None)]
    rows = [r for s in specs if (r := log.get(s.key))]
    header = "| Model | Algorithm | Paper (%) | Ours, mean ± std over seeds (%) | Seeds | Ours − paper (pp) " \
             f"| Verdict (±{VERDICT_MARGIN_PP:g} pp) | Ours without significance at prediction (%) " \
             f"| Training samples | Epochs (per layer for FF/FGFF) | Seconds per run (median) | {machine_word(rows)} |"
    lines += [header, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    kinds: list[str] = []
    for metric, which in metrics:
        cells = collect(specs, log, skipped, metric)
        no_sig = collect(specs, log, skipped, metric + "_no_significance")
        for (row, algo), cell in cells.items():
            paper = PAPER[table][which or row][algo]
            label = f"{row} ({which})" if which else row
            ns = no_sig[(row, algo)].fmt() if has_factors(algo) else "—"
            found = verdict(cell, paper)
            kinds += [found.kind] if found else []
            n_train, epochs, seconds, cpu = _run_facts(specs, log, row, algo)
            lines.append(f"| {label} | {algo_label(algo)} | {paper:.2f} | {cell.fmt()} | {cell.n} "
                         f"| {_diff(cell, paper)} | {found or ''} | {ns} | {n_train} | {epochs} | {seconds} | {cpu} |")
    if kinds:
        lines += ["", f"Verdicts: {kinds.count('within')} within {VERDICT_MARGIN_PP:g} points of the paper, "
                      f"{kinds.count('above')} above, {kinds.count('below')} below, of {len(kinds)} cells with runs."]
    lines += _ff_note(table)
    lines += ["", " ".join(provenance_lines(rows, log))] if rows else []
    return "\n".join(lines) + "\n"


def timing_table(specs: list[RunSpec], log: RunLog, skipped: dict[str, str], budget: Budget) -> str:
    """Markdown for Table IV: our seconds per epoch next to the paper's (different machines)."""
    rows = [r for s in specs if (r := log.get(s.key))]
    device = rows[0]["device"] if rows else "?"
    where = f"{machine_word(rows)} ({cpu_counts(rows)})" if any(r.get("gpu") for r in rows) else \
        f"2-core x86_64 CPU ({cpu_counts(rows) if rows else 'no runs yet'}), no GPU"
    cells = collect(specs, log, skipped, "epoch_seconds_median")
    lines = [f"### {TABLE_TITLES['4']}", "",
             f"Ours: {where}, device `{device}`, "
             "full 60000-sample training set, full batch for FF/FGFF "
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
        lines.append(f"| {algo_label(algo)} | {paper:.4f} | {cell.fmt(scale=1.0, digits=4)} | {fastest} "
                     f"| {cell.n} | {ratio} | {rel} | {paper / PAPER['4']['seconds']['ff']:.3f}x |")
    return "\n".join(lines) + "\n"


_INCLUDE = re.compile(r"(<!-- include (?P<path>\S+) -->\n)(?P<body>.*?)(<!-- end include -->)", re.S)


def refresh_includes(doc: Path) -> int:
    """Replace each ``<!-- include PATH -->`` ... ``<!-- end include -->`` block of ``doc`` with the file at
    PATH (relative to ``doc``), less its generated-by comment and with its relative links made relative to
    ``doc``. Returns how many blocks were refreshed."""
    text = doc.read_text()

    def body(match: re.Match) -> str:
        path = doc.parent / match["path"]
        if not path.exists():  # not written yet: say so
            return f"{match[1]}*Not written yet: `{match['path']}`.*\n{match[4]}"
        included = re.sub(r"\A<!--.*?-->\n\n", "", path.read_text(), flags=re.S)
        folder = Path(match["path"]).parent.as_posix()
        if folder != ".":  # links relative to the included file: make them relative to the doc
            included = re.sub(r"\]\((?![a-z]+:|/|#)", f"]({folder}/", included)
        return match[1] + included.rstrip("\n") + "\n" + match[4]

    new, count = _INCLUDE.subn(body, text)
    atomic_write(doc, new)
    return count
