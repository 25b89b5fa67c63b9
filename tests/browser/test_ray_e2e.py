"""In real headless Chromium: with ``FGFF_EXECUTOR=ray`` the app's Train page trains through Ray.

Starts ``streamlit run app.py`` with the Ray executor (a local Ray instance, started by the app's
job manager), presses Start on the Train page and checks that the quick demo trains on a Ray node to the
end; then starts a long run from a link, watches its progress and curve grow while it trains (nothing
clicked), cancels it, and checks that the Runs page shows the cluster panel.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

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
    watch_live_curves,
)

from fgff_core.store import RunStore

pytest.importorskip("ray")
pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
RAY_NODE = f"{socket.gethostname()} · "  # a Ray node's label starts so (format.node_label); a local job's is the name
TIMEOUT_MS = 300_000  # starting Ray and its first worker takes seconds alone, much longer on a busy machine


@pytest.fixture(scope="module")
def ray_app(tmp_path_factory):
    with served_app(tmp_path_factory, {"FGFF_EXECUTOR": "ray", "FGFF_MAX_CONCURRENT": "1"}) as app:
        yield app


def test_train_page_start_trains_through_ray_with_live_curves(ray_app):
    from playwright.sync_api import sync_playwright

    base, runs = ray_app
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1440, "height": 2000}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            _train_through_ray(base, runs, page)
        except BaseException:
            main = page.locator('[data-testid="stMain"]')
            print("page text at the failure:", main.inner_text()[:3000] if main.count() else page.content()[:3000])
            print("runs:", RunStore(runs).runs()[["status", "epochs_done", "node", "error"]].to_string())
            raise
        finally:
            browser.close()


def _train_through_ray(base: str, runs: Path, page) -> None:
    store = RunStore(runs)
    page.goto(base)
    page.get_by_text("Train a Forward-Forward network").wait_for()
    wait_idle(page)  # the form opens on the first preset, the quick digits one (a picked preset fills it)
    page.get_by_role("button", name="Start training").click()
    wait_visible_text(page, "Test accuracy", timeout=TIMEOUT_MS)
    no_exception(page)
    run_id = re.search(r"run=([0-9a-f]+)", page.url).group(1)
    row = store.run(run_id)
    assert row["status"] == "done" and (row["node"] or "").startswith(RAY_NODE)  # trained by a Ray worker
    assert len(store.metrics(run_id)) == row["epoch_events"]

    # Live: a run long enough to be still training while the page's own timer redraws it; then Cancel.
    start_long_run(page, base)
    live = watch_live_curves(page, store, TIMEOUT_MS)
    assert (store.run(live)["node"] or "").startswith(RAY_NODE)  # its epochs come from a Ray worker
    cancel_shown_run(page, store, live)
    assert len(store.metrics(live)) == store.run(live)["epochs_done"] > 0

    page.goto(f"{base}/runs")
    page.get_by_text(re.compile(r"^Ray cluster: 1 node, ")).wait_for()
    wait_idle(page)
    no_exception(page)
