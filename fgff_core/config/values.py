"""Field values of the run config: every accepted spelling of a value becomes its canonical value.

A value arrives as CLI or URL text, a JSON number or string, or a widget value; ``parse_value`` turns it
into the canonical value and checks it against the field's metadata (``config.RunConfig``'s field
declarations), or raises ``ValueError`` naming the field and what it allows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

_Value = TypeVar("_Value")

# What a field holds, declared once in its metadata; config validation, the form, the URL
# parameters and the CLI all read it (see ``parse_value``):
#   choice    a name from ``choices`` (a tuple), or matching ``pattern``
#   int/float a number in [min, max] (``min_open``: the minimum itself is excluded)
#   int_list  comma-separated integers, each in [min, max], min_len..max_len of them
#   bool      true or false
#   path      a folder path; empty means None
# Per-field exceptions live beside them: ``optional`` (None resolves to the algorithm default),
# ``aliases`` (text spellings of a value: batch_size 'full' is 0), ``special`` (text values kept as
# text: label_value 'max'), ``requires`` (a value allowed only with other fields' values:
# normalize='authors' needs a dataset with fixed constants).
KINDS = ("choice", "int", "float", "int_list", "bool", "path")
MAX_PATH_CHARS = 4096


def parse_value(name: str, value: Any, meta: Mapping[str, Any]) -> Any:
    """``value`` of field ``name`` (described by ``meta``) as its canonical value; ``ValueError`` otherwise."""
    if value is None and (meta.get("optional") or meta["kind"] == "path"):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in meta.get("aliases", {}):
            return meta["aliases"][text.lower()]
        if text.lower() in meta.get("special", ()):
            return text.lower()
    return _PARSERS[meta["kind"]](name, value, meta)


def _parse_choice(name: str, value: Any, meta: Mapping[str, Any]) -> str:
    choices = choices_of(meta)
    text = value.strip() if isinstance(value, str) else value
    if text in choices or (isinstance(text, str) and meta.get("pattern") and re.fullmatch(meta["pattern"], text)):
        return text
    return check_choice(name, value, choices, also=meta.get("pattern_text", ""))


def check_choice(field: str, value: _Value, choices: Iterable[Any], also: str = "") -> _Value:
    """``value`` if it is one of ``choices``, else ``ValueError`` naming ``field`` and the choices, in the one
    wording every choice check uses: ``"optimizer: 'lbfgs' is not allowed; choose one of adam, adamw, sgd"``.
    ``also`` names what else is accepted, beside the list (``"cuda:N"``)."""
    allowed = tuple(choices)
    if value in allowed:
        return value
    more = f" or {also}" if also else ""
    raise ValueError(f"{field}: {short_repr(value)} is not allowed; choose one of {', '.join(map(str, allowed))}{more}")


def _number_from_text(text: str) -> float | int | None:
    """A number written in ASCII (``int('٥')`` would accept other scripts' digits), or None."""
    text = text.strip()
    if not text or not text.isascii():
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return None


def _parse_number(name: str, value: Any, meta: Mapping[str, Any]) -> int | float:
    want_int = meta["kind"] == "int"
    number = _number_from_text(value) if isinstance(value, str) else value
    ok = isinstance(number, (int, float)) and not isinstance(number, bool) and math.isfinite(number)
    if ok and want_int:
        ok = float(number).is_integer()
    if not ok:
        what = "an integer" if want_int else "a number"
        extra = "".join(f" or {a!r}" for a in meta.get("aliases", ()))
        raise ValueError(f"{name}: expected {what} in {_range_text(meta)}{extra}, got {short_repr(value)}")
    shown = number if isinstance(value, str) else value
    number = int(number) if want_int else float(number)
    lo, hi = meta["min"], meta["max"]
    if number < lo or number > hi or (meta.get("min_open") and number == lo):
        raise ValueError(f"{name}: {short_repr(shown)} is out of range; allowed {_range_text(meta)}")
    return number


def _parse_int_list(name: str, value: Any, meta: Mapping[str, Any]) -> tuple[int, ...]:
    example = "comma-separated integers like 500,500"
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace("x", ",").split(",")]
        if not value.strip() or any(not p.isascii() or not p.lstrip("-").isdigit() or len(p) > 18 for p in parts):
            raise ValueError(f"{name}: expected {example}, got {short_repr(value)}")
        value = tuple(int(p) for p in parts)
    elif isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    elif isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple) or not (meta["min_len"] <= len(value) <= meta["max_len"]):
        raise ValueError(f"{name}: expected {meta['min_len']} to {meta['max_len']} hidden layer sizes "
                         f"({example}), got {short_repr(value)}")
    for size in value:
        if isinstance(size, bool) or not isinstance(size, int) or not (meta["min"] <= size <= meta["max"]):
            raise ValueError(f"{name}: each size must be an integer in [{meta['min']}, {meta['max']}], "
                             f"got {short_repr(size)}")
    return value


_TRUE, _FALSE = ("true", "1"), ("false", "0")


def _parse_bool(name: str, value: Any, meta: Mapping[str, Any]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name}: expected true or false, got {short_repr(value)}")


def _parse_path(name: str, value: Any, meta: Mapping[str, Any]) -> str | None:
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a folder path, got {short_repr(value)}")
    if not value.strip():
        return None
    if "\x00" in value or len(value) > MAX_PATH_CHARS:
        raise ValueError(f"{name}: expected a folder path (at most {MAX_PATH_CHARS} characters, no NUL byte)")
    return value


_PARSERS = {"choice": _parse_choice, "int": _parse_number, "float": _parse_number,
            "int_list": _parse_int_list, "bool": _parse_bool, "path": _parse_path}


MAX_SHOWN_CHARS = 60


def short_repr(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    """``repr`` of a user value for an error message, cut to about ``limit`` characters so that a
    hostile megabyte (a 100 kB ``--layers``) does not end up in the message. Every message that
    echoes what a user typed or a file claimed goes through this."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (Python's limit on integer digits)
        return f"<an integer of {value.bit_length()} bits>"
    if len(text) <= limit:
        return text
    return text[:limit] + ("..." + text[0] if isinstance(value, str) else "...")  # str: its closing quote


def _range_text(meta: Mapping[str, Any]) -> str:
    lo = "(" if meta.get("min_open") else "["
    text = f"{lo}{meta['min']}, {meta['max']}]"
    for extra in meta.get("special", ()):
        text += f" or {extra!r}"
    return text


def choices_of(meta: Mapping[str, Any]) -> tuple[str, ...] | None:
    return meta.get("choices")


def check_requires(name: str, value: Any, meta: Mapping[str, Any], config: Any) -> None:
    """``ValueError`` when ``value`` of field ``name`` needs other fields of ``config`` to hold other values
    (``meta['requires']``: normalize='authors' needs a dataset with fixed constants)."""
    for other, allowed in meta.get("requires", {}).get(value, {}).items():
        if getattr(config, other) not in allowed:
            raise ValueError(f"{name}: {value!r} needs {other} to be one of {', '.join(allowed)}, "
                             f"not {getattr(config, other)!r}")
