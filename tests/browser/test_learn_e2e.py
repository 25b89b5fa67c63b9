"""The Learn page in real headless Chromium: a class walks the five steps, start to end.

Starts ``streamlit run app.py`` with a fresh runs folder, opens the lesson, goes through every step
with the step buttons (+1 epoch, +10 epochs, play, pause, next), trains the FF/FGFF pair of step 4
through the job manager and opens a shared step-4 link. One screenshot per step goes to
``test-artifacts/screenshots/learn-step{N}.png`` and, with ``FGFF_SAVE_SCREENSHOTS=docs/screenshots``,
also there.

Run: ``python -m pytest -m browser tests/browser/test_learn_e2e.py -q``.
"""

from __future__ import annotations

import re

import pytest
from test_e2e import chromium_page, no_exception, server, shot, wait_chart_titled, wait_idle, wait_visible_text  # noqa: F401 - fixtures

from fgff_core.store import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

LESSON = "sample=7"  # the default lesson: 64 -> 2x20, 200 epochs per layer (the tiny-digits preset)
SLOW_MS = 300_000  # a shared, busy machine


def progress(page) -> str:
    return page.locator('[data-testid="stProgress"]').first.inner_text()


def layer_epochs(page) -> int:
    m = re.search(r"\((\d+)/\d+ layer-epochs\)", progress(page))
    if m:
        return int(m.group(1))
    return 400 if "fully trained" in progress(page) else 0


def next_step(page, n: int) -> None:
    page.get_by_role("button", name=f"Next: step {n}").click()
    page.get_by_role("heading", name=re.compile(rf"^{n}\. ")).wait_for()
    wait_idle(page)
    assert f"step={n}" in page.url


def test_walk_the_lesson(server, chromium_page):  # noqa: F811 - pytest fixtures
    base, runs = server
    page = chromium_page

    # -- 1: positive vs negative data -------------------------------------------------------------
    # A teacher's link, opened first on a fresh server: the page scripts live in app_pages/, not
    # pages/, because a pages/ folder makes Streamlit serve such a first deep link in its legacy mode.
    page.goto(f"{base}/learn?{LESSON}")
    page.get_by_role("heading", name="1. Positive and negative data").wait_for()
    wait_idle(page)
    nav = page.locator('[data-testid="stSidebarNav"]')
    assert "Compare FF vs FGFF" in nav.inner_text()  # the app's navigation, not a file listing
    page.locator(".js-plotly-plot").first.wait_for()
    no_exception(page)
    assert "sample=7" in page.url and "epochs=200" in page.url
    shot(page, "learn-step1")

    # -- 2: one layer, goodness and losses (untrained net) ----------------------------------------
    next_step(page, 2)
    page.get_by_text("softplus loss").wait_for()
    no_exception(page)
    shot(page, "learn-step2")

    # -- 3: train step by step --------------------------------------------------------------------
    next_step(page, 3)
    assert "untrained" in progress(page)
    page.get_by_role("button", name="+1 epoch").click()
    page.wait_for_function("() => /1\\/400 layer-epochs/.test(document.querySelector('[data-testid=\"stProgress\"]')"
                           ".innerText)")
    page.get_by_role("button", name="+10 epochs").click()
    page.wait_for_function("() => /11\\/400 layer-epochs/.test(document.querySelector('[data-testid=\"stProgress\"]')"
                           ".innerText)")
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => { const m = document.querySelector('[data-testid=\"stProgress\"]').innerText"
                           ".match(/\\((\\d+)\\/400/); return m && +m[1] >= 30; }", timeout=SLOW_MS)
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("button", name="Play").wait_for()  # the app rerun after Pause has replaced the timer
    wait_idle(page)
    page.wait_for_timeout(1500)
    paused_at = layer_epochs(page)
    assert paused_at < 400, f"Pause did not stop the training before its end: {progress(page)!r}"
    page.wait_for_timeout(2500)
    assert layer_epochs(page) == paused_at  # paused: no tick advances it
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => /fully trained/.test(document.querySelector('[data-testid=\"stProgress\"]')"
                           ".innerText)", timeout=SLOW_MS)
    wait_idle(page)
    wait_visible_text(page, "Test accuracy")
    acc = page.locator('[data-testid="stMetric"]', has_text="Test accuracy").locator(
        '[data-testid="stMetricValue"]').inner_text()
    shot(page, "learn-step3")
    assert float(acc.split()[0]) > 50.0, acc
    no_exception(page)

    # -- 4: FF vs FGFF through the job manager -------------------------------------------------------
    next_step(page, 4)
    page.get_by_role("button", name="Train FF and FGFF").click()
    wait_chart_titled(page, "FGFF: significance factor of each neuron", timeout=SLOW_MS)
    wait_idle(page)
    wait_visible_text(page, "Test accuracy (whole digits test set)", exact=False)
    no_exception(page)
    shot(page, "learn-step4")
    step4_url = page.url

    # -- 5: prediction ------------------------------------------------------------------------------
    next_step(page, 5)
    page.get_by_text("Test set (450 images)", exact=False).first.wait_for()
    page.get_by_text("Your own digit").wait_for()
    no_exception(page)
    shot(page, "learn-step5")

    # -- a teacher's link to step 4 with two controls hidden: opens there, with the stored result ----
    stored = set(RunStore(runs).runs()["run_id"])
    page.goto(f"{step4_url}&hide=lr,seed")
    page.get_by_role("heading", name=re.compile(r"^4\. ")).wait_for()
    wait_chart_titled(page, "FGFF: significance factor of each neuron")
    wait_idle(page)
    assert set(RunStore(runs).runs()["run_id"]) == stored  # the stored runs are shown: nothing trained again
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_text("Threshold").count() == 1
    assert sidebar.get_by_text("Learning rate (weights)").count() == 0
    assert sidebar.get_by_text("Seed").count() == 0
    no_exception(page)
