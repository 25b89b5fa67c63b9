"""Teach mode: the computations behind the Learn page's five steps (no Streamlit here).

The lesson is a tiny Forward-Forward net on the embedded 8x8 digits (preset ``tiny-digits``,
64 -> 2x20) and every number it shows comes from the engine's own code paths:

1. positive vs negative data ............ ``embed_labels`` (via ``viz.samples.SamplePairs``)
2. one layer, one sample ................ ``FFNet.layer_outputs``, ``goodness`` (eq. 2/3),
                                          ``softplus_loss`` and ``hinge_loss`` (eq. 1)
3. training step by step ................ ``Trainer.run()``, a generator advanced N epochs at a time
                                          (``SteppedTraining``); goodness distributions per layer
4. FF vs FGFF, the significance factors . ``inspect.neuron_activity`` and ``neuron_roles``; the
                                          stored pair of runs (``LessonPair``)
5. prediction ........................... ``FFNet.label_goodness``, ``confusion``; a drawn or
                                          uploaded image becomes an input with ``pixels_to_input``
                                          (a canvas drawing via ``drawing_to_pixels``)

Modules: ``settings`` (the lesson's state in the URL: step, knobs validated through ``RunConfig``,
hidden controls), ``steps`` (steps 1-5), ``pair`` (step 4's stored runs), ``drawing`` (step 5's
own digit), ``strong_ff`` (step 4's note: the paper's settings under-train FF, with a link to
a strong recipe). Import from the package: ``from fgff_core import lesson``.
"""

from .drawing import (
    CANVAS_SIZE,
    CANVAS_STROKE,
    DIGITS_MAX_PIXEL,
    drawing_to_image,
    drawing_to_pixels,
    image_to_pixels,
    input_to_pixels,
    pixels_to_input,
)
from .pair import AccuracyBar, LessonPair, ended_without_result, find_stored_run, pair_job_name
from .settings import (
    CONFIG_KNOBS,
    HIDEABLE,
    KNOBS,
    LESSON_ALGOS,
    LESSON_MAX_EPOCHS,
    LESSON_MAX_LAYERS,
    LESSON_MAX_UNITS,
    LESSON_PRESET,
    N_STEPS,
    STEP_SHORT_TITLES,
    STEP_TITLES,
    LessonSettings,
    check_lesson_size,
    lesson_config,
    parse_lesson_params,
)
from .steps import (
    ROLE_TOLERANCE,
    ROLES,
    GoodnessDistribution,
    LayerView,
    SteppedTraining,
    check_wrong_label,
    confusion,
    default_wrong_label,
    first_correct_sample,
    goodness_distributions,
    label_scores,
    layer_view,
    model_activity,
    neuron_roles,
    role_counts,
    role_table,
)
from .strong_ff import StrongFFNote, recipe_ingredients, strong_ff_note

__all__ = [
    "CANVAS_SIZE", "CANVAS_STROKE", "CONFIG_KNOBS", "DIGITS_MAX_PIXEL", "HIDEABLE", "KNOBS", "LESSON_ALGOS",
    "LESSON_MAX_EPOCHS", "first_correct_sample",
    "LESSON_MAX_LAYERS", "LESSON_MAX_UNITS", "LESSON_PRESET", "N_STEPS", "ROLES", "ROLE_TOLERANCE",
    "STEP_SHORT_TITLES", "STEP_TITLES", "AccuracyBar", "GoodnessDistribution", "LayerView", "LessonPair",
    "LessonSettings", "SteppedTraining", "check_lesson_size", "check_wrong_label", "confusion",
    "default_wrong_label", "drawing_to_image", "drawing_to_pixels", "StrongFFNote",
    "ended_without_result", "find_stored_run", "goodness_distributions", "image_to_pixels",
    "input_to_pixels", "label_scores", "layer_view", "lesson_config", "model_activity", "neuron_roles",
    "pair_job_name", "parse_lesson_params", "pixels_to_input", "recipe_ingredients", "role_counts", "role_table",
    "strong_ff_note",
]
