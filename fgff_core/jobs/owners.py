"""Whose run is it: each browser session's owner token, the teacher's key, and who may stop or delete a run.

A browser session is an *owner*: a random token (``new_owner_token``) that the app keeps in the page's
address (``?me=``, so that a reload keeps it). Runs it submits carry it (``JobManager.submit(owner=)``), so
the per-owner limit (``Limits.max_queued_per_owner``) counts that session's runs only, and the Train page
reattaches to that session's own newest active run (``newest_active_run``), never to someone else's.

Who may cancel, delete or rename a run (``RunAccess.check``):

- its owner;
- the teacher: whoever entered the key set on the server in ``$FGFF_TEACHER_KEY`` (compared in constant
  time; the key is never shown or put in an address);
- a run with no owner (started from the command line or the Python API, or stored before runs had
  owners): anyone while the server has no teacher key (one person's own machine), only the teacher
  once it has one (a classroom server: the teacher's own runs are not the students' to stop).

A caller with no requester (``by=None``: the CLI, a script, a test) is the server's operator and may do
anything; only the pages pass who is asking.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..vocabulary import ACTIVE_STATUSES

OWNER_PARAM = "me"  # the query parameter holding a browser session's owner token
TEACHER_KEY_ENV = "FGFF_TEACHER_KEY"
TOKEN_BYTES = 16  # 128 random bits: not guessable by another student
TOKEN_CHARS = 22  # secrets.token_urlsafe(16)
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_CHARS}}}")


def new_owner_token() -> str:
    """A fresh owner token: 22 URL-safe characters (A-Z, a-z, 0-9, - and _), 128 random bits."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def check_owner_token(text: object) -> str:
    """``text`` if it is an owner token as ``new_owner_token`` makes them; ValueError naming ``me`` otherwise."""
    if not isinstance(text, str) or not _TOKEN.fullmatch(text):
        shown = text if not isinstance(text, str) or len(text) <= 40 else text[:40] + "..."
        raise ValueError(f"{OWNER_PARAM}: expected an owner token of {TOKEN_CHARS} URL-safe characters "
                         f"(A-Z, a-z, 0-9, - and _), got {shown!r}")
    return text


def owner_token_or_none(text: object) -> str | None:
    """``text`` if it is a valid owner token, else None (an address edited by hand gets a new token)."""
    try:
        return check_owner_token(text)
    except ValueError:
        return None


def newest_active_run(runs: pd.DataFrame, owner: str | None) -> str | None:
    """The id of ``owner``'s newest queued or running run in ``runs`` (the store's table, newest first), else
    None. Never another owner's run: a newcomer gets None."""
    if owner is None or runs.empty or "owner" not in runs:
        return None
    mine = runs[(runs["owner"] == owner) & runs["status"].isin(ACTIVE_STATUSES)]
    return None if mine.empty else str(mine.iloc[0]["run_id"])


@dataclass(frozen=True)
class Requester:
    """Who asks to change a run: a browser session's owner token, and whether it entered the teacher's key."""

    owner: str | None
    teacher: bool = False


class RunAccess:
    """The server's rule for who may cancel, delete or rename a run (see the module's docstring).

    Args:
        teacher_key: the key that makes a requester the teacher; None or empty: no teacher on this server.
    """

    def __init__(self, teacher_key: str | None = None) -> None:
        self._key = teacher_key or None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunAccess:
        """The rule with ``$FGFF_TEACHER_KEY`` (unset, empty or blank: no teacher key)."""
        environ = os.environ if environ is None else environ
        return cls(environ.get(TEACHER_KEY_ENV, "").strip() or None)

    def __repr__(self) -> str:  # never the key itself
        return f"RunAccess(teacher_key={'set' if self.has_teacher else 'unset'})"

    @property
    def has_teacher(self) -> bool:
        """True when the server has a teacher key."""
        return self._key is not None

    def is_teacher_key(self, entered: str | None) -> bool:
        """True when ``entered`` is the server's teacher key (constant-time; False when no key is set)."""
        if self._key is None or not entered:
            return False
        return hmac.compare_digest(entered.encode(), self._key.encode())

    def requester(self, owner: str | None, entered_key: str | None = None) -> Requester:
        """Who asks: ``owner``'s session, the teacher when ``entered_key`` is the server's key."""
        return Requester(owner, self.is_teacher_key(entered_key))

    def may_manage(self, run_owner: str | None, by: Requester | None) -> bool:
        """True when ``by`` may cancel, delete or rename a run owned by ``run_owner`` (None: no owner)."""
        if by is None or by.teacher:
            return True
        if run_owner is None:
            return not self.has_teacher
        return run_owner == by.owner

    def why_not(self, run: Mapping[str, Any], action: str) -> str:
        """The sentence saying why someone other than the owner may not ``action`` (cancel, delete, ...) ``run``."""
        run_id = run.get("run_id", "?")
        if _owner_of(run) is None:
            return (f"Run {run_id} was started on the server itself (from the command line, or before runs had "
                    f"owners): only the teacher may {action} it")
        return (f"Run {run_id} was started in another browser session: only that session or the teacher may "
                f"{action} it")

    def check(self, run: Mapping[str, Any], by: Requester | None, action: str) -> None:
        """Raise ``RunPermissionError`` (a PermissionError) saying why, when ``by`` may not ``action`` ``run``
        (a row of the run table: its ``run_id`` and ``owner``)."""
        if not self.may_manage(_owner_of(run), by):
            raise RunPermissionError(self.why_not(run, action))


def _owner_of(run: Mapping[str, Any]) -> str | None:
    """A run row's owner; a missing one (None, or NaN from a data frame) is None."""
    owner = run.get("owner")
    return owner if isinstance(owner, str) else None


class RunPermissionError(PermissionError):
    """Someone who is neither a run's owner nor the teacher asked to cancel, delete or rename it."""
