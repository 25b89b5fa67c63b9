"""The live views' polling rule (fgff_core.jobs.polling): poll while something shown is active, rerun the page
once when a status changes while polling."""

from __future__ import annotations

import pandas as pd
import pytest

from fgff_core.jobs.polling import MISSING, Polling, run_statuses
from fgff_core.vocabulary import RunStatus


@pytest.mark.parametrize("active", ["queued", "running", RunStatus.RUNNING])
def test_a_view_polls_every_n_seconds_while_one_of_its_runs_is_active(active):
    assert Polling.start(["done", active], 2.0).every == 2.0
    assert Polling.start(["done", active], 2.0).polling


@pytest.mark.parametrize("statuses", [[], ["done"], ["done", "failed", "cancelled", "interrupted"], [None],
                                      [float("nan")], [MISSING]])
def test_a_view_with_nothing_active_does_not_poll(statuses):
    polling = Polling.start(statuses, 2.0)
    assert polling.every is None and not polling.polling


def test_the_page_reruns_once_a_status_changes_while_the_view_polls():
    polling = Polling.start(["queued", "done"], 1.0)
    assert not polling.rerun_page(["queued", "done"])  # nothing new: the view alone redraws
    assert polling.rerun_page(["running", "done"])  # started: the page's pickers show the new status
    assert polling.rerun_page(["done", "done"])  # finished: the fresh page stops the timer
    assert polling.rerun_page(["queued"])  # a run deleted elsewhere
    assert not Polling.start(["running"], 1.0).rerun_page([RunStatus.RUNNING])  # enum and text are one status


def test_a_view_that_does_not_poll_never_reruns_the_page():
    assert not Polling.start(["done"], 1.0).rerun_page(["failed"])


def test_a_missing_run_is_one_status_however_it_is_spelled():
    assert not Polling.start(["running", None], 1.0).rerun_page(["running", float("nan")])


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), float("inf"), "2", True])
def test_a_bad_interval_is_refused_naming_it(seconds):
    with pytest.raises(ValueError, match="poll interval seconds must be a number > 0"):
        Polling.start(["running"], seconds)


def test_run_statuses_in_the_order_asked_with_missing_runs_marked():
    runs = pd.DataFrame({"run_id": ["b", "a"], "status": ["running", "done"]})
    assert run_statuses(runs, ["a", "gone", "b"]) == ["done", MISSING, "running"]
    assert run_statuses(pd.DataFrame(), ["a"]) == [MISSING]
