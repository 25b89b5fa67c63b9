"""Browser Back and Forward follow the lesson's steps (issue 39 item 6: Back jumped to Train with the lesson's
parameters). Each step the page writes is a history entry; going back reruns the page with that entry's URL, and
the lesson takes its step from it.

Run: ``python -m pytest -m browser tests/browser/test_learn_history.py -q``.
"""

from __future__ import annotations

import re

import pytest
from test_e2e import chromium_page, no_exception, server, wait_idle  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def on_step(page, n: int) -> None:
    """Until the lesson shows step ``n`` and its URL says so, on the Learn page."""
    page.get_by_role("heading", name=re.compile(rf"^{n}\. ")).wait_for()
    wait_idle(page)
    page.wait_for_function("(n) => location.pathname.endsWith('/learn') && new URLSearchParams(location.search)"
                           ".get('step') === String(n)", arg=n)


def test_back_and_forward_walk_the_lesson_steps(server, chromium_page):  # noqa: F811 - pytest fixtures
    url, _ = server
    page = chromium_page
    page.goto(f"{url}/learn?step=1")
    on_step(page, 1)
    for n in (2, 3):
        page.get_by_role("button", name=f"Next: step {n}").click()
        on_step(page, n)
    page.go_back()
    on_step(page, 2)
    page.go_back()
    on_step(page, 1)
    page.go_forward()
    on_step(page, 2)
    no_exception(page)
