"""Issue 12's app side in real headless Chromium: the Learn note's link opens Train on the strong MNIST
demo, Compare shows that recipe for FF and FGFF, and a finished simultaneous run draws each layer's
own accuracy. Nothing trains on MNIST here: the only run is a tiny one on the embedded digits.

Run: ``python -m pytest -m browser tests/browser/test_best.py -q``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from test_classroom import SLOW_MS, goto, wait_done
from test_e2e import chromium_page, no_exception, server, wait_chart_titled, wait_idle  # noqa: F401 - fixtures

from fgff_core import lesson
from fgff_core.config.presets import MNIST_DEMO, PRESETS
from fgff_core.store import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

TRAIN = "Train a Forward-Forward network"
# A tiny FF run whose layers all train each epoch; its URL config fills the Train form.
SIMULTANEOUS = "algo=ff&layers=12,12&epochs=4&eval_every=2&eval_subset=200&schedule=simultaneous"


def test_the_learn_note_opens_train_on_the_strong_preset(server, chromium_page):  # noqa: F811
    base, page = server[0], chromium_page
    goto(page, f"{base}/learn?step=4&layers=8,6&epochs=5", "Learn: Forward-Forward in five steps")
    note = lesson.strong_ff_note()
    page.get_by_text("under-train FF").wait_for()
    page.get_by_role("link", name=note.link_label).click()
    page.get_by_role("heading", name=TRAIN).first.wait_for()
    wait_idle(page)
    page.wait_for_function("() => ['preset=ff-best-mnist-quick', 'dataset=mnist', 'algo=ff&'].every("
                           "p => (location.search + '&').includes(p))", timeout=60_000)  # FF on MNIST
    expect(page.get_by_role("combobox", name="Preset")).to_have_value(PRESETS[MNIST_DEMO].title)
    page.get_by_text(PRESETS[MNIST_DEMO].description[:60]).wait_for()  # the preset's own note, not "no longer"
    assert page.get_by_text("no longer the preset").count() == 0
    no_exception(page)


def test_compare_offers_the_strong_recipe_for_ff_and_fgff(server, chromium_page):  # noqa: F811
    base, page = server[0], chromium_page
    goto(page, f"{base}/compare?preset={MNIST_DEMO}", "Compare FF vs FGFF")
    expect(page.get_by_role("combobox", name="Preset")).to_have_value(PRESETS[MNIST_DEMO].title)
    page.get_by_text(PRESETS[MNIST_DEMO].description[:60]).wait_for()
    assert page.get_by_role("spinbutton", name="Epochs per layer").input_value() == \
        str(PRESETS[MNIST_DEMO].config().epochs)
    no_exception(page)  # the launch itself (FF and FGFF on one recipe) is tests/test_compare.py's


def test_a_simultaneous_run_draws_each_layers_accuracy(server, chromium_page):  # noqa: F811
    base, page = server[0], chromium_page
    goto(page, f"{base}/?{SIMULTANEOUS}", TRAIN)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_function("() => /run=/.test(location.search)", timeout=60_000)
    run_id = page.evaluate("() => new URLSearchParams(location.search).get('run')")
    wait_done(RunStore(server[1]), [run_id])
    wait_chart_titled(page, "accuracy of each layer on its own", timeout=SLOW_MS)
    wait_idle(page)
    names = page.evaluate(
        """() => { const p = [...document.querySelectorAll('.js-plotly-plot')].find(
             q => ((q.layout.title && q.layout.title.text) || '').includes('each layer on its own'));
           return p._fullData.map(t => t.name); }""")
    assert names[:4] == ["layer 1, test", "layer 1, train", "layer 2, test", "layer 2, train"]
    assert names[-1].startswith("network")
    no_exception(page)
