"""Issue 15 in real headless Chromium: the app in front of a class, one test per numbered case that
only a browser shows (Enter in a form, typing without Enter, overlapping labels, the drawing canvas,
file uploads). The other cases have AppTest tests in tests/app/. One server for the module.

Run: ``python -m pytest -m browser tests/browser/test_classroom.py -q``.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from test_e2e import chromium_page, no_exception, server, wait_chart_titled, wait_idle  # noqa: F401 - fixtures

from fgff_core.store import RunStore, import_checkpoint

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

SLOW_MS = 240_000  # a shared, busy machine
COMPARE = "preset=tiny-digits"  # the Classroom preset (2x20 on digits)


def goto(page, url: str, heading: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for()
    wait_idle(page)


def boxes(page, plot: int, selectors: list[str]) -> list[dict]:
    """Bounding boxes of the elements matching ``selectors`` inside the ``plot``-th Plotly chart."""
    return page.evaluate(
        """([i, sels]) => { const p = document.querySelectorAll('.js-plotly-plot')[i]; const out = [];
           for (const s of sels) for (const e of p.querySelectorAll(s)) { const r = e.getBoundingClientRect();
             if (r.width > 0 && r.height > 0) out.push({sel: s, text: (e.textContent || '').slice(0, 40),
               x: r.left, y: r.top, w: r.width, h: r.height}); }
           return out; }""", [plot, selectors])


def overlaps(items: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            if dx > 1 and dy > 1:
                out.append((f"{a['sel']} {a['text']}", f"{b['sel']} {b['text']}"))
    return out


@pytest.fixture(scope="module")
def store(server):  # noqa: F811 - pytest fixture
    return RunStore(server[1])


def wait_done(store: RunStore, ids: list[str]) -> None:
    deadline = time.time() + SLOW_MS / 1000
    while time.time() < deadline and any(store.run(r)["status"] in ("queued", "running") for r in ids):
        time.sleep(1)
    assert [store.run(r)["status"] for r in ids] == ["done"] * len(ids)


def launch_again(page) -> None:
    """Press Compare's Start a second time. A launch folds its form at once (the page reruns), so the second
    press opens the form again first, as a student would."""
    start = page.get_by_role("button", name="Start FF and FGFF")
    expect(start).to_be_hidden(timeout=SLOW_MS)  # folded by the launch, not later under the click
    page.get_by_text("Launch FF and FGFF", exact=False).first.click()
    start.click()


def test_case01_enter_then_start_launches_once(server, chromium_page, store):  # noqa: F811
    base, page = server[0], chromium_page
    goto(page, f"{base}/compare?{COMPARE}", "Compare FF vs FGFF")
    epochs = page.get_by_role("spinbutton", name="Epochs per layer")
    epochs.fill("6")
    epochs.press("Enter")  # submits the form: the first launch
    page.wait_for_function("() => /run=/.test(location.search)", timeout=60_000)
    launch_again(page)  # the second press of the same form
    wait_idle(page)
    no_exception(page)
    runs = store.runs()
    assert len(runs) == 2, runs[["run_id", "status"]]
    page.get_by_text("were already queued or running").wait_for()
    wait_done(store, list(runs["run_id"]))


def test_case05_a_value_typed_without_enter_is_what_start_uses(server, chromium_page, store):  # noqa: F811
    base, page = server[0], chromium_page
    goto(page, f"{base}/", "Train a Forward-Forward network")
    before = len(store.runs())
    page.get_by_role("spinbutton", name="Epochs per layer").fill("99999999")  # no Enter
    start = page.get_by_role("button", name="Start training")
    try:  # the value may already be applied (and Start disabled) before the click: both are right
        start.click(timeout=10_000)
    except PlaywrightTimeout:
        expect(start).to_be_disabled(timeout=SLOW_MS)
    wait_idle(page)
    page.get_by_text(re.compile(r"epochs.*1000000")).first.wait_for(timeout=SLOW_MS)
    assert len(store.runs()) == before  # nothing started with the old value
    expect(page.get_by_role("button", name="Start training")).to_be_disabled(timeout=SLOW_MS)
    no_exception(page)


def test_case06_a_picked_preset_is_what_the_form_shows(server, chromium_page):  # noqa: F811
    base, page = server[0], chromium_page
    goto(page, f"{base}/", "Train a Forward-Forward network")
    page.locator('[data-testid="stSelectbox"]', has_text="Preset").click()
    page.get_by_role("option", name="Paper Table I: MNIST 2x50", exact=True).click()
    wait_idle(page)
    page.wait_for_function("() => /dataset=mnist/.test(location.search)", timeout=60_000)  # the form is MNIST
    assert page.get_by_role("textbox", name="Data folder").count() == 1  # beside the dataset, in the Main tab (case 7)
    no_exception(page)


def test_case11_play_pause_do_not_overlap_the_slider(server, chromium_page, store):  # noqa: F811
    base, page = server[0], chromium_page
    fgff = store.runs().set_index("algo").loc["fgff", "run_id"]
    goto(page, f"{base}/significance?run={fgff}", "Significance")
    page.get_by_text("Animation", exact=True).click()
    wait_idle(page)
    page.locator(".js-plotly-plot .slider-container").first.wait_for(timeout=60_000)
    items = boxes(page, 0, [".updatemenu-button", ".slider-container .slider-rail", ".slider-container .slider-grip"])
    assert any(i["sel"] == ".updatemenu-button" for i in items)
    assert overlaps(items) == []
    no_exception(page)


def test_case12_two_maps_stay_level_when_a_title_wraps(server, chromium_page, store):  # noqa: F811
    base, page = server[0], chromium_page
    runs = store.runs().set_index("algo")
    store.rename(runs.loc["ff", "run_id"], "a classroom run with a long name that wraps over two lines " * 2)
    goto(page, f"{base}/features?run={runs.loc['ff', 'run_id']},{runs.loc['fgff', 'run_id']}&samples=250",
         "Features (t-SNE)")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=SLOW_MS)
    wait_idle(page)
    tops = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(p => "
                         "p.getBoundingClientRect().top)")
    assert abs(tops[0] - tops[1]) < 2, tops
    no_exception(page)


def test_case03_an_imported_checkpoint_never_shows_nan(server, chromium_page, store):  # noqa: F811
    base, page = server[0], chromium_page
    fgff = store.runs().set_index("algo").loc["fgff", "run_id"]
    import_checkpoint(store, store.checkpoint_path(fgff), name="imported copy")
    goto(page, f"{base}/learn?step=4&epochs=6", "4. The significance factors: FF vs FGFF")
    wait_chart_titled(page, "FGFF: significance factor of each neuron")
    wait_idle(page)
    main = page.locator('[data-testid="stMain"]').inner_text()
    assert "nan" not in main.lower().replace("nanmean", ""), main
    no_exception(page)


def test_case13_and_16_navigation_stays_and_labels_do_not_overlap(server, chromium_page):  # noqa: F811
    base, page = server[0], chromium_page
    goto(page, f"{base}/learn?step=4&layers=8,6&epochs=5", "4. The significance factors: FF vs FGFF")
    page.get_by_role("button", name="Train FF and FGFF").wait_for()
    page.get_by_role("button", name="Next: step 5").wait_for()
    page.get_by_role("button", name="Back to step 3").wait_for()
    page.get_by_text("Teacher: share this lesson").wait_for()
    for step, heading in [(2, "2. One layer: goodness and loss"), (3, "3. Training, layer by layer")]:
        goto(page, f"{base}/learn?step={step}", heading)
        page.locator(".js-plotly-plot").first.wait_for()
        page.wait_for_timeout(800)
        items = boxes(page, 0, [".legend", ".gtitle", ".annotation"])
        assert overlaps(items) == [], (step, overlaps(items))
    goto(page, f"{base}/learn?step=5", "5. Prediction")
    # The heading can arrive a rerun before the step bar does: wait for the bar itself.
    page.locator('[data-testid="stButtonGroup"]').first.wait_for()
    page.locator('[data-testid="stMainBlockContainer"]').first.wait_for()
    bar = page.evaluate("() => { const b = document.querySelector('[data-testid=\"stButtonGroup\"]');"
                        " const m = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
                        " return [b.getBoundingClientRect().right, m.getBoundingClientRect().right,"
                        " b.scrollWidth, b.clientWidth]; }")
    assert bar[0] <= bar[1] + 1 and bar[2] <= bar[3] + 1, bar
    no_exception(page)


def test_case14_and_15_a_hidden_step_bar_link_trains_and_uploads_get_a_sentence(server, chromium_page):  # noqa: F811
    base, page = server[0], chromium_page
    goto(page, f"{base}/learn?step=5&hide=step&epochs=20", "5. Prediction")  # the link is tested, not the training
    page.get_by_role("button", name=re.compile("Train the network now")).click()
    page.get_by_text("fully trained", exact=False).first.wait_for(timeout=SLOW_MS)
    wait_idle(page)
    # A file that is not a picture: a sentence, not UploadedFile(file_id=...). The uploader sits in the
    # panel's expander, below the drawing canvas (tests/browser/test_draw_e2e.py draws on it).
    page.get_by_text("Upload a picture or edit the 8x8 pixels").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "digit.png", "mimeType": "image/png", "buffer": b"this is not an image"}])
    page.get_by_text("digit.png is not a picture this page can read").wait_for(timeout=60_000)
    assert "UploadedFile(" not in page.content()
    no_exception(page)


def test_case17_a_text_file_named_safetensors_gets_a_sentence_without_paths(server, chromium_page):  # noqa: F811
    base, page = server[0], chromium_page
    goto(page, f"{base}/runs", "Runs")
    page.get_by_text("Upload a checkpoint to inspect").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "notes.safetensors", "mimeType": "application/octet-stream", "buffer": b"plain text\n" * 20}])
    page.get_by_role("button", name="Import checkpoint").click()
    error = page.get_by_text("notes.safetensors is not a safetensors checkpoint")
    error.wait_for(timeout=60_000)
    text = error.inner_text()
    assert "/tmp" not in text and "pickle" not in text
    no_exception(page)
