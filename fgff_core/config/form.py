"""The run config as a form and as URL query parameters, derived from ``RunConfig``'s schema.

The app draws one widget per ``FormField`` (a select for choice fields, a toggle for booleans, a
number box with the schema's range for numbers, a text box otherwise), so a field added to
``config.py`` appears in the form with its help text and range. Query parameters hold only the
values that differ from the algorithm's defaults, so a shared link stays short and reproduces the
form exactly. No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .presets import PRESETS
from .schema import RunConfig, config_fields, field_choices, parse_field
from .values import check_choice

# Shown first; every other field goes under "Advanced". Grouping only: ranges and help come from the schema.
BASIC_FIELDS = ("algo", "dataset", "layers", "epochs", "batch_size", "lr", "sig_lr", "threshold", "seed")


@dataclass(frozen=True)
class FormField:
    name: str
    widget: str  # "select" | "toggle" | "int" | "float" | "text"
    label: str
    help: str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    basic: bool = False


# The widget that fits each field kind (see config_values.KINDS); a choice field is a select.
_WIDGETS = {"choice": "select", "bool": "toggle", "int": "int", "float": "float"}


def _widget(f) -> str:
    kind = f.metadata["kind"]
    if kind == "float" and f.metadata.get("special"):
        return "text"  # label_value: a number or 'max'
    return _WIDGETS.get(kind, "text")  # int_list (N,N,...) and path are text boxes


def form_fields() -> list[FormField]:
    """One entry per ``RunConfig`` field, in schema order, with the widget that fits it."""
    out = []
    for f in config_fields():
        meta = f.metadata
        widget = _widget(f)
        numeric = widget in ("int", "float")
        out.append(FormField(
            name=f.name, widget=widget, label=f.name.replace("_", " "), help=meta.get("help", ""),
            choices=field_choices(f.name),
            min=meta.get("min") if numeric else None, max=meta.get("max") if numeric else None,
            basic=f.name in BASIC_FIELDS))
    return out


def to_widget_value(field: FormField, value: Any) -> Any:
    """A config value as its widget shows it (layers as ``100,100``, numbers as numbers)."""
    if field.widget == "text":
        return _to_text(value)
    if field.widget == "int":
        return int(value)
    if field.widget == "float":
        return float(value)
    return value


def config_from_widgets(values: Mapping[str, Any]) -> RunConfig:
    """Build and validate a ``RunConfig`` from widget values; ``ValueError`` names the bad field."""
    return RunConfig.from_dict({k: v for k, v in values.items()})


def _defaults_for(algo: str) -> dict[str, Any]:
    try:
        return RunConfig(algo=algo).to_dict()
    except ValueError:
        return RunConfig().to_dict()


def config_to_params(config: RunConfig) -> dict[str, str]:
    """The fields that differ from the defaults (for this algorithm), as query-parameter strings."""
    defaults = _defaults_for(config.algo)
    out: dict[str, str] = {}
    for name, value in config.to_dict().items():
        if name == "algo" and value != RunConfig().algo or name != "algo" and value != defaults[name]:
            out[name] = _to_text(value)
    return out


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)


def parse_param(name: str, text: str) -> Any:
    """One query-parameter string back to the field's value; ``ValueError`` naming the field if it is not one."""
    return parse_field(name, text)


def config_from_params(params: Mapping[str, Any]) -> RunConfig:
    """A ``RunConfig`` from query parameters; keys that are not config fields (``run``, ...) are ignored.

    Raises ``ValueError`` naming the first bad field.
    """
    names = {f.name for f in config_fields()}
    values = {}
    for key, raw in params.items():
        if key in names:
            values[key] = parse_param(key, first_value(raw))
    return RunConfig.from_dict(values)


def first_value(raw: Any) -> str:
    """A query parameter as text (a repeated parameter keeps its last value)."""
    return str(raw[-1] if isinstance(raw, (list, tuple)) else raw)


def int_param(params: Mapping[str, Any], name: str, default: int, lo: int, hi: int, errors: list[str]) -> int:
    """An integer query parameter in [lo, hi]; a bad one adds a message to ``errors`` and gives ``default``."""
    if name not in params:
        return default
    raw = first_value(params[name])
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    if value is None or not lo <= value <= hi:
        errors.append(f"{name}={raw}: expected an integer in [{lo}, {hi}]; using {default}")
        return default
    return value


def choice_param(params: Mapping[str, Any], name: str, default: str, choices: Sequence[str], errors: list[str]) -> str:
    """A query parameter that must be one of ``choices``; a bad one adds a message to ``errors`` (the link's text,
    then ``check_choice``'s) and gives ``default``."""
    if name not in params:
        return default
    raw = first_value(params[name]).strip()
    try:
        return check_choice(name, raw, choices)
    except ValueError as exc:
        errors.append(f"{name}={raw}: {exc}; using {default}")
        return default


def preset_param(params: Mapping[str, Any], default: str, errors: list[str]) -> str:
    """The ``preset`` query parameter, a name in ``PRESETS``; an unknown one adds a message to ``errors`` and
    gives ``default``."""
    return choice_param(params, "preset", default, tuple(PRESETS), errors)
