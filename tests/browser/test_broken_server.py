"""Issue 38, item 7, in real headless Chromium: a server whose run database is damaged shows each page a sentence,
with no exception box, no traceback and no server path.

Run: ``python -m pytest -m browser tests/browser/test_broken_server.py -q``.
"""

from __future__ import annotations

import pytest
from app_server import ROOT
from test_e2e import chromium_page, no_exception, served_app  # noqa: F401 - chromium_page: on this server

from fgff_core.store import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

SENTENCE = "The run store of this server cannot be opened"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a run store whose database is damaged (test_e2e's ``chromium_page`` opens it)."""
    runs = tmp_path_factory.mktemp("runs")
    db = RunStore(runs).db_path
    raw = bytearray(db.read_bytes())
    raw[100:] = b"\xa5" * (len(raw) - 100)  # every page after the header overwritten: "malformed"
    db.write_bytes(bytes(raw))
    with served_app(tmp_path_factory, {"FGFF_MAX_CONCURRENT": "1", "FGFF_WARM_WORKER": "0"}, runs) as app:
        yield app


@pytest.mark.parametrize("path", ["/", "/data", "/runs"])
def test_a_damaged_store_is_a_sentence_in_the_browser(server, chromium_page, path):  # noqa: F811
    base, runs = server
    chromium_page.goto(base + path)
    alert = chromium_page.locator('[data-testid="stAlert"]').filter(has_text=SENTENCE)
    alert.first.wait_for()
    no_exception(chromium_page)
    text = chromium_page.locator('[data-testid="stMain"]').inner_text()
    assert "Traceback" not in text
    for server_path in (str(runs), str(ROOT)):
        assert server_path not in text
