"""When a page's live view redraws itself: the one polling rule of the app (``app_pages._shared.live_view``).

A live view shows things that may still change, each as a run status (``fgff_core.vocabulary``): runs
queued or training, a t-SNE map being computed, the lesson's training while it plays. While any of them is
active the view reruns on its own every ``seconds``; a view with nothing active does not poll. When the
statuses change while it polls (a run started, finished or failed), the whole page reruns once, so what is
drawn outside the view (run pickers, the epoch slider, final numbers) catches up; the fresh page takes a new
snapshot, which stops the timer once nothing is active.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from ..vocabulary import is_active

MISSING = ""  # the status of a run that is not in the table (deleted elsewhere): not active


def _status(value: object) -> str:
    return str(value) if isinstance(value, str) else MISSING


@dataclass(frozen=True)
class Polling:
    """What a live view showed when its page was drawn, and how often it reruns on its own."""

    statuses: tuple[str, ...]
    every: float | None  # seconds between the view's own reruns; None: it does not poll

    @classmethod
    def start(cls, statuses: Iterable[object], seconds: float) -> Polling:
        """The view polls every ``seconds`` (a number > 0) while one of ``statuses`` is active."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds) \
                or seconds <= 0:
            raise ValueError(f"poll interval seconds must be a number > 0, got {seconds!r}")
        shown = tuple(_status(s) for s in statuses)
        return cls(shown, float(seconds) if any(is_active(s) for s in shown) else None)

    @property
    def polling(self) -> bool:
        return self.every is not None

    def rerun_page(self, statuses_now: Iterable[object]) -> bool:
        """Whether the page must rerun: the view polls and a status changed since the page was drawn."""
        return self.polling and tuple(_status(s) for s in statuses_now) != self.statuses


def run_statuses(runs: pd.DataFrame, run_ids: Iterable[str]) -> list[str]:
    """The status of each run in ``run_ids`` (in order) in a run table (``RunStore.runs()``); ``MISSING`` for a
    run the table does not hold."""
    if runs.empty:
        return [MISSING for _ in run_ids]
    status = dict(zip(runs["run_id"], runs["status"]))
    return [_status(status.get(r)) for r in run_ids]
