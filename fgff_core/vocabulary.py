"""The project's words, each defined once: run statuses (used by the store, the job manager, the pages and
the CLI), how a run stopped early ends (its cancel flag's status and the sentence stored with it) and the
algorithms, with what each one has (goodness, the significance factors s) and how people
see its name. Imports nothing from fgff_core, and no torch."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class RunStatus(str, Enum):
    """Where a stored run is in its life. A ``str`` subclass: stored and compared as its value."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the server stopped while it was queued or running

    def __str__(self) -> str:
        return self.value


#: Statuses of runs that are waiting or training: their rows may still change.
ACTIVE_STATUSES: frozenset[RunStatus] = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
#: Statuses that never change again.
FINISHED_STATUSES: frozenset[RunStatus] = frozenset(set(RunStatus) - ACTIVE_STATUSES)


def is_active(status: str) -> bool:
    return status in {s.value for s in ACTIVE_STATUSES}


# -- runs stopped early ---------------------------------------------------------------------------
# Cancel flag values in runs.cancel_requested: nobody asked the run to stop, a user did, the server is stopping.
CANCEL_NONE, CANCEL_USER, CANCEL_SHUTDOWN = 0, 1, 2


class RunEnd(NamedTuple):
    """A final status and the reason stored with it (None: nothing to explain, e.g. a user's cancel)."""

    status: RunStatus
    reason: str | None = None


#: A running run stopped at once with ``kill`` (its worker killed, not asked to stop after the epoch).
KILLED = RunEnd(RunStatus.CANCELLED, "killed on request before the epoch ended")


def stopped(flag: int, *, started: bool = True, how: str | None = None) -> RunEnd:
    """How a run that stopped early ends, from its cancel flag: the one place that turns a flag into a status
    and says why.

    A user's cancel (or no flag at all: a run cancelled by its executor before it asked) ends ``cancelled``
    with no reason. The server stopping (``CANCEL_SHUTDOWN``) ends it ``interrupted``, with a sentence saying
    whether it had ``started`` and, in brackets, ``how`` it was stopped (e.g. how its worker ended, or that
    it was found on restart), and that it can be resubmitted.
    """
    if flag in (CANCEL_NONE, CANCEL_USER):
        return RunEnd(RunStatus.CANCELLED)
    if not started:
        return RunEnd(RunStatus.INTERRUPTED, "the server stopped before this run started; resubmit it")
    detail = f" ({how})" if how else ""
    return RunEnd(RunStatus.INTERRUPTED, f"the server stopped while this run was running{detail}; resubmit it to "
                                         "train again")


# -- algorithms ----------------------------------------------------------------------------------
ALGORITHMS = ("ff", "fgff", "mf", "bp")
# How each algorithm is named to people (tables, legends, run names, progress bars): the one place.
ALGORITHM_LABELS = {"ff": "FF", "fgff": "FGFF", "mf": "MF", "bp": "BP"}

# FF, FGFF and MF (Mono-Forward) train each layer on its own local loss (no gradient crosses layers, epochs per
# layer, one event per layer and epoch); BP trains the whole network end to end on a classifier head.
_LAYER_LOCAL_ALGORITHMS = frozenset({"ff", "fgff", "mf"})
# Of those, FF and FGFF train on goodness (the label written into the input, positive and negative data);
# MF trains each layer's projection to class scores by cross-entropy and has no goodness in that sense.
_GOODNESS_ALGORITHMS = frozenset({"ff", "fgff"})
# Of those, FGFF alone trains s; FF keeps every factor at 1 (eq. 3 then is eq. 2).
_FACTOR_TRAINING_ALGORITHMS = frozenset({"fgff"})


def trains_locally(algo: str) -> bool:
    """Whether ``algo`` trains each layer on its own local loss (FF, FGFF, MF), its ``epochs`` counted per
    layer, not the whole network end to end (BP). An unknown name does not."""
    return algo in _LAYER_LOCAL_ALGORITHMS


def has_goodness(algo: str) -> bool:
    """Whether a net of ``algo`` is trained layer by layer on goodness (FF, FGFF): the label written into the
    input, positive and negative data, the prediction rule trying every label. MF (class scores by
    cross-entropy, one pass) and BP (end to end) have none. An unknown name has none."""
    return algo in _GOODNESS_ALGORITHMS


def has_factors(algo: str) -> bool:
    """Whether a net of ``algo`` has significance factors s at all (FF, FGFF; FF's stay 1): s weighs each
    neuron's share of the goodness, so exactly the nets with goodness have them."""
    return has_goodness(algo)


def trains_factors(algo: str) -> bool:
    """Whether ``algo`` trains s (FGFF only). Only then does a number without s (eq. 2) differ from the one
    with s: FF's factors stay 1, so its accuracy without s repeats its accuracy."""
    return algo in _FACTOR_TRAINING_ALGORITHMS


def algo_label(algo: str) -> str:
    """The name people see for ``algo`` ("FF", "FGFF", "MF", "BP"); an unknown name is shown as given."""
    return ALGORITHM_LABELS.get(algo, algo)
