"""In real headless Chromium at 1440x900: the Runs page's table fits the page, its node column included.

Issue 36 item 6: the table needed horizontal scrolling at 1440 px, which hid the node column (where each run
trained). The runs folder holds 30 stored runs as the app writes them after training on a two-node Ray
cluster and locally (no training here: the table shows only stored rows).
"""

from __future__ import annotations

import socket

import pytest
from test_e2e import CHROMIUM, CHROMIUM_ARGS, no_exception, served_app, wait_idle

from fgff_core.config.schema import RunConfig
from fgff_core.format import node_label
from fgff_core.store import RunStore
from fgff_core.vocabulary import RunStatus

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NODES = [node_label(socket.gethostname(), "1a2b3c4d" * 7), node_label(socket.gethostname(), "9f8e7d6c" * 7),
         node_label(socket.gethostname())]  # two Ray nodes on this machine and a local job
# The grid's scroller: what overflows its visible width scrolls sideways; the header cells it renders (the columns
# in view) are listed in its accessibility table.
GRID_JS = """() => { const df = document.querySelector('[data-testid="stDataFrame"]');
  const scroller = df.querySelector('.dvn-scroller');
  return {scroll: scroller.scrollWidth, visible: scroller.clientWidth,
          headers: [...df.querySelectorAll('[role=columnheader]')].map(h => h.textContent)}; }"""


@pytest.fixture(scope="module")
def stored_app(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    store = RunStore(runs)
    statuses = [RunStatus.DONE] * 28 + [RunStatus.CANCELLED, RunStatus.FAILED]
    for i, status in enumerate(statuses):
        algo = ("ff", "fgff", "mf")[i % 3]
        run_id = store.create_run(RunConfig(algo=algo, dataset="digits", layers=(100, 100), epochs=200, seed=i),
                                  name=f"Quick demo: digits 2x100 {algo}")
        assert store.queue.claim(run_id)
        writer = store.writer(run_id)
        writer.started("cpu", 21_200, 400)
        writer.set_node(NODES[i % 3])
        writer.finish(status, final={"test_acc": 0.9412, "test_acc_no_significance": 0.9300, "train_acc": 0.99,
                                     "train_seconds": 12.3})
    with served_app(tmp_path_factory, {"FGFF_WARM_WORKER": "0"}, runs=runs) as app:
        yield app


def test_the_runs_table_shows_every_column_without_horizontal_scrolling_at_1440_px(stored_app):
    from playwright.sync_api import sync_playwright

    base, _ = stored_app
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{base}/runs")
            page.locator('[data-testid="stDataFrame"] [role=columnheader]').first.wait_for(state="attached")
            wait_idle(page)
            no_exception(page)
            grid = page.evaluate(GRID_JS)
        finally:
            browser.close()
    assert grid["scroll"] <= grid["visible"], grid
    assert grid["headers"][-1] == "node" and "name" in grid["headers"], grid
