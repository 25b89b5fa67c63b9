"""Issue 39 item 1, three students at once: each launches a Compare pair on one server, and each page must
survive its runs ending. In a class walk, a student's page went blank when their run ended in 2 of 5 trials
(the browser logged "Cannot set a node at a delta path") and one never recovered.

Run: ``python -m pytest -m browser tests/browser/test_compare_class.py -q``.
"""

from __future__ import annotations

import pytest
from test_classroom import wait_done
from test_e2e import CHROMIUM, CHROMIUM_ARGS, no_exception, served_app, wait_idle

from fgff_core.store import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

STUDENTS = 3
SLOW_MS = 240_000  # a shared, busy machine


def test_three_students_launch_at_once_and_every_page_survives_its_runs_ending(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with served_app(tmp_path_factory, {"FGFF_MAX_CONCURRENT": "2"}) as (base, runs), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages, errors = [], []
        for student in range(STUDENTS):
            page = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
            page.set_default_timeout(SLOW_MS)
            page.on("console", lambda msg, s=student: errors.append((s, msg.text)) if msg.type == "error" else None)
            page.on("pageerror", lambda exc, s=student: errors.append((s, str(exc))))
            # distinct epochs: distinct runs, so nobody joins another student's pair
            page.goto(f"{base}/compare?preset=tiny-digits&epochs={4 + student}")
            pages.append(page)
        for page in pages:
            page.get_by_role("button", name="Start FF and FGFF").wait_for()
            wait_idle(page)
        for page in pages:  # as close together as one driver can press
            page.get_by_role("button", name="Start FF and FGFF").click()
        ids = []
        for page in pages:
            page.wait_for_function("() => /run=[0-9a-f]+(%2C|,)[0-9a-f]+/.test(location.search)")
            ids.append(page.evaluate("() => new URLSearchParams(location.search).get('run')").split(","))
        assert len({r for pair in ids for r in pair}) == 2 * STUDENTS, ids
        wait_done(RunStore(runs), [r for pair in ids for r in pair])
        for page, pair in zip(pages, ids):  # each page redraws its finished pair: the final table, no blank page
            page.get_by_text("Means over the finished runs").filter(visible=True).first.wait_for()
            wait_idle(page)
            no_exception(page)
            assert page.get_by_text("unexpected problem").count() == 0
            picked = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Runs to compare").first
            assert all(r in picked.inner_text() for r in pair)
        assert not [e for e in errors if "delta path" in e[1] or "Uncaught" in e[1]], errors
        browser.close()
