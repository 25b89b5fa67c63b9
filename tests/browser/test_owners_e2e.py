"""Issue 39 item 4 in real headless Chromium: two students, each in their own browser context, on a server that
allows one queued or running run per user. Student B is not refused because of student A's run, does not land on
it when opening ``/``, and cannot cancel it; A can.

Run: ``python -m pytest -m browser tests/browser/test_owners_e2e.py -q``.
"""

from __future__ import annotations

import pytest
from test_e2e import (
    CHROMIUM,
    CHROMIUM_ARGS,
    cancel_shown_run,
    no_exception,
    served_app,
    start_long_run,
    wait_idle,
    wait_visible_text,
)

from fgff_core.store import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

OWNER_JS = "() => new URLSearchParams(location.search).get('me')"
RUN_JS = "() => new URLSearchParams(location.search).get('run')"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"FGFF_MAX_CONCURRENT": "1", "FGFF_WARM_WORKER": "0", "FGFF_LIMIT_MAX_QUEUED_PER_OWNER": "1"}
    with served_app(tmp_path_factory, env) as app:
        yield app


@pytest.fixture(scope="module")
def two_students(server):
    """Two pages, each in its own browser context (its own cookies and storage): student A and student B."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = []
        for _ in range(2):
            page = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
            page.set_default_timeout(60_000)
            pages.append(page)
        yield pages
        browser.close()


def owner_of(page) -> str:
    """The page's owner token (``?me=``), once the app has written it."""
    return page.wait_for_function(OWNER_JS).json_value()


def test_each_student_has_their_own_runs(server, two_students):
    base, store = server[0], RunStore(server[1])
    a, b = two_students

    start_long_run(a, base)  # A trains a long run: queued or running throughout the test
    a.wait_for_function(RUN_JS)
    a_run, a_me = a.evaluate(RUN_JS), owner_of(a)
    assert store.run(a_run)["owner"] == a_me

    b.goto(f"{base}/")  # a newcomer: shown none of A's runs
    b.get_by_text("Train a Forward-Forward network").wait_for()
    wait_idle(b)
    b_me = owner_of(b)
    wait_visible_text(b, "Pick a preset", exact=False)
    assert b_me != a_me and b.evaluate(RUN_JS) is None
    assert b.locator('[data-testid="stProgress"]').count() == 0 and b.get_by_text(a_run).count() == 0

    b.goto(f"{base}/?seed=1&me={b_me}")  # B's own run (another seed): one per user, and B has none yet
    b.get_by_text("Train a Forward-Forward network").wait_for()
    wait_idle(b)
    b.get_by_role("button", name="Start training").click()
    b.wait_for_function(RUN_JS)
    b_run = b.evaluate(RUN_JS)
    assert b_run != a_run and store.run(b_run)["owner"] == b_me
    wait_idle(b)
    assert b.get_by_text("Could not start").count() == 0
    b.locator('[data-testid="stSidebarNav"]').get_by_text("Runs", exact=True).click()  # drops the URL's params
    b.get_by_role("heading", name="Runs").wait_for()
    assert owner_of(b) == b_me  # still B

    b.goto(f"{base}/?run={a_run}&me={b_me}")  # A's run, by its link: B may watch it, not cancel it
    wait_visible_text(b, "was started in another browser session: only that session or the teacher may cancel",
                      exact=False)
    assert b.get_by_role("button", name="Cancel", exact=True).count() == 0
    assert store.run(a_run)["status"] in ("queued", "running")
    no_exception(b)

    cancel_shown_run(a, store, a_run)  # A can
    no_exception(a)
