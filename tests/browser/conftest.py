"""Browser tests: a failing test leaves a screenshot of its page in ``test-artifacts/screenshots/``."""

from __future__ import annotations

import contextlib

import pytest
from app_server import ARTIFACTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    page = getattr(item, "funcargs", {}).get("chromium_page")
    if report.when == "call" and report.failed and page is not None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):  # a crashed browser: the failure itself says enough
            page.screenshot(path=str(ARTIFACTS / f"failure-{item.name}.png"), full_page=True)
