"""Numbers for people, one style each: every page, sentence, CLI line and report goes through these.

- ``percent``: an accuracy (a fraction, 0.9123) as "91.23 %";
- ``points``: a difference of two accuracies (fractions) in percentage points, signed: "+0.40 points";
- ``duration``: seconds as "107 ms", "3.2 s", "13 s", "1 min 05 s" or "2 h 03 min";
- ``size``: bytes as "512 B", "256 KiB", "1.5 MiB", "1 GiB";
- ``shorten``: a long message (an error's text in a failure reason) cut at a sentence or word end;
- ``node_id``, ``node_label``: a Ray node as "1a2b3c4d", where a run trained as "vm · 1a2b3c4d" (or "vm").

Each returns ``MISSING`` for None, NaN, infinity or something that is not a number, so a page never
shows "nan %". No torch, no pandas: any layer may import this module.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"
PERCENT_DIGITS = 2  # the digits of an accuracy in tables and metrics ("91.23 %")
POINTS_UNIT = " points"
_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, NaN, infinity, text that is not a number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def percent(value: Any, digits: int = PERCENT_DIGITS, sign: bool = False, unit: str = " %") -> str:
    """A fraction (0.9123) as a percentage ("91.23 %"); ``MISSING`` for None, NaN or non-numbers.

    ``sign=True`` writes a leading + for differences; ``unit=""`` leaves the unit to a column title. A value
    that rounds to zero is written without a minus ("+0.0", not "-0.0").
    """
    number = _finite(value)
    if number is None:
        return MISSING
    rounded = round(100.0 * number, digits) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
    return f"{rounded:{'+' if sign else ''}.{digits}f}{unit}"


def points(difference: Any, digits: int = PERCENT_DIGITS, sign: bool = True, unit: str = POINTS_UNIT) -> str:
    """A difference of two fractions in percentage points, signed ("+0.40 points", "-1.25 points").

    ``sign=False`` for a size without direction ("by 6.5 points"); ``unit=""`` for a number alone.
    """
    return percent(difference, digits, sign=sign, unit=unit)


def duration(seconds: Any) -> str:
    """Seconds for people: "0 s", "8.5 ms", "107 ms", "3.2 s", "13 s", "1 min 05 s", "2 h 03 min".

    Below a second in milliseconds, below ten seconds with one decimal, then whole seconds, minutes and
    seconds, hours and minutes. ``MISSING`` for None, NaN, a negative or a non-number.
    """
    number = _finite(seconds)
    if number is None or number < 0:
        return MISSING
    if number == 0:
        return "0 s"
    ms = 1000.0 * number
    if ms < 9.95:
        return f"{ms:.1f} ms"
    if ms < 999.5:
        return f"{ms:.0f} ms"
    if number < 9.95:
        return f"{number:.1f} s"
    if number < 59.5:
        return f"{number:.0f} s"
    whole = round(number)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(round(number / 60), 60)
    return f"{hours} h {minutes:02d} min"


def size(n_bytes: Any) -> str:
    """Bytes in binary units with up to three digits: "512 B", "256 KiB", "1.5 MiB", "1 GiB".

    ``MISSING`` for a negative or a non-number. 1048575 bytes are "1 MiB", not "1024 KiB".
    """
    value = _finite(n_bytes)
    if value is None or value < 0:
        return MISSING
    unit = 0
    while round(value) >= 1024 and unit < len(_SIZE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    text = f"{value:.0f}" if unit == 0 or value >= 100 else f"{value:.1f}".removesuffix(".0")
    return f"{text} {_SIZE_UNITS[unit]}"


ELLIPSIS = " …"


def shorten(text: str, limit: int = 300) -> str:
    """``text`` if it has at most ``limit`` characters, else cut at the last sentence end (". ", "; ", "! ",
    "? ") or, failing that, the last space in its second half, with ``ELLIPSIS``; mid-word only when the
    second half has no space (a path, a hash). The result never exceeds ``limit`` + ``len(ELLIPSIS)``."""
    if limit < 1:
        raise ValueError(f"limit: expected a positive number of characters, got {limit}")
    if len(text) <= limit:
        return text
    window = text[:limit + 1]  # a sentence end or space just after the limit counts
    half = limit // 2
    sentence = max(window.rfind(mark, half) for mark in (". ", "; ", "! ", "? "))
    if sentence >= half:
        return text[:sentence + 1] + ELLIPSIS
    space = window.rfind(" ", half)
    return (text[:space].rstrip() if space >= half else text[:limit]) + ELLIPSIS


NODE_ID_CHARS = 8  # a Ray node id (56 hex digits) is shown by its first 8, as Ray's own CLI does


def node_id(full_id: str) -> str:
    """A Ray node's id as people see it: its first ``NODE_ID_CHARS`` hex digits ("1a2b3c4d")."""
    return str(full_id)[:NODE_ID_CHARS]


def node_label(hostname: str, full_id: str | None = None) -> str:
    """Where a run trained, short enough for the Runs table at 1440 px: the machine's name, and on Ray the node's
    short id (several nodes may share a machine): "vm · 1a2b3c4d"; "vm" for a local job."""
    return f"{hostname} · {node_id(full_id)}" if full_id else hostname

