"""Issue 39: what a page does not catch is a sentence for the browser user, and a picked run's label does not
change under the user (the Compare traceback)."""

from __future__ import annotations

from types import SimpleNamespace

from conftest import open_page

from app_pages._shared import _label_of, run_label


def test_a_runs_picker_label_does_not_change_with_its_status():
    rows = [SimpleNamespace(run_id="abc123", name="class run", algo="fgff", status=s)
            for s in ("queued", "running", "done", "failed")]
    assert len({run_label(r) for r in rows}) == 1
    assert run_label(rows[0]) == "class run · FGFF · abc123"


def test_a_picker_label_function_never_returns_none():
    label = _label_of({"abc123": "class run · FGFF · abc123"})
    assert label("abc123") == "class run · FGFF · abc123"
    assert label("old label the browser still held") == "old label the browser still held"


def test_an_uncaught_page_error_is_a_sentence_without_traceback_or_path(runs_dir, monkeypatch):
    import fgff_core.config.presets as presets

    def broken():
        raise TypeError("bad argument type for built-in operation (/srv/secret/path.py)")

    monkeypatch.setattr(presets, "picker_order", broken)  # the Compare page calls it at the top
    at = open_page("compare")
    assert not at.exception, at.exception  # nothing reached Streamlit's own error box
    errors = [e.value for e in at.error]
    assert any("unexpected problem" in e for e in errors), errors
    shown = " ".join(str(el.value) for el in at.main if hasattr(el, "value"))
    assert "Traceback" not in shown and "/srv/secret" not in shown and "TypeError" not in shown
