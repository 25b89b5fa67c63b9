"""Issue 39 item 1 in real headless Chromium: the Compare launch flow, repeated, must never end in a traceback or
a lost page. The picked runs move from queued to running to done while the page watches them; their picker
labels once changed with their status, and the browser's old labels then crashed the page
(``TypeError: bad argument type for built-in operation``).

Run: ``python -m pytest -m browser tests/browser/test_compare_flow.py -q``.
"""

from __future__ import annotations

import pytest
from test_classroom import goto, launch_again, wait_done
from test_e2e import chromium_page, no_exception, server, wait_idle  # noqa: F401 - fixtures

from fgff_core.store import RunStore

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


@pytest.mark.parametrize("epochs", [5, 7, 9])  # distinct runs each time: nothing is merged with the last launch
def test_compare_launch_watch_to_the_end_without_a_traceback(server, chromium_page, epochs):  # noqa: F811
    base, page = server[0], chromium_page
    store = RunStore(server[1])
    goto(page, f"{base}/compare?preset=tiny-digits", "Compare FF vs FGFF")
    spin = page.get_by_role("spinbutton", name="Epochs per layer")
    spin.fill(str(epochs))
    spin.press("Enter")  # submits the form: the launch; then Start, the double launch of the issue
    page.wait_for_function("() => /run=/.test(location.search)", timeout=60_000)
    launch_again(page)
    wait_idle(page)
    no_exception(page)
    # Every run the two presses made (a second FF run when the first had already finished: only queued or
    # running twins are joined, test_classroom's case01 is about that), all to their end.
    wait_done(store, list(store.runs()["run_id"]))  # the page's live view redraws itself meanwhile
    # the final table's caption, drawn once the runs finished, with the pair of the URL picked
    page.get_by_text("Means over the finished runs").filter(visible=True).first.wait_for(timeout=120_000)
    wait_idle(page)
    no_exception(page)
    assert page.get_by_text("unexpected problem").count() == 0
    ids = [r for r in page.evaluate("() => new URLSearchParams(location.search).get('run')").split(",") if r]
    assert len(ids) == 2, ids
    # The run picker by its label: the launch form's Algorithms picker (folded away) comes first on the page.
    picked = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Runs to compare").first.inner_text()
    assert all(r in picked for r in ids), picked
