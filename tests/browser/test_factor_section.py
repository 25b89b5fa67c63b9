"""Issue 34 item 3 in real headless Chromium: Significance's "Does the factor matter?" for an FF/FGFF pair
side by side. Launch the pair on Compare, open it on Significance, press "Compute the pruning curves" and wait
for both curve charts and their verdicts; with ``FGFF_SAVE_SCREENSHOTS`` a screenshot of the section. The pair is
tiny for CI; the README's picture is of the quick digits pair at seed 0:
``FGFF_E2E_FACTOR_PAIR='preset=quick-digits&epochs=200' FGFF_SAVE_SCREENSHOTS=docs/screenshots``.

Run: ``python -m pytest -m browser tests/browser/test_factor_section.py -q``.
"""

from __future__ import annotations

import os

import pytest
from test_classroom import goto, wait_done
from test_e2e import chromium_page, no_exception, server, shot, wait_idle  # noqa: F401 - fixtures

from fgff_core.store import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]
PAIR = os.environ.get("FGFF_E2E_FACTOR_PAIR", "preset=tiny-digits&epochs=6")  # the Compare link's launch settings


def test_pressing_compute_draws_the_pruning_curves_of_both_runs(server, chromium_page):  # noqa: F811
    base, page = server[0], chromium_page
    store = RunStore(server[1])
    goto(page, f"{base}/compare?{PAIR}", "Compare FF vs FGFF")
    page.get_by_role("button", name="Start FF and FGFF").click()
    page.wait_for_function("() => /run=/.test(location.search)", timeout=240_000)
    ids = [r for r in page.evaluate("() => new URLSearchParams(location.search).get('run')").split(",") if r]
    assert len(ids) == 2, ids
    wait_done(store, ids)
    goto(page, f"{base}/significance?run={','.join(ids)}", "Significance")
    page.get_by_role("heading", name="Does the factor matter?").wait_for()
    page.get_by_role("button", name="Compute the pruning curves").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.layout && p.layout.title"
        " && (p.layout.title.text || '').includes('Network: goodness only, with factors')).length === 2",
        timeout=240_000)
    wait_idle(page)
    assert page.get_by_text("neurons with the smallest factors", exact=False).count() == 2  # a verdict per run
    assert page.get_by_text("Not computed yet", exact=False).count() == 0
    page.wait_for_function(  # both runs' neuron pictures too
        "() => [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.layout && p.layout.title"
        " && (p.layout.title.text || '').includes('class preference')).length === 2")
    no_exception(page)
    page.get_by_role("heading", name="Does the factor matter?").scroll_into_view_if_needed()
    shot(page, "significance-factor-matters")
