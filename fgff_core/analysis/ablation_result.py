"""The ablation curves as data (issue 34): each curve's points, its area, how many neurons it can lose for
at most 1 point of accuracy, and a summary sentence per (scope, removal, rule). JSON-able, so a result
can be cached beside its run and drawn by a page. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..format import percent, points
from .ablation_settings import AblationSettings

TOLERANCE = 0.01  # one point of accuracy
ORDER_TEXT = {"s": "by s", "abs_s": "by |s|", "activity": "by activity (pos - neg)",
              "weight_norm": "by input weight norm", "random": "at random"}
RULE_TEXT = {"with_factors": "with factors", "without_factors": "without factors"}
REMOVAL_TEXT = {"goodness_only": "goodness only", "silenced": "silenced"}
#: The removed neurons in words, for ``verdict``: "removing the 6 neurons {...}".
VERDICT_TEXT = {"s": "with the smallest factors", "abs_s": "with the factors closest to 0",
                "activity": "that prefer positive over negative data the least",
                "weight_norm": "with the smallest input weights", "random": "chosen at random"}


class Curve(NamedTuple):
    """Test accuracy as neurons are removed in one order, from the unpruned network (first point) down."""

    layer: int | None  # None: the whole network; else the 0-based layer whose neurons are removed
    order: str
    removal: str
    rule: str
    n_neurons: int  # in the scope
    fractions: tuple[float, ...]  # the settings' fractions kept, from 1 down
    kept: tuple[int, ...]  # neurons kept at each point
    accuracy: tuple[float, ...]  # the mean over the draws for the random order
    spread: tuple[float, ...]  # standard deviation over the draws (0 for the other orders)

    @property
    def scope(self) -> str:
        return "network" if self.layer is None else f"layer {self.layer + 1}"

    @property
    def area(self) -> float:
        """The area under accuracy over the fraction kept (trapezoids), divided by the span of fractions:
        the curve's mean accuracy, 1.0 for a network that loses nothing. One point: its accuracy."""
        x = [k / self.n_neurons for k in self.kept]
        if len(x) < 2 or x[0] == x[-1]:
            return self.accuracy[0]
        area = sum((x[i] - x[i + 1]) * (self.accuracy[i] + self.accuracy[i + 1]) / 2 for i in range(len(x) - 1))
        return area / (x[0] - x[-1])

    def removable(self, tolerance: float = TOLERANCE) -> int:
        """Neurons removed at the last point, going down from the unpruned network, before the first
        point that is more than ``tolerance`` below it (every point up to it is within tolerance)."""
        best = 0
        for kept, acc in zip(self.kept, self.accuracy):
            if acc < self.accuracy[0] - tolerance - 1e-12:
                break
            best = self.n_neurons - kept
        return best


def _tolerance_text(tolerance: float) -> str:
    """1 point, 0.50 points: ``format.points`` without its sign, singular for exactly one point."""
    if abs(tolerance - 0.01) < 1e-12:
        return "1 point"
    return points(tolerance, sign=False)


@dataclass(frozen=True)
class AblationResult:
    """Every curve of one ablation study of one network, with the settings that made it."""

    settings: AblationSettings
    curves: tuple[Curve, ...]
    n_test: int
    widths: tuple[int, ...]

    def curve(self, layer: int | None, order: str, removal: str, rule: str) -> Curve:
        for c in self.curves:
            if (c.layer, c.order, c.removal, c.rule) == (layer, order, removal, rule):
                return c
        raise ValueError(f"curve: none for scope {layer!r}, order {order!r}, removal {removal!r}, rule {rule!r}")

    def summary(self, tolerance: float = TOLERANCE) -> list[str]:
        """One sentence per (scope, removal, rule): how many neurons each order can remove for at most
        ``tolerance`` of accuracy (1 point), and the curve's area."""
        lines = []
        groups: dict[tuple, list[Curve]] = {}
        for c in self.curves:
            groups.setdefault((c.layer is not None, c.layer or 0, c.removal, c.rule), []).append(c)
        for (_, _, removal, rule), curves in groups.items():
            first = curves[0]
            parts = []
            for c in curves:
                k = c.removable(tolerance)
                draws = f" (mean of {self.settings.draws} draws)" if c.order == "random" else ""
                parts.append(f"{ORDER_TEXT[c.order]}{draws} {k} of {c.n_neurons} ({percent(k / c.n_neurons, 0)}, "
                             f"area {percent(c.area, 1)})")
            lines.append(f"{first.scope.capitalize()}, {REMOVAL_TEXT[removal]}, {RULE_TEXT[rule]} (unpruned "
                         f"{percent(first.accuracy[0])}): for at most {_tolerance_text(tolerance)} of accuracy "
                         f"one can remove " + "; ".join(parts) + ".")
        return lines

    def verdict(self, layer: int | None, removal: str, rule: str, fraction: float = 0.5) -> str:
        """One plain sentence for one scope, removal and rule: what removing the same number of neurons in each
        order costs in points of accuracy, at the settings' fraction kept nearest ``fraction`` (half) that
        removes any (a pruned network that does better "gains"): "Removing the 6 of 12 neurons with the
        smallest factors costs 0.40 points; 6 chosen at random cost 3.10 ± 0.60 points (mean ± standard
        deviation of 5 draws)." """
        curves = [c for c in self.curves if (c.layer, c.removal, c.rule) == (layer, removal, rule)]
        if not curves:
            raise ValueError(f"verdict: no curve for scope {layer!r}, removal {removal!r}, rule {rule!r}")
        first = curves[0]
        points_at = [i for i, k in enumerate(first.kept) if k < first.n_neurons]
        if not points_at:
            return f"The settings keep every neuron of the {first.scope}: nothing is removed, nothing lost."
        i = min(points_at, key=lambda j: (abs(first.fractions[j] - fraction), j))
        removed = first.n_neurons - first.kept[i]
        parts = []
        for n, c in enumerate(curves):
            drop = c.accuracy[0] - c.accuracy[i]
            verb = ("cost" if drop >= 0 else "gain") + ("s" if n == 0 else "")  # a pruned net can do better
            size = points(abs(drop), sign=False, unit="")
            if c.order == "random":
                cost = f"{size} ± {points(c.spread[i], sign=False, unit='')} points (mean ± standard deviation " \
                       f"of {self.settings.draws} draws)"
            else:
                cost = f"{size} points"
            head = f"removing the {removed} of {c.n_neurons} neurons" if n == 0 else f"{removed}"
            parts.append(f"{head} {VERDICT_TEXT[c.order]} {verb} {cost}")
        where = "" if layer is None else f"In layer {layer + 1}, "
        text = "; ".join(parts) + "."
        return where + (text[0].upper() + text[1:] if not where else text)

    def to_dict(self) -> dict[str, Any]:
        """JSON values; ``from_dict`` reads them back (a cache beside the run)."""
        return {"settings": self.settings.to_dict(), "n_test": self.n_test, "widths": list(self.widths),
                "curves": [{**c._asdict(), "fractions": list(c.fractions), "kept": list(c.kept),
                            "accuracy": list(c.accuracy), "spread": list(c.spread)} for c in self.curves]}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AblationResult:
        curves = tuple(Curve(**{**c, **{k: tuple(c[k]) for k in ("fractions", "kept", "accuracy", "spread")}})
                       for c in values["curves"])
        return cls(AblationSettings.from_dict(values["settings"]), curves, int(values["n_test"]),
                   tuple(values["widths"]))
