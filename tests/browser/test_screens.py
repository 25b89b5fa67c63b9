"""Every page at a phone's (390x844), a projector's (1024x768) and a laptop's (1280x720) size in real headless
Chromium, the laptop in a browser set to dark mode (the app then takes its dark theme; the page background is
checked in each theme): a screenshot of each
(``test-artifacts/screenshots/<page>-<screen>.png``), no button, metric or widget label cut off ("Sta…"), no
exception box, readable chart ticks and axis titles (at least 13 px, in a colour of at least WCAG's 4.5:1 contrast
on the chart's own background), no chosen value cut off (from 1024 px on), and no table wider than the screen
(Compare's final metrics on a phone), issue 39 item 7.

The server gets a runs folder with one finished FF and one finished FGFF run (trained in this process through the
job worker's own code path), so every page has something to draw. One test per screen, each page visited once.

Run: ``python -m pytest -m browser tests/browser/test_screens.py -q``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from app_server import ARTIFACTS
from test_e2e import CHROMIUM, CHROMIUM_ARGS, served_app, wait_idle

from fgff_core.config import RunConfig
from fgff_core.viz.theme import MIN_TEXT_CONTRAST, contrast_ratio

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

# Each screen: width, height and the theme. Layout depends on the width only, so the dark theme is checked at one
# size, the laptop's.
SCREENS = {"phone": (390, 844, "light"), "projector": (1024, 768, "light"), "laptop-dark": (1280, 720, "dark")}
# Below this width a row of chips or pills may run past its field where it scrolls under a faded edge: no phone row
# holds two long chips. From a projector's width on, every chosen value and choice is in view.
CHIPS_MAY_SCROLL_BELOW_PX = 1024
# Each theme's page background, as the browser computes it: .streamlit/config.toml's [theme.light] and [theme.dark].
# The server sets no base, so the browser's colour scheme (a user's system setting) picks the theme.
BACKGROUNDS = {"light": "rgb(255, 255, 255)", "dark": "rgb(23, 22, 20)"}
MIN_CHART_TEXT_PX = 13

# Each button (and each element inside it) whose text is wider than its box, by its label.
# A box whose text is cut with an ellipsis shows "…" for a single pixel too wide ("Back to ste…" was 1 px over
# its box); elsewhere a pixel of rounding is allowed.
SLACK_JS = "const slack = e => getComputedStyle(e).textOverflow === 'ellipsis' ? 0 : 1;"
TRUNCATED_BUTTONS_JS = """() => { """ + SLACK_JS + """ return [...document.querySelectorAll('button')]
  .filter(b => b.offsetParent !== null && b.innerText.trim())
  .filter(b => [b, ...b.querySelectorAll('*')].some(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + slack(e)))
  .map(b => b.innerText.trim()); }"""
# Each metric's or widget's label in the page (not the sidebar, folded away on a phone) cut off: its text wider
# than its box.
TRUNCATED_LABELS_JS = """() => { """ + SLACK_JS + """ return [...document.querySelectorAll(
    '[data-testid="stMain"] [data-testid="stMetricLabel"], [data-testid="stMain"] [data-testid="stWidgetLabel"]')]
  .filter(m => m.offsetParent !== null)
  .filter(m => [m, ...m.querySelectorAll('*')].some(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + slack(e)))
  .map(m => m.innerText.trim()); }"""
# Each chosen value or choice in the page that its field cuts: a selectbox's value wider than its box; a multiselect's
# chips, or a row of pills or segments, running past its field. A row that runs past its field says whether it
# scrolls sideways under a faded edge (Streamlit's own hint).
CUT_VALUES_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stSelectbox"] input,'
    + ' [data-testid="stMain"] [data-testid="stMultiSelectTagsContainer"],'
    + ' [data-testid="stMain"] [data-testid="stButtonGroup"] [role="toolbar"]')]
  .filter(e => e.checkVisibility() && e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
  .map(e => ({text: (e.value || e.innerText).trim().replace(/\\s*\\n\\s*/g, ' | '),
              hinted: e.tagName !== 'INPUT' && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                      && getComputedStyle(e).maskImage !== 'none'}))"""
# Each static table (Compare's final metrics, Train's and Runs' final accuracy) wider than the page gives it: its
# first row's cells, some of them off the screen.
WIDE_TABLES_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stTable"]')]
  .filter(t => t.checkVisibility() && [t, ...t.querySelectorAll('*')].some(e => e.clientWidth > 0
                                                                   && e.scrollWidth > e.clientWidth + 1))
  .map(t => [...t.querySelectorAll('th')].map(h => h.innerText.trim()).join(' | '))"""
# Each chart's tick labels (the axes' and colour bars'), axis titles and legend titles: font size (px), colour and
# what it is drawn on: its chart's background, or the page's where the chart's is transparent.
CHART_TEXT_JS = """() => {
  const page = getComputedStyle(document.querySelector('.stApp')).backgroundColor;
  return [...document.querySelectorAll('.js-plotly-plot')].flatMap(p => {
    const paper = (p._fullLayout && p._fullLayout.paper_bgcolor) || 'rgba(0, 0, 0, 0)';
    const bg = /^rgba\\(.*,\\s*0\\)$/.test(paper) || paper === 'transparent' ? page : paper;
    return [...p.querySelectorAll('.xtick text, .ytick text, .cbaxis text, .xtitle, .ytitle, .legendtitletext')]
      .filter(t => t.textContent.trim())
      .map(t => ({size: parseFloat(getComputedStyle(t).fontSize), fill: getComputedStyle(t).fill, bg}));
  }); }"""
# Until every Plotly chart on the page is drawn (has its full data).
CHARTS_DRAWN_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].every(p => p._fullData)"""
# Until the page is drawn: no grey placeholder of an element still to come, and at least n charts, each drawn.
APP_BACKGROUND_JS = "() => getComputedStyle(document.querySelector('[data-testid=\"stApp\"]')).backgroundColor"
PAGE_READY_JS = """(n) => !document.querySelector('[data-testid="stSkeleton"]')
  && document.querySelectorAll('.js-plotly-plot').length >= n
  && [...document.querySelectorAll('.js-plotly-plot')].every(p => p._fullData)"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A runs folder with a finished FF, FGFF, MF and BP run of the tiny digits net: (folder, ff id, fgff id, mf id,
    bp id). Compare shows all four: its final table's widest case, four groups, on a phone too."""
    from fgff_core.jobs import worker_main
    from fgff_core.store import RunStore

    runs = tmp_path_factory.mktemp("runs")
    store, ids = RunStore(runs), []
    base = RunConfig(dataset="digits", layers=(20, 20), epochs=6, eval_every=3, eval_subset=200)
    for algo in ("ff", "fgff", "mf", "bp"):
        rid = store.create_run(base.replace(algo=algo), name=f"screens {algo}")
        assert store.queue.claim(rid)
        worker_main(str(runs), rid)
        ids.append(rid)
    return runs, *ids


@pytest.fixture(scope="module")
def server(stored, tmp_path_factory) -> Iterator[str]:
    """The app's URL on the stored runs: one server for every screen and theme."""
    env = {"FGFF_MAX_CONCURRENT": "1", "FGFF_WARM_WORKER": "0"}
    with served_app(tmp_path_factory, env, stored[0]) as (url, _):
        yield url


def pages(ff: str, fgff: str, mf: str, bp: str) -> dict[str, tuple[str, int]]:
    """Each page's address, with the stored runs picked, and how many charts it draws: the checks wait for all of
    them (with fewer, Significance was checked before its class-preference chart came, whose pale axis titles
    passed)."""
    return {"train": (f"/?run={fgff}", 4), "compare": (f"/compare?run={ff},{fgff},{mf},{bp}", 2),
            "significance": (f"/significance?run={fgff}", 5), "features": (f"/features?run={fgff}", 1),
            "data": (f"/data?run={fgff}", 3), "runs": (f"/runs?run={fgff}", 2), "learn": ("/learn?step=3", 2),
            "learn-step2": ("/learn?step=2", 1)}  # its five metrics once cut their labels at 1024 px


def _screenshot(page, path: Path, width: int, height: int) -> None:
    """The whole page at this width: Streamlit scrolls inside its main block, so the viewport grows to the
    content's height for the picture (the width, which decides the layout, stays) and shrinks back."""
    content = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": max(height, min(int(content), 6000))})
    page.wait_for_function(CHARTS_DRAWN_JS)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": height})


@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_page_fits_the_screen(server, stored, screen):
    from playwright.sync_api import sync_playwright

    width, height, theme = SCREENS[screen]
    base = server
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": width, "height": height}, color_scheme=theme).new_page()
        page.set_default_timeout(120_000)  # t-SNE and the lesson's charts, on a busy machine
        for name, (path, charts) in pages(*stored[1:]).items():
            page.goto(base + path)
            page.locator("h1").first.wait_for()
            page.wait_for_function(PAGE_READY_JS, arg=charts)
            wait_idle(page)
            background = page.evaluate(APP_BACKGROUND_JS)
            if background != BACKGROUNDS[theme]:
                problems.append(f"{name}: a {theme} browser got the page background {background}")
            _screenshot(page, ARTIFACTS / f"{name}-{screen}.png", width, height)
            if page.locator('[data-testid="stException"]').count():
                problems.append(f"{name}: an exception box")
            cut = page.evaluate(TRUNCATED_BUTTONS_JS)
            if cut:
                problems.append(f"{name}: button labels cut off: {cut}")
            cut = page.evaluate(TRUNCATED_LABELS_JS)
            if cut:
                problems.append(f"{name}: metric or widget labels cut off: {cut}")
            cut = [v["text"] for v in page.evaluate(CUT_VALUES_JS)
                   if not (v["hinted"] and width < CHIPS_MAY_SCROLL_BELOW_PX)]
            if cut:
                problems.append(f"{name}: chosen values cut off: {cut}")
            wide = page.evaluate(WIDE_TABLES_JS)
            if wide:
                problems.append(f"{name}: tables wider than the screen: {wide}")
            texts = page.evaluate(CHART_TEXT_JS)
            small = sorted({t["size"] for t in texts if t["size"] < MIN_CHART_TEXT_PX})
            pale = sorted({f"{t['fill']} on {t['bg']}" for t in texts
                           if contrast_ratio(t["fill"], t["bg"]) < MIN_TEXT_CONTRAST})
            if small or pale:
                problems.append(f"{name}: chart ticks or axis titles of {small} px, colours {pale}")
        browser.close()
    assert not problems, "\n".join(problems)
