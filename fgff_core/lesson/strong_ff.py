"""The lesson's one note on Forward-Forward at its best (issue 12): the paper's settings under-train FF.

The sentence is written from the presets themselves (the lesson's paper settings and the MNIST demo's
recipe), so it stays true when a recipe is retuned: an ingredient is named only if the recipe uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.presets import MNIST_DEMO, PRESETS
from ..config.schema import RunConfig
from ..data.registry import DATASETS
from ..format import percent
from .settings import LESSON_PRESET


@dataclass(frozen=True)
class StrongFFNote:
    """What the Learn page shows: the text, and a link that opens the Train page on ``preset``."""

    text: str
    link_label: str
    preset: str

    def link_params(self) -> dict[str, str]:
        """The Train page's query parameters that load the preset."""
        return {"preset": self.preset}


def recipe_ingredients(config: RunConfig) -> list[str]:
    """What a strong recipe changes from the paper's settings, in words, in the order a reader meets them."""
    out = []
    if config.batch_size > 0:
        out.append(f"minibatches of {config.batch_size}")
    if config.hard_negatives > 0:
        share = "" if config.hard_negatives >= 1 else f"{percent(config.hard_negatives, 0)} "
        out.append(f"{share}hard negatives")
    if config.loss == "symba":
        out.append("the SymBa loss")
    if config.lr_schedule != "constant":
        out.append(f"{config.lr_schedule} learning-rate decay")
    if config.peer_norm > 0:
        out.append("peer normalisation")
    return out


def _paper_settings(config: RunConfig) -> str:
    batch = "full batch" if config.batch_size == 0 else f"batches of {config.batch_size}"
    return f"{batch}, {config.epochs} steps per layer"


def strong_ff_note(preset: str = MNIST_DEMO) -> StrongFFNote:
    """The note for ``preset`` (a strong FF recipe), against the lesson's paper settings."""
    paper, strong = PRESETS[LESSON_PRESET].config("ff"), PRESETS[preset].config()
    ingredients = recipe_ingredients(strong)
    how = f" ({', '.join(ingredients)})" if ingredients else ""
    text = (f"The paper's settings, which this lesson starts from ({_paper_settings(paper)}), under-train FF, so "
            f"FGFF's lead over it is a lead over a weak baseline. A strong recipe{how} takes FF much further: "
            f"try it on {DATASETS[strong.dataset].title}.")
    return StrongFFNote(text=text, link_label=f"Open it in Train: {PRESETS[preset].title}", preset=preset)
