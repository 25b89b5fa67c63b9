"""A stored Mono-Forward run on the pages: those about goodness or the factors s say plainly they do not apply to
it; the others (Runs, Features, the ablation section) show it or say why not, and none crashes."""

from __future__ import annotations

import pytest
from conftest import open_page_with_runs, stored_runs
from streamlit.testing.v1 import AppTest

from fgff_core.config import RunConfig
from fgff_core.config.labels import not_applicable


@pytest.fixture(scope="module")
def mf_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("mf_runs")
    base = RunConfig(dataset="digits", layers=(12, 8), epochs=3, eval_every=3, eval_subset=200)
    ff, mf = stored_runs(d, [base.replace(algo="ff"), base.replace(algo="mf")])
    return d, ff, mf


def infos(at: AppTest) -> list[str]:
    return [i.value for i in at.info]


@pytest.mark.parametrize("page, what", [("significance", "the significance matrix"), ("data", "this rule")])
def test_pages_about_goodness_say_they_do_not_apply_to_an_mf_run(monkeypatch, mf_run, page, what):
    d, _, mf = mf_run
    at = open_page_with_runs(monkeypatch, d, page, run=mf)
    assert not at.exception, at.exception
    assert any(not_applicable("mf", what) in text for text in infos(at)), infos(at)
    assert not any("does not exist" in w.value for w in at.warning)  # said why, not called missing


def test_the_runs_and_features_pages_show_an_mf_run(monkeypatch, mf_run):
    d, _, mf = mf_run
    for page in ("runs", "features"):
        at = open_page_with_runs(monkeypatch, d, page, run=mf)
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])


def test_the_ablation_section_says_mf_has_nothing_to_remove(mf_run):
    d, _, mf = mf_run

    def section(runs_dir: str, run_id: str) -> None:
        from app_pages._significance_ablation import ablation_section
        from fgff_core.store import RunStore

        ablation_section(RunStore(runs_dir), [run_id])

    at = AppTest.from_function(section, args=(str(d), mf), default_timeout=60).run()
    assert not at.exception, at.exception
    assert any(c.value == "MF has no goodness and no factors: nothing to remove by s." for c in at.caption)


def test_the_train_page_explains_mf_when_it_is_chosen(monkeypatch, tmp_path):
    at = open_page_with_runs(monkeypatch, tmp_path / "train", "train", algo="mf")
    assert not at.exception, at.exception
    assert at.selectbox(key="cfg_algo").value == "mf"
    assert any("Mono-Forward" in c.value and "one forward pass" in c.value for c in at.caption)
