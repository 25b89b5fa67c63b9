"""What an ablation study computes (issue 34): the orders, the kinds of removal, the prediction rules,
the scopes, the fractions kept, the random draws and their seed, in one validated dataclass.

The same spellings arrive from the CLI (``--orders s,random``), a URL (``?orders=s,random``) and a JSON
config (``{"orders": ["s", "random"]}``): ``AblationSettings.from_dict`` reads all three, ``to_dict``
writes JSON values and ``to_params`` query parameters. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..config.values import check_choice, short_repr

#: Removal orders, each "least useful first": the factor s (smallest first), |s|, the neuron's
#: positive-minus-negative activity (``inspect.neuron_activity``), the norm of its input weights, random.
ORDERS = ("s", "abs_s", "activity", "weight_norm", "random")
#: ``goodness_only``: the neuron's term leaves the goodness sum (eq. 3), the next layer's input is unchanged;
#: ``silenced``: its output is zero, so the next layer sees the change through its normalised input.
REMOVALS = ("goodness_only", "silenced")
#: The prediction rule: goodness with the factors s (eq. 3) or without them (eq. 2).
RULES = ("with_factors", "without_factors")
#: Whose neurons are removed: the whole network's (one order over every neuron) or one layer's at a time.
SCOPES = ("network", "layer")
DEFAULT_FRACTIONS = tuple(round(1.0 - 0.05 * i, 2) for i in range(20))  # 100 % down to 5 %, 5 % at a time
MIN_DRAWS, MAX_DRAWS = 5, 100
MAX_FRACTIONS = 200
MAX_SEED = 2**31 - 1
ACTIVITY_SAMPLES = 1000  # test samples for the activity order (as the significance page)
MAX_ACTIVITY_SAMPLES = 10_000


def _names(field: str, value: Any, choices: tuple[str, ...]) -> tuple[str, ...]:
    """A non-empty selection of ``choices``: "a,b" or a list; kept in ``choices``' order, no repeats."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"{field}: expected one or more of {', '.join(choices)}, got {short_repr(value)}")
    chosen = {check_choice(field, item.strip() if isinstance(item, str) else item, choices) for item in items}
    return tuple(c for c in choices if c in chosen)


def _fractions(value: Any) -> tuple[float, ...]:
    """Fractions kept, each in (0, 1]: "1,0.5,0.1" or a list; sorted from 1 down, 1 itself always included
    (the unpruned network, the reference of every drop)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not 1 <= len(items) <= MAX_FRACTIONS:
        raise ValueError(f"fractions: expected 1 to {MAX_FRACTIONS} fractions kept in (0, 1] like 1,0.5,0.05, "
                         f"got {short_repr(value)}")
    out = set()
    for item in items:
        try:
            number = float(item.strip() if isinstance(item, str) else item)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(item, bool) or not 0.0 < number <= 1.0:
            raise ValueError(f"fractions: each fraction kept must be in (0, 1], got {short_repr(item)}")
        out.add(number)
    return tuple(sorted(out | {1.0}, reverse=True))


def _integer(field: str, value: Any, lo: int, hi: int) -> int:
    text = value.strip() if isinstance(value, str) else None
    number = int(text) if text is not None and text.isascii() and text.isdigit() and len(text) <= 18 else value
    if isinstance(number, bool) or not isinstance(number, int) or not lo <= number <= hi:
        raise ValueError(f"{field}: expected an integer in [{lo}, {hi}], got {short_repr(value)}")
    return number


@dataclass(frozen=True)
class AblationSettings:
    """Every option of an ablation study; invalid values raise ``ValueError`` naming the field and its range."""

    orders: tuple[str, ...] = ORDERS
    removals: tuple[str, ...] = REMOVALS
    rules: tuple[str, ...] = RULES
    scopes: tuple[str, ...] = SCOPES
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    draws: int = MIN_DRAWS  # random orders drawn (mean and spread); at least 5
    seed: int = 0  # of the random orders and of the activity order's negative labels
    activity_samples: int = ACTIVITY_SAMPLES

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: store the canonical values
        set_(self, "orders", _names("orders", self.orders, ORDERS))
        set_(self, "removals", _names("removals", self.removals, REMOVALS))
        set_(self, "rules", _names("rules", self.rules, RULES))
        set_(self, "scopes", _names("scopes", self.scopes, SCOPES))
        set_(self, "fractions", _fractions(self.fractions))
        set_(self, "draws", _integer("draws", self.draws, MIN_DRAWS, MAX_DRAWS))
        set_(self, "seed", _integer("seed", self.seed, 0, MAX_SEED))
        set_(self, "activity_samples", _integer("activity_samples", self.activity_samples, 1, MAX_ACTIVITY_SAMPLES))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AblationSettings:
        """From JSON values, query parameters (text; a repeated parameter keeps its last value) or CLI flags;
        keys that are not settings (``run``, ...) are ignored, absent ones keep their defaults."""
        names = {f.name for f in fields(cls)}
        kept = {k: _one_value(k, v) for k, v in values.items() if k in names and v is not None}
        return cls(**kept)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> tuple[AblationSettings, list[str]]:
        """From a page's query parameters, and one message per value refused: a bad value never fails the
        whole link; it is reported (naming the parameter and its range) and its default used instead."""
        values: dict[str, Any] = {}
        errors: list[str] = []
        default = cls().to_dict()
        for f in fields(cls):
            if f.name not in params:
                continue
            try:
                cls.from_dict({f.name: params[f.name]})
            except ValueError as exc:
                shown = ",".join(map(str, default[f.name])) if isinstance(default[f.name], list) else default[f.name]
                errors.append(f"{exc}; using {shown}")
                continue
            values[f.name] = params[f.name]
        return cls.from_dict(values), errors

    def to_dict(self) -> dict[str, Any]:
        """JSON values (lists for the selections), read back by ``from_dict``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_params(self) -> dict[str, str]:
        """Query parameters: the settings that differ from the defaults, as text."""
        default = AblationSettings().to_dict()
        return {k: ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) if isinstance(v, list)
                else str(v) for k, v in self.to_dict().items() if v != default[k]}

    @property
    def random_draws(self) -> int:
        """Random orders drawn: ``draws`` if ``random`` is among the orders, else none."""
        return self.draws if "random" in self.orders else 0


_SCALARS = ("draws", "seed", "activity_samples")


def _one_value(name: str, value: Any) -> Any:
    """A parsed query string's list as one value: a number's last, a selection's texts joined by commas
    (``?orders=s&orders=random`` is ``s,random``)."""
    if not isinstance(value, list) or not value:
        return value
    if name in _SCALARS:
        return value[-1]
    return ",".join(value) if all(isinstance(v, str) for v in value) else value
FLAG_HELP = {
    "orders": f"removal orders, comma-separated: {', '.join(ORDERS)}",
    "removals": f"kinds of removal: {', '.join(REMOVALS)}",
    "rules": f"prediction rules: {', '.join(RULES)}",
    "scopes": f"whose neurons are removed: {', '.join(SCOPES)} (each layer on its own)",
    "fractions": "fractions of neurons kept, each in (0, 1], comma-separated (1 is always included)",
    "draws": f"random orders drawn, {MIN_DRAWS} to {MAX_DRAWS}",
    "seed": f"seed of the random orders, 0 to {MAX_SEED}",
    "activity_samples": f"test samples for the activity order, 1 to {MAX_ACTIVITY_SAMPLES}",
}


def add_ablation_flags(parser: Any) -> None:
    """One CLI flag per setting (``--orders``, ``--fractions``, ...); values stay text for ``from_dict``."""
    defaults = AblationSettings().to_dict()
    for name, text in FLAG_HELP.items():
        shown = ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in defaults[name]) \
            if isinstance(defaults[name], list) else defaults[name]
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, metavar="VALUE",
                            help=f"{text} [default: {shown}]")
