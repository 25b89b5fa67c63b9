"""The Significance page's section "Does the factor matter?" (issue 34): pruning curves, a verdict in words,
layer 1's receptive fields and each layer's class preference, for the page's chosen runs side by side.

A helper of ``significance.py`` only (not a page): widgets, then ``fgff_core.analysis`` (``ablation_runs``
caches the curves beside the run, per settings; ``st.cache_data`` keeps them in memory), then drawing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import streamlit as st

from app_pages._shared import url_from_outside, write_url
from fgff_core.analysis.ablation import ablation_curves, neuron_costs
from fgff_core.analysis.ablation_result import ORDER_TEXT, REMOVAL_TEXT, RULE_TEXT, AblationResult
from fgff_core.analysis.ablation_runs import cache_name, cached_ablation
from fgff_core.analysis.ablation_settings import (
    MAX_DRAWS,
    MAX_SEED,
    MIN_DRAWS,
    ORDERS,
    REMOVALS,
    RULES,
    SCOPES,
    AblationSettings,
)
from fgff_core.analysis.neurons import class_preference, weight_images
from fgff_core.data.access import load_served_for_config
from fgff_core.store import RunStore
from fgff_core.viz.ablation import ablation_figure, class_preference_figure, weight_images_figure
from fgff_core.vocabulary import algo_label, has_goodness, trains_factors

#: The page's fast default: goodness-only removal over the whole network, the rule with factors. Silenced
#: removal (one forward pass per point) and the other scopes and rules are a choice away.
PAGE_DEFAULT = AblationSettings(removals=("goodness_only",), rules=("with_factors",), scopes=("network",))
CHOSEN = ("orders", "removals", "rules", "scopes")  # the settings with a widget in view
MORE = ("fractions", "draws", "seed")  # the settings in the "More settings" expander
KEYS = {name: f"ablation_{name}" for name in (*CHOSEN, *MORE)}
SCOPE_TEXT = {"network": "whole network", "layer": "each layer on its own"}
SHOWN_PER_KIND = 4  # receptive fields per kind (largest s, smallest s, largest cost, smallest cost), one run
PANELS_PER_ROW = {1: 4, 2: 2}  # receptive fields per row: one run full width, two side by side (titles fit)


def link_settings() -> AblationSettings:
    """The settings from the widgets, which start from the link's values (bad ones: a warning each, and the
    page's default). Writes them back to the link: the widget ones always, the rest where not the default."""
    if KEYS["orders"] not in st.session_state or url_from_outside():  # first load, Back, Forward: the link's values
        params = {k: v for k, v in PAGE_DEFAULT.to_dict().items() if k in CHOSEN}
        params.update({k: st.query_params[k] for k in AblationSettings().to_dict() if k in st.query_params})
        settings, errors = AblationSettings.from_params(params)
        for message in errors:
            st.warning(f"The link's {message}.")
        for name in CHOSEN:
            st.session_state[KEYS[name]] = list(getattr(settings, name))
        st.session_state[KEYS["fractions"]] = ",".join(f"{f:g}" for f in settings.fractions)
        st.session_state[KEYS["draws"]] = settings.draws
        st.session_state[KEYS["seed"]] = settings.seed
        st.session_state["ablation_link"] = {k: v for k, v in settings.to_dict().items()
                                             if k not in (*CHOSEN, *MORE)}
    # Pills, every choice in view, on rows wide enough for them from 1024 px on: in half the page the orders' row hid
    # "by input weight norm" and "at random" (as a multiselect's chips, too), and four in a row cut them to "b…".
    st.pills("Remove first", ORDERS, selection_mode="multi", format_func=ORDER_TEXT.get, key=KEYS["orders"],
             help="Which neurons go first: those with the smallest factor s, the smallest |s|, the least "
                  "activity on positive minus negative data, the smallest input weights, or random ones.")
    left, right = st.columns(2)
    left.pills("Removal", REMOVALS, selection_mode="multi", format_func=REMOVAL_TEXT.get, key=KEYS["removals"],
             help="goodness only: the neuron no longer counts in the goodness, the next layer still sees it "
                  "(fast). silenced: its output is zero, so the next layers see the change too (slower).")
    right.pills("Prediction", RULES, selection_mode="multi", format_func=RULE_TEXT.get, key=KEYS["rules"],
             help="Predict with the goodness weighted by the factors (as FGFF does) or without them.")
    st.pills("Neurons of", SCOPES, selection_mode="multi", format_func=SCOPE_TEXT.get, key=KEYS["scopes"])
    with st.expander("More settings: fractions kept, random draws, seed"):
        m1, m2, m3 = st.columns([2, 1, 1])
        m1.text_input("Fractions of neurons kept", key=KEYS["fractions"],
                      help="Comma-separated, each in (0, 1]; 1 (nothing removed) is always included.")
        m2.number_input("Random draws", MIN_DRAWS, MAX_DRAWS, step=1, key=KEYS["draws"],
                        help="How many random removal orders give the random curve's mean and spread.")
        m3.number_input("Seed", 0, MAX_SEED, step=1, key=KEYS["seed"], help="Seed of the random removal orders.")
    chosen = {name: st.session_state[KEYS[name]] or list(getattr(PAGE_DEFAULT, name)) for name in CHOSEN}
    chosen.update(draws=st.session_state[KEYS["draws"]], seed=st.session_state[KEYS["seed"]])
    try:
        chosen["fractions"] = AblationSettings(fractions=st.session_state[KEYS["fractions"]]).fractions
    except ValueError as exc:
        st.error(f"{exc}; using {','.join(f'{f:g}' for f in PAGE_DEFAULT.fractions)}")
    settings = AblationSettings.from_dict({**st.session_state["ablation_link"], **chosen})
    params = {**{name: ",".join(getattr(settings, name)) for name in CHOSEN}, **settings.to_params()}
    write_url({**{name: None for name in MORE}, **params})  # back to the default: out of the link
    return settings


@st.cache_data(show_spinner=False, max_entries=32)
def _curves(_store: RunStore, runs_dir: str, run_id: str, checkpoint_mtime: float, settings_json: str) -> dict:
    """The run's curves (JSON values): from the cache file beside the run, or computed and stored there (a
    store the server cannot write: computed, kept in memory only)."""
    settings = AblationSettings.from_dict(json.loads(settings_json))
    if getattr(_store, "read_only", False):
        model, config = _store.load_model(run_id)
        return ablation_curves(model, load_served_for_config(config), settings).to_dict()
    return cached_ablation(_store, run_id, settings, load_served_for_config).to_dict()


@st.cache_data(show_spinner="Reading the network's weights and its activity on the test images...", max_entries=16)
def _neurons(_store: RunStore, runs_dir: str, run_id: str, checkpoint_mtime: float, per_kind: int):
    """Layer 1's receptive fields (the ``per_kind`` largest and smallest s and ablation cost) and each layer's
    class preference."""
    model, config = _store.load_model(run_id)
    data = load_served_for_config(config)
    costs = neuron_costs(model, data)[0]
    images = weight_images(model, data.image_shape, k=min(per_kind, len(costs)), costs=costs)
    return images, [class_preference(model, data, layer) for layer in range(len(model.layers))]


def _is_stored(store: RunStore, run_id: str, settings: AblationSettings) -> bool:
    """Whether the curves for ``settings`` are in the run's folder already (then they are drawn at once)."""
    return (store.run_dir(run_id) / cache_name(settings)).is_file()


def _draw_curves(result: AblationResult, run_id: str) -> None:
    groups = dict.fromkeys((c.layer, c.removal, c.rule) for c in result.curves)
    for layer, removal, rule in groups:
        st.plotly_chart(ablation_figure(result, layer, removal, rule),
                        key=f"ablation_{run_id}_{layer}_{removal}_{rule}")
        st.markdown(result.verdict(layer, removal, rule))
    st.caption("Each line is test accuracy as more and more neurons are removed (left: all kept), in one order; the "
               "grey band is the spread of the random removals. A line that stays up longer means that order "
               "removes the neurons the network needs least.")
    with st.expander("In numbers: how many neurons each order can remove for at most 1 point"):
        for line in result.summary():
            st.markdown(f"- {line}")


def _draw_neurons(store: RunStore, run_id: str, checkpoint_mtime: float, n_runs: int) -> None:
    columns = PANELS_PER_ROW[n_runs]
    images, prefs = _neurons(store, str(store.root), run_id, checkpoint_mtime, SHOWN_PER_KIND * columns // 4)
    st.plotly_chart(weight_images_figure(images, columns=columns), key=f"weights_{run_id}")
    st.caption("Each square is one first-layer neuron's input weights laid over the image: red pixels make it more "
               "active, blue ones less (blank: where the label is written). Shown: the neurons with the largest and "
               "smallest factor, and those whose removal costs the most and the least accuracy.")
    layer = 0
    if len(prefs) > 1:
        layer = st.radio("Class preference of", range(len(prefs)), format_func=lambda i: f"layer {i + 1}",
                         horizontal=True, key=f"ablation_pref_layer_{run_id}")
    st.plotly_chart(class_preference_figure(prefs[layer]), key=f"preference_{run_id}")
    st.caption("Each row is one neuron (smallest factor at the bottom), each column a class: bright where the "
               "neuron is most active on images of that class. A row with one bright cell is a neuron that "
               "prefers one class; the title says whether such neurons tend to have larger factors.")


def _show_run(store: RunStore, run_id: str, settings: AblationSettings, compute: bool, n_runs: int) -> None:
    run = store.run(run_id)
    st.subheader(f"{run['name']} ({algo_label(run['algo'])})")
    if not has_goodness(run["algo"]):
        st.caption(f"{algo_label(run['algo'])} has no goodness and no factors: nothing to remove by s.")
        return
    ckpt = store.checkpoint_path(run_id)
    if ckpt is None:
        st.caption("The pruning curves need the run's checkpoint, written when it ends.")
        return
    mtime = ckpt.stat().st_mtime
    if compute or _is_stored(store, run_id, settings):
        with st.spinner(f"Removing neurons from {run['name']} and measuring test accuracy..."):
            result = AblationResult.from_dict(_curves(store, str(store.root), run_id, mtime,
                                                      json.dumps(settings.to_dict(), sort_keys=True)))
        _draw_curves(result, run_id)
        if not trains_factors(run["algo"]):
            st.caption(f"{algo_label(run['algo'])} keeps every factor at 1, so 'by s' removes neurons in index "
                       "order: a fixed, arbitrary order to compare with FGFF's.")
    else:
        st.info("Not computed yet for these settings: press **Compute the pruning curves**.")
    _draw_neurons(store, run_id, mtime, n_runs)


def ablation_section(store: RunStore, run_ids: Sequence[str]) -> None:
    """The section for ``run_ids`` (side by side), with its controls and its compute button."""
    st.header("Does the factor matter?", anchor="does-the-factor-matter")
    st.caption("Remove neurons one group at a time, those with the smallest factors first, and watch the test "
               "accuracy: if the factors say which neurons matter, removing the small-factor ones costs less than "
               "removing random ones.")
    settings = link_settings()
    compute = st.button("Compute the pruning curves", type="primary", key="ablation_compute",
                        help="Goodness-only removal takes seconds; silenced removal on MNIST can take a minute. "
                             "Each result is kept beside the run, so a revisit is instant.")
    for col, run_id in zip(st.columns(len(run_ids)), run_ids):
        with col:
            try:
                _show_run(store, run_id, settings, compute, len(run_ids))
            except Exception as exc:  # noqa: BLE001 - shown in the page, never a crashed server
                st.error(f"Could not show the pruning of run {run_id}: {exc}")
