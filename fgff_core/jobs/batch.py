"""Train a list of configs through the job manager and wait for them: the CLI's and the
reproduction's way onto an executor (``--executor ray`` fans the runs over a Ray cluster).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config.schema import RunConfig
from ..store import FINAL_COLUMNS
from ..vocabulary import is_active
from .manager import JobManager


@dataclass(frozen=True)
class JobResult:
    """How one submitted run ended, read back from the store."""

    run_id: str
    status: str
    error: str | None
    device: str | None
    node: str | None
    final: dict[str, Any]  # the final metrics (FINAL_COLUMNS); None where not measured
    checkpoint: str | None  # path of the stored checkpoint, if any


def run_configs(configs: Sequence[RunConfig], executor: str, runs_dir: str | os.PathLike | None = None,
                names: Sequence[str] | None = None, say: Callable[[str], None] | None = None,
                report_every: float = 10.0, max_concurrent: int | None = None) -> list[JobResult]:
    """Submit every config (in order), wait until all have ended, and return their results.

    ``executor``: ``"local"`` or ``"ray"``; the runs are stored in ``runs_dir`` like the app's.
    ``say`` gets a progress line every ``report_every`` seconds.
    """
    with JobManager(runs_dir, executor=executor, max_concurrent=max_concurrent) as jm:
        ids = [jm.submit(c, name=None if names is None else names[i]) for i, c in enumerate(configs)]
        last = time.monotonic()
        while True:
            runs = jm.store.runs().set_index("run_id").loc[ids]
            active = int(runs["status"].map(is_active).sum())
            if not active:
                break
            if say is not None and time.monotonic() - last >= report_every:
                say(f"{len(ids) - active} of {len(ids)} runs ended; {int(runs['epochs_done'].sum())} epochs so far "
                    f"({jm.executor.__class__.__name__}, {jm.max_concurrent} at a time)")
                last = time.monotonic()
            time.sleep(0.5)
        results = []
        for run_id in ids:
            row = jm.store.run(run_id)
            checkpoint = jm.store.checkpoint_path(run_id)
            results.append(JobResult(run_id=run_id, status=row["status"], error=row["error"], device=row["device"],
                                     node=row["node"], final={c: row[c] for c in FINAL_COLUMNS},
                                     checkpoint=None if checkpoint is None else str(checkpoint)))
    return results
