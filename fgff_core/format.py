"""Formatting numbers for people: one percentage formatter for tables, pages and Markdown."""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"


def percent(value: Any, digits: int = 2, sign: bool = False, unit: str = " %") -> str:
    """A fraction (0.9123) as a percentage ("91.23 %"); ``MISSING`` for None, NaN or non-numbers.

    ``sign=True`` writes a leading + for differences; ``unit=""`` leaves the unit to a column title.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(number):
        return MISSING
    return f"{100.0 * number:{'+' if sign else ''}.{digits}f}{unit}"
