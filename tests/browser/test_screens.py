"""Every page at a phone's (390x844) and a projector's (1024x768) size in real headless Chromium: a screenshot
of each (``test-artifacts/screenshots/<page>-<size>.png``), no button, metric or widget label cut off ("Sta…"), no
exception box, and readable chart ticks (at least 13 px, dark), issue 39 item 7.

The server gets a runs folder with one finished FF and one finished FGFF run (trained in this process through the
job worker's own code path), so every page has something to draw. One test per size, each page visited once.

Run: ``python -m pytest -m browser tests/browser/test_screens.py -q``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_server import ARTIFACTS, running_app
from test_e2e import CHROMIUM, CHROMIUM_ARGS, wait_idle

from fgff_core.config import RunConfig

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

SIZES = {"phone": (390, 844), "projector": (1024, 768)}
MIN_TICK_PX = 13
MAX_TICK_CHANNEL = 110  # each of r, g, b at most this: a dark grey or black, not Streamlit's light grey

# Each button (and each element inside it) whose text is wider than its box, by its label.
TRUNCATED_BUTTONS_JS = """() => [...document.querySelectorAll('button')]
  .filter(b => b.offsetParent !== null && b.innerText.trim())
  .filter(b => [b, ...b.querySelectorAll('*')].some(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1))
  .map(b => b.innerText.trim())"""
# Each metric's or widget's label in the page (not the sidebar, folded away on a phone) cut off: its text wider
# than its box.
TRUNCATED_LABELS_JS = """() => [...document.querySelectorAll(
    '[data-testid="stMain"] [data-testid="stMetricLabel"], [data-testid="stMain"] [data-testid="stWidgetLabel"]')]
  .filter(m => m.offsetParent !== null)
  .filter(m => [m, ...m.querySelectorAll('*')].some(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1))
  .map(m => m.innerText.trim())"""
# Each drawn tick label's font size (px) and colour.
TICKS_JS = """() => [...document.querySelectorAll('.xtick text, .ytick text')]
  .filter(t => t.textContent.trim())
  .map(t => ({size: parseFloat(getComputedStyle(t).fontSize), fill: getComputedStyle(t).fill}))"""
# Until every Plotly chart on the page is drawn (has its full data).
CHARTS_DRAWN_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].every(p => p._fullData)"""
# Until the page is drawn: no grey placeholder of an element still to come, and at least n charts, each drawn.
PAGE_READY_JS = """(n) => !document.querySelector('[data-testid="stSkeleton"]')
  && document.querySelectorAll('.js-plotly-plot').length >= n
  && [...document.querySelectorAll('.js-plotly-plot')].every(p => p._fullData)"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A runs folder with a finished FF and FGFF run of the tiny digits net: (folder, ff id, fgff id)."""
    from fgff_core.jobs import worker_main
    from fgff_core.store import RunStore

    runs = tmp_path_factory.mktemp("runs")
    store, ids = RunStore(runs), []
    base = RunConfig(dataset="digits", layers=(20, 20), epochs=6, eval_every=3, eval_subset=200)
    for algo in ("ff", "fgff"):
        rid = store.create_run(base.replace(algo=algo), name=f"screens {algo}")
        assert store.queue.claim(rid)
        worker_main(str(runs), rid)
        ids.append(rid)
    return runs, ids[0], ids[1]


@pytest.fixture(scope="module")
def server(stored, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_app({"FGFF_RUNS_DIR": str(stored[0]), "FGFF_MAX_CONCURRENT": "1", "FGFF_WARM_WORKER": "0"},
                     tmp_path_factory.mktemp("log") / "streamlit.log") as base:
        yield base


def pages(ff: str, fgff: str) -> dict[str, tuple[str, int]]:
    """Each page's address, with the stored runs picked, and how many charts it draws at least."""
    return {"train": (f"/?run={fgff}", 3), "compare": (f"/compare?run={ff},{fgff}", 2),
            "significance": (f"/significance?run={fgff}", 1), "features": (f"/features?run={fgff}", 0),
            "data": (f"/data?run={fgff}", 1), "runs": (f"/runs?run={fgff}", 1), "learn": ("/learn?step=3", 1)}


def _dark(fill: str) -> bool:
    channels = [int(c) for c in fill[fill.index("(") + 1:fill.index(")")].split(",")[:3]]
    return max(channels) <= MAX_TICK_CHANNEL


def _screenshot(page, path: Path, width: int, height: int) -> None:
    """The whole page at this width: Streamlit scrolls inside its main block, so the viewport grows to the
    content's height for the picture (the width, which decides the layout, stays) and shrinks back."""
    content = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": max(height, min(int(content), 6000))})
    page.wait_for_function(CHARTS_DRAWN_JS)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": height})


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_fits_the_screen(server, stored, size):
    from playwright.sync_api import sync_playwright

    width, height = SIZES[size]
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": width, "height": height}).new_page()
        page.set_default_timeout(60_000)
        for name, (path, charts) in pages(stored[1], stored[2]).items():
            page.goto(server + path)
            page.locator("h1").first.wait_for()
            page.wait_for_function(PAGE_READY_JS, arg=charts)
            wait_idle(page)
            _screenshot(page, ARTIFACTS / f"{name}-{size}.png", width, height)
            if page.locator('[data-testid="stException"]').count():
                problems.append(f"{name}: an exception box")
            cut = page.evaluate(TRUNCATED_BUTTONS_JS)
            if cut:
                problems.append(f"{name}: button labels cut off: {cut}")
            cut = page.evaluate(TRUNCATED_LABELS_JS)
            if cut:
                problems.append(f"{name}: metric or widget labels cut off: {cut}")
            ticks = page.evaluate(TICKS_JS)
            small = sorted({t["size"] for t in ticks if t["size"] < MIN_TICK_PX})
            pale = sorted({t["fill"] for t in ticks if not _dark(t["fill"])})
            if small or pale:
                problems.append(f"{name}: tick labels of {small} px, colours {pale}")
        browser.close()
    assert not problems, "\n".join(problems)
