"""Navigating as a class does (issue 39 item 7). Browser Back and Forward on a page whose state is in its URL:
Compare, with two stored runs, one of them removed from its picker. Streamlit pushes a history entry per query
string a page writes and reruns the page with the entry's URL on Back; the picker kept its own state and wrote it
over that URL again, so Back showed the later selection still (Train, Runs and Significance did the same; all
restart from the URL now, see ``app_pages/_shared.note_url_arrival``). And the keyboard alone: Tab to Train's
Start and press Enter. The app menu's theme choice: Dark, then Light, each repaints the page.

Run: ``python -m pytest -m browser tests/browser/test_navigation.py -q``.
"""

from __future__ import annotations

import re

import pytest
from test_e2e import CHROMIUM, CHROMIUM_ARGS, no_exception, served_app, wait_idle
from test_screens import APP_BACKGROUND_JS, BACKGROUNDS, stored  # noqa: F401 - stored: a pytest fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

MAX_TABS = 20  # Start is the 13th stop after the page loads (the skip link, seven pages, the title, Preset's help)
# The chips of Compare's run picker.
PICKED_JS = """() => [...document.querySelector('input[aria-label="Runs to compare"]')
  .closest('[data-testid="stMultiSelect"]').querySelectorAll('[data-tag]')].map(t => t.innerText)"""


@pytest.fixture(scope="module")
def server(stored, tmp_path_factory):  # noqa: F811 - pytest fixture
    with served_app(tmp_path_factory, {"FGFF_MAX_CONCURRENT": "1", "FGFF_WARM_WORKER": "0"}, stored[0]) as app:
        yield app[0]


def on_selection(page, run_ids: list[str]) -> None:
    """Until Compare's URL and its run picker both hold exactly ``run_ids``, and the page is idle."""
    page.wait_for_function("(ids) => new URLSearchParams(location.search).get('run') === ids.join(',')",
                           arg=run_ids, timeout=120_000)
    wait_idle(page)
    page.wait_for_function(f"(ids) => {{ const tags = ({PICKED_JS})();"
                           " return tags.length === ids.length && ids.every(id => tags.some(t => t.endsWith(id))); }",
                           arg=run_ids, timeout=120_000)


def test_back_and_forward_restore_compares_picked_runs(server, stored):  # noqa: F811 - pytest fixture
    from playwright.sync_api import sync_playwright

    _, ff, fgff, *_ = stored
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{server}/compare?run={ff},{fgff}")
        page.get_by_role("heading", name="Final metrics").wait_for()
        on_selection(page, [ff, fgff])
        page.get_by_role("button", name=re.compile(f"^Remove .*{ff}$")).click()
        on_selection(page, [fgff])
        page.get_by_text("Select at least two runs", exact=False).wait_for()
        page.go_back()
        on_selection(page, [ff, fgff])
        page.get_by_role("heading", name="Final metrics").wait_for()  # the comparison again, not a blank page
        page.go_forward()
        on_selection(page, [fgff])
        no_exception(page)
        browser.close()


def test_the_keyboard_alone_reaches_and_presses_start(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{server}/?preset=tiny-digits")
        page.get_by_text("Train a Forward-Forward network").wait_for()
        wait_idle(page)
        start = page.get_by_role("button", name="Start training")
        tabs = 0
        while tabs < MAX_TABS and not start.evaluate("b => b === document.activeElement"):
            page.keyboard.press("Tab")
            tabs += 1
        assert start.evaluate("b => b === document.activeElement"), f"Start not reached in {MAX_TABS} Tabs"
        page.keyboard.press("Enter")
        page.wait_for_function("new URLSearchParams(location.search).has('run')", timeout=120_000)
        page.locator('[data-testid="stProgress"]').first.wait_for()  # the run's progress: it started
        no_exception(page)
        browser.close()


def test_the_app_menu_switches_between_the_light_and_the_dark_theme(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1024, "height": 768}, color_scheme="light").new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{server}/runs")
        page.get_by_role("heading", name="Runs").first.wait_for()
        assert page.evaluate(APP_BACKGROUND_JS) == BACKGROUNDS["light"]
        for theme in ("Dark", "Light"):
            page.get_by_test_id("stMainMenuButton").click()
            page.get_by_role("menuitemradio", name=theme).click()
            page.wait_for_function(f"() => ({APP_BACKGROUND_JS})() === {BACKGROUNDS[theme.lower()]!r}")
            page.keyboard.press("Escape")  # the menu stays open after a theme is picked
            page.get_by_test_id("stMainMenuList").wait_for(state="hidden")
        no_exception(page)
        browser.close()
