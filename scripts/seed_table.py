"""Summarise CLI runs over seeds: one Markdown row per preset and algorithm, from the runs' own output.

Usage: ``python scripts/seed_table.py docs/reproduction/best-3x1000/*.json``. Each file is the output of
``python -m fgff_core train --preset P --seed S --json`` (its config names the run); a ``.time`` file
beside it (``/usr/bin/time -f "%e s process, %M KB"``) gives the whole command's seconds. A run is
named after the preset whose config it is (up to the seed); mean +- std over the seeds found.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fgff_core.config import RunConfig  # noqa: E402
from fgff_core.config.presets import preset_of  # noqa: E402
from fgff_core.reproduce.cells import Cell  # noqa: E402
from fgff_core.vocabulary import algo_label  # noqa: E402


def _process_seconds(time_file: Path) -> float | None:
    lines = time_file.read_text().splitlines() if time_file.is_file() else []
    found = [line.split()[0] for line in lines if " s process" in line]
    return float(found[-1]) if found else None


def _cell(runs: list[dict], field: str) -> str:
    """Mean +- std over the runs (each seed's value in brackets), as percent."""
    values = [r[field] for r in runs if r.get(field) is not None]
    if not values:
        return "—"
    each = ", ".join(f"{100 * v:.2f}" for v in values)
    return f"{Cell(values).fmt()} ({each})" if len(values) > 1 else each


def table(paths: list[Path]) -> str:
    groups: dict[tuple[str, str], list[dict]] = {}
    for path in paths:
        out = json.loads(path.read_text())
        config = RunConfig.from_dict(out["config"])
        time_file = path.with_suffix(".time")
        out["process_s"] = _process_seconds(time_file)
        out["seed"], out["file"] = config.seed, path.stem
        name = preset_of(config)
        label = f"`{name}`" if name else f"{config.algo} on {config.dataset} (no preset)"
        groups.setdefault((label, algo_label(config.algo)), []).append(out)
    lines = ["| preset | algorithm | seeds (runs) | test % (goodness rule) | without the factors s % | "
             "linear readout % | minutes per run (whole command) |", "|---|---|---|---|---|---|---|"]
    for (preset, algo), runs in sorted(groups.items()):
        runs.sort(key=lambda r: r["seed"])
        cell = functools.partial(_cell, runs)
        seeds = ", ".join(f"{r['seed']} ({r['file']})" for r in runs)
        minutes = [r["process_s"] / 60 for r in runs if r["process_s"] is not None]
        span = "—" if not minutes else f"{minutes[0]:.1f}" if len(minutes) == 1 else \
            f"{min(minutes):.1f}-{max(minutes):.1f}"
        no_s = cell("test_acc_no_significance") if algo == "FGFF" else "—"
        lines.append(f"| {preset} | {algo} | {seeds} | {cell('test_acc')} | {no_s} | {cell('readout_test_acc')} "
                     f"| {span} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table([Path(p) for p in sys.argv[1:]]))
