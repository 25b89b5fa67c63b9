"""Links to runs that no longer exist (AppTest): every page that picks runs says so (issue 15 case 4)."""

from __future__ import annotations

import pytest
from conftest import open_page


@pytest.mark.parametrize("page", ["significance", "features", "data", "compare"])
def test_a_link_to_a_deleted_run_is_a_warning(runs_dir, finished_run, page):
    at = open_page(page, run="0123456789ab")
    assert not at.exception, at.exception
    assert any("'0123456789ab' from the link does not exist" in w.value for w in at.warning), \
        [w.value for w in at.warning]
