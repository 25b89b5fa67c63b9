"""Learn step 5's drawing canvas in real headless Chromium: strokes reach the network, on a desktop and a phone.

The canvas is a ``st.components.v2`` component: it renders in the page's own DOM, in an open shadow root
(``stBidiComponentIsolated``), which Playwright's locators pierce; there is no iframe. Each test draws
real strokes with ``page.mouse.down/move/up`` inside the canvas's bounding box (the phone test also with a
finger, CDP touch events) and waits until the "Your own digit" scores chart changes and its caption says
it scores the drawing; it prints how long each stroke took to reach the chart. A payload the page cannot
read (sent from the page's JavaScript) is a sentence, and Clear goes back to the test sample's pixels.
With ``FGFF_SAVE_SCREENSHOTS=docs/screenshots`` the desktop test saves the panel with a drawn 7 as
``learn-draw.png`` there too.

Run: ``python -m pytest -m browser tests/browser/test_draw_e2e.py -q -s``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from app_server import ARTIFACTS
from test_e2e import CHROMIUM_ARGS, no_exception, server, wait_idle  # noqa: F401 - server is a fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

LESSON = "step=5&sample=7"
CANVAS = '[data-testid="fgff-digit-canvas"]'
# The own-digit scores chart's bars, as JSON: what a stroke must change.
SCORES_JS = ("() => { const p = document.querySelector('.st-key-step5_own_scores .js-plotly-plot');"
             " return p && p.data ? JSON.stringify(p.data.map(t => t.y)) : null; }")
SEND_JS = ("(payload) => [...document.querySelectorAll('[data-testid=\"stBidiComponentIsolated\"]')]"
           ".map(h => h.shadowRoot && h.shadowRoot.querySelector('canvas')).find(c => c && c.fgffSend)"
           ".fgffSend(payload)")
SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]]  # one stroke: the bar and the leg of a 7
BAR = [[(0.5, 0.15), (0.52, 0.85)]]  # a 1


@pytest.fixture(scope="module")
def browser(server):  # noqa: F811 - pytest fixture
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_step5(browser, base: str, **context):
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{base}/learn?{LESSON}")
    page.get_by_role("heading", name=re.compile(r"^5\. ")).wait_for()
    page.locator(CANVAS).wait_for()
    wait_idle(page)
    page.wait_for_function(f"() => ({SCORES_JS})() !== null")
    return page


def scores_caption(page) -> str:
    return page.locator('[data-testid="stCaptionContainer"]', has_text="Scored:").first.inner_text()


def wait_scores_changed(page, before: str, source: str) -> str:
    """Until the scores chart differs from ``before`` and its caption names ``source``; the new bars."""
    page.wait_for_function(
        "([before, source]) => { const now = (" + SCORES_JS + ")(); return now !== null && now !== before &&"
        " [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
        ".some(c => c.innerText.startsWith('Scored: ' + source)); }", arg=[before, source])
    return page.evaluate(SCORES_JS)


def draw(page, strokes, finger: bool = False) -> float:
    """Draw ``strokes`` (lists of points, 0..1 of the canvas's box) with the mouse, or a finger through CDP
    touch events; wait until the scores reflect the drawing. Seconds from the last stroke's end to then."""
    canvas = page.locator(CANVAS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    before = page.evaluate(SCORES_JS)
    points = [[(box["x"] + u * box["width"], box["y"] + v * box["height"]) for u, v in stroke] for stroke in strokes]
    cdp = page.context.new_cdp_session(page) if finger else None
    for stroke in points:
        if finger:
            def touch(kind: str, xy: tuple[float, float] | None = None) -> None:
                cdp.send("Input.dispatchTouchEvent",
                         {"type": kind, "touchPoints": [] if xy is None else [{"x": xy[0], "y": xy[1]}]})
            touch("touchStart", stroke[0])
            for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
                for k in range(1, 9):
                    touch("touchMove", (x0 + (x1 - x0) * k / 8, y0 + (y1 - y0) * k / 8))
            started = time.monotonic()
            touch("touchEnd")
        else:
            page.mouse.move(*stroke[0])
            page.mouse.down()
            for xy in stroke[1:]:
                page.mouse.move(*xy, steps=8)
            started = time.monotonic()
            page.mouse.up()
    wait_scores_changed(page, before, "your drawing")
    return time.monotonic() - started


def save_panel_screenshot(page) -> None:
    """The "Your own digit" panel, for the README (only with ``FGFF_SAVE_SCREENSHOTS``)."""
    if not os.environ.get("FGFF_SAVE_SCREENSHOTS"):
        return
    wait_idle(page)
    page.wait_for_function("() => document.querySelectorAll('.st-key-step5_own_scores .bars path').length >= 20")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    panel = page.locator('[data-testid="stColumn"]').filter(has=page.get_by_text("Your own digit")).last
    panel.screenshot(path=str(ARTIFACTS / "learn-draw.png"))
    Path(os.environ["FGFF_SAVE_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
    shutil.copy(ARTIFACTS / "learn-draw.png", Path(os.environ["FGFF_SAVE_SCREENSHOTS"]) / "learn-draw.png")


def test_drawing_on_a_desktop_scores_each_stroke(server, browser):  # noqa: F811 - pytest fixtures
    base, _ = server
    # Tall enough for the whole panel: Streamlit scrolls inside its main block, so an element screenshot
    # shows only what lies in the viewport.
    page = open_step5(browser, base, viewport={"width": 1280, "height": 1800})
    if os.environ.get("FGFF_SAVE_SCREENSHOTS"):  # the README's picture: a trained net that reads the 7
        page.get_by_role("button", name=re.compile(r"^Train the network now")).click()
        page.get_by_text("Network: ", exact=False).filter(has_text="fully trained").first.wait_for(timeout=300_000)
        wait_idle(page)
    assert "test sample 7's pixels" in scores_caption(page)
    print(f"\ndesktop, a 7 drawn with the mouse: scores shown {draw(page, SEVEN):.2f} s after the stroke")
    assert scores_caption(page).startswith("Scored: your drawing")
    no_exception(page)
    save_panel_screenshot(page)

    before = page.evaluate(SCORES_JS)
    page.locator('[data-testid="stBidiComponentIsolated"]').get_by_role("button", name="Clear").click()
    wait_scores_changed(page, before, "test sample 7's pixels")
    # What the page's JavaScript could send that is no drawing: a sentence, and the sample is scored.
    for payload in ("data:image/png;base64,AAAA", 12345):
        page.evaluate(SEND_JS, payload)
        page.get_by_text("This drawing could not be read (drawing:", exact=False).first.wait_for()
        wait_idle(page)
        no_exception(page)
        assert "test sample 7's pixels" in scores_caption(page)
    page.context.close()


def test_drawing_on_a_phone_with_mouse_and_finger(server, browser):  # noqa: F811 - pytest fixtures
    base, _ = server
    page = open_step5(browser, base, viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    box = page.locator(CANVAS).bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] >= 200  # whole, and big enough
    print(f"\nphone, a 1 drawn with the mouse: {draw(page, BAR):.2f} s")
    print(f"phone, a 7 drawn over it with a finger: {draw(page, SEVEN, finger=True):.2f} s")
    page.context.close()
