"""The lesson's state in the URL: the step, the knobs (validated through ``RunConfig``) and the
controls a teacher chose to hide."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.form import choice_param, first_value, int_param, parse_param
from ..config.presets import PRESETS
from ..config.schema import RunConfig
from ..config.values import check_choice

LESSON_PRESET = "tiny-digits"
LESSON_ALGOS = ("ff", "fgff")
STEP_TITLES = {
    1: "Positive and negative data",
    2: "One layer: goodness and loss",
    3: "Training, layer by layer",
    4: "The significance factors: FF vs FGFF",
    5: "Prediction",
}
# For the step bar: five long titles in one row run past the right edge of a laptop screen.
STEP_SHORT_TITLES = {1: "Data", 2: "One layer", 3: "Training", 4: "Significance", 5: "Prediction"}
N_STEPS = len(STEP_TITLES)
CONFIG_KNOBS = ("algo", "lr", "sig_lr", "threshold", "loss", "delta", "layers", "seed", "epochs")
KNOBS = (*CONFIG_KNOBS, "sample")
# Controls a teacher can hide with ``?hide=a,b``: every knob, the step navigation and the drawing panel.
HIDEABLE = (*KNOBS, "step", "draw")
# A lesson net steps in the app's process, so it stays small (larger nets: the Train page).
LESSON_MAX_LAYERS = 4
LESSON_MAX_UNITS = 256
LESSON_MAX_EPOCHS = 2000


# -- the lesson's state: step, knobs, hidden controls -------------------------------------------
@dataclass(frozen=True)
class LessonSettings:
    """Everything a lesson link holds. ``config`` is a validated ``RunConfig`` (digits, greedy)."""

    step: int = 1
    config: RunConfig = field(default_factory=lambda: lesson_config())
    sample: int | None = None  # index into the digits test set; None: nobody chose one (each step picks its own)
    hide: frozenset[str] = frozenset()

    def to_params(self) -> dict[str, str]:
        """Query parameters: the step, every knob, and ``hide`` when something is hidden."""
        out = {"step": str(self.step)}
        for name in CONFIG_KNOBS:
            out[name] = _param_text(getattr(self.config, name))
        if self.sample is not None:
            out["sample"] = str(self.sample)
        if self.hide:
            out["hide"] = ",".join(h for h in HIDEABLE if h in self.hide)
        return out

    def hidden(self, control: str) -> bool:
        return control in self.hide


def lesson_config(algo: str = "fgff", **changes: Any) -> RunConfig:
    """The lesson's net: the ``tiny-digits`` preset with ``changes``, checked against the lesson's size caps."""
    check_choice("algo", algo, LESSON_ALGOS)
    cfg = PRESETS[LESSON_PRESET].config(algo, **changes)
    check_lesson_size(cfg)
    return cfg


def check_lesson_size(cfg: RunConfig) -> None:
    """``ValueError`` naming the field when a net is too big to step in the app's process."""
    if cfg.dataset != "digits":
        raise ValueError(f"dataset: the lesson uses the embedded digits, got {cfg.dataset!r}")
    if len(cfg.layers) > LESSON_MAX_LAYERS or max(cfg.layers) > LESSON_MAX_UNITS:
        raise ValueError(f"layers: a lesson net has at most {LESSON_MAX_LAYERS} layers of at most "
                         f"{LESSON_MAX_UNITS} neurons, got {','.join(map(str, cfg.layers))}")
    if cfg.epochs > LESSON_MAX_EPOCHS:
        raise ValueError(f"epochs: at most {LESSON_MAX_EPOCHS} epochs per layer in a lesson, got {cfg.epochs}")


def _param_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_lesson_params(params: Mapping[str, Any], n_samples: int) -> tuple[LessonSettings, list[str]]:
    """Settings from URL query parameters, and one message per value that was refused.

    A bad value never fails the whole link: it is reported (the message names the parameter and
    the allowed range, from ``RunConfig``'s validation) and its default is used instead. Unknown
    parameters (``run``, ...) are ignored.
    """
    errors: list[str] = []
    step = int_param(params, "step", 1, 1, N_STEPS, errors)
    cfg = lesson_config(choice_param(params, "algo", "fgff", LESSON_ALGOS, errors))
    for name in CONFIG_KNOBS:
        if name == "algo" or name not in params:
            continue
        raw = first_value(params[name])
        try:
            candidate = cfg.replace(**{name: parse_param(name, raw)})
            check_lesson_size(candidate)
        except ValueError as exc:
            errors.append(f"{name}={raw}: {exc}; using {_param_text(getattr(cfg, name))}")
            continue
        cfg = candidate
    sample, n_errors = None, len(errors)
    if "sample" in params:
        sample = int_param(params, "sample", 0, 0, n_samples - 1, errors)
    if len(errors) > n_errors:  # a bad sample is none chosen: each step picks its own
        errors[-1] = errors[-1].rsplit("; using", 1)[0] + "; using each step's own sample"
        sample = None
    hide: set[str] = set()
    for part in first_value(params.get("hide", "")).split(","):
        part = part.strip()
        if not part:
            continue
        if part in HIDEABLE:
            hide.add(part)
        else:
            errors.append(f"hide={part}: not a lesson control; hideable: {', '.join(HIDEABLE)}")
    return LessonSettings(step=step, config=cfg, sample=sample, hide=frozenset(hide)), errors
