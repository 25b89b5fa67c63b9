"""The project's words, each defined once: run statuses (used by the store, the job manager, the pages and
the CLI) and the algorithms, with what each one has (goodness, the significance factors s) and how people
see its name. Imports nothing from fgff_core, and no torch."""

from __future__ import annotations

from enum import Enum


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


# -- algorithms ----------------------------------------------------------------------------------
ALGORITHMS = ("ff", "fgff", "bp")
# How each algorithm is named to people (tables, legends, run names, progress bars): the one place.
ALGORITHM_LABELS = {"ff": "FF", "fgff": "FGFF", "bp": "BP"}

# FF and FGFF train each layer on its own goodness (the label written into the input, a loss per layer,
# epochs per layer); BP trains the whole network end to end on a classifier head and has no goodness.
_GOODNESS_ALGORITHMS = frozenset({"ff", "fgff"})
# Of those, FGFF alone trains s; FF keeps every factor at 1 (eq. 3 then is eq. 2).
_FACTOR_TRAINING_ALGORITHMS = frozenset({"fgff"})


def has_goodness(algo: str) -> bool:
    """Whether a net of ``algo`` is trained layer by layer on goodness (FF, FGFF), not end to end (BP).
    An unknown name has none."""
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
    """The name people see for ``algo`` ("FF", "FGFF", "BP"); an unknown name is shown as given."""
    return ALGORITHM_LABELS.get(algo, algo)
