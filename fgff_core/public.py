"""What a browser user of the app reads when something on the server is broken: a sentence, never a traceback
or a server path (issue 38). The app listens on every interface with no login (see the README), so its pages
must not map the server's folders; the details go to the server's log. No Streamlit here: pages show these.
"""

from __future__ import annotations

import logging
import re

from .jobs.ray_cluster import RayUnavailableError
from .store import StoreError, UnknownRunError

log = logging.getLogger("fgff_core.app")

ADMIN = "whoever runs this server finds the details in its log"


def server_problem(exc: BaseException) -> str:
    """Why the app cannot open its job manager or read its run store (the page shows it and stops)."""
    log.error("the app cannot use its run store or job manager: %s", exc)
    if isinstance(exc, StoreError):
        return ("The run store of this server cannot be opened: its database (runs.sqlite) is damaged, not this "
                f"app's, or in a folder the server cannot write, so no run can be shown or started; {ADMIN}.")
    if isinstance(exc, RayUnavailableError):
        return ("This server is set to train on a Ray cluster that does not answer, so no run can be shown or "
                f"started; {ADMIN}.")
    if isinstance(exc, ValueError):  # the server's environment: $FGFF_EXECUTOR, $FGFF_LIMIT_*, ... (no paths)
        return f"This server's settings are not valid, so no run can be shown or started: {exc}."
    return f"This server cannot show or start runs right now ({type(exc).__name__}); {ADMIN}."


def model_problem(run_id: str, exc: BaseException) -> str:
    """Why the trained model of ``run_id`` cannot be loaded (its checkpoint is gone, damaged or unreadable)."""
    log.warning("the model of run %s cannot be loaded: %s", run_id, exc)
    if isinstance(exc, UnknownRunError):
        why = "the run does not exist (deleted?)"
    elif isinstance(exc, ValueError):  # CheckpointError: refused by the checks of a load
        why = "its checkpoint is damaged or not one this app can read"
    else:  # StoreError (no checkpoint file), OSError
        why = "its checkpoint file is missing on the server (deleted or moved) or cannot be read"
    return f"The model of run {run_id} cannot be loaded: {why}. Train it again, or pick another run."


# An absolute path (``/...``) or one under a home folder (``~/...``) that starts a word: not ``DIR/mnist``, ``1/2`` or
# the ``//`` of a URL.
_SERVER_PATH = re.compile(r"(?<![\w.:/~-])~?/[^\s'\"`,;()\[\]<>]+")
_REPEATED = re.compile(r"<server path>(?:\s+<server path>)+")


def without_server_paths(text: str) -> str:
    """``text`` with each absolute path replaced by ``<server path>`` (a list of them by one): for text written for
    the server's log or the CLI, such as a run's failure reason, that a page shows to a browser user."""
    return _REPEATED.sub("<server path>", _SERVER_PATH.sub("<server path>", text))


def run_failure(error: str | None) -> str:
    """Why a run failed, as a browser user may read it: its stored reason without server paths."""
    return without_server_paths(error) if error else "no reason recorded"
