"""Whose run is it (issue 39 item 4) in AppTest: each browser session is an owner (``?me=``, kept across a
reload), a newcomer sees none of another session's runs on Train, the per-owner limit counts each session alone,
only the owner or the teacher (with the server's key) may cancel, delete or rename a run, and the teacher's
share link carries no owner token. Two sessions are two AppTests."""

from __future__ import annotations

import pytest
from conftest import TINY, open_page, query_param

from fgff_core.config import RunConfig
from fgff_core.jobs.owners import OWNER_PARAM, check_owner_token, new_owner_token
from fgff_core.jobs.scheduler import Scheduler

WAITING = RunConfig(dataset="digits", layers=(8,), epochs=10)
KEY = "class-key"  # the teacher key of these tests' server
TINY_PARAMS = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in TINY.items()}


@pytest.fixture
def waiting(runs_dir, monkeypatch):
    """Make a queued run of an owner that nothing starts: it has no manager of its own, and the orphan sweep
    (which would mark it interrupted) is off. The pages' manager starts first, so it does not sweep it either."""
    from app_pages._shared import job_manager

    monkeypatch.setattr(Scheduler, "ORPHAN_SWEEP_INTERVAL", float("inf"))

    def make(owner: str | None, seed: int = 0) -> str:
        return job_manager().store.create_run(WAITING.replace(seed=seed), name=f"waiting {seed}", owner=owner)

    return make


def labels(at, kind: str = "button") -> list[str]:
    return [w.label for w in at.get(kind)]


def texts(elements) -> str:
    return " | ".join(e.value for e in elements)


def test_each_session_gets_an_owner_token_kept_across_a_reload_and_a_page_link(runs_dir):
    at = open_page("train")
    token = check_owner_token(query_param(at, OWNER_PARAM))
    assert query_param(open_page("runs", me=token), OWNER_PARAM) == token  # a reload keeps it
    del at.query_params[OWNER_PARAM]  # a page link (st.page_link, the sidebar) drops the URL's parameters
    at.run()
    assert query_param(at, OWNER_PARAM) == token  # the session put it back
    other = query_param(open_page("train"), OWNER_PARAM)
    assert other != token  # another browser is another owner
    fixed = query_param(open_page("train", me="not-a-token"), OWNER_PARAM)
    assert check_owner_token(fixed) and fixed != "not-a-token"  # an address edited by hand gets a new token


def test_a_newcomer_sees_none_of_another_sessions_runs_and_the_owner_sees_and_cancels_theirs(waiting):
    a = new_owner_token()
    run_id = waiting(a)
    newcomer = open_page("train")
    assert "run" not in newcomer.query_params and not newcomer.subheader  # not "this server's newest active run"
    assert any("press **Start training**" in i.value for i in newcomer.info)
    owner = open_page("train", me=a)  # A reloads `/`: back on A's own run
    assert query_param(owner, "run") == run_id
    next(b for b in owner.button if b.label == "Cancel").click().run()
    assert not owner.exception
    from app_pages._shared import job_manager

    assert job_manager().store.status(run_id) == "cancelled"


def test_another_sessions_run_cannot_be_cancelled_but_the_teacher_may(waiting, monkeypatch):
    monkeypatch.setenv("FGFF_TEACHER_KEY", KEY)
    run_id = waiting(new_owner_token())
    for page, cancel in (("train", "Cancel"), ("runs", "Cancel run")):
        student = open_page(page, run=run_id)
        assert not student.exception and cancel not in labels(student)
        assert "started in another browser session: only that session or the teacher may cancel" in \
            texts(student.caption), texts(student.caption)
    teacher = open_page("train", run=run_id)
    teacher.text_input(key="teacher_key").input("wrong").run()
    assert "not this server's teacher key" in texts(teacher.error) and "Cancel" not in labels(teacher)
    teacher.text_input(key="teacher_key").input(KEY).run()
    assert KEY not in str(dict(teacher.query_params))  # never in the address
    cancel = next(b for b in teacher.button if b.label == "Cancel")
    teacher.text_input(key="teacher_key").input("")  # the key cleared, then the Cancel drawn before is clicked
    cancel.click().run()
    assert "only that session or the teacher may cancel" in texts(teacher.error)  # a sentence, not a traceback
    assert not teacher.exception
    from app_pages._shared import job_manager

    assert job_manager().store.status(run_id) == "queued"
    teacher.text_input(key="teacher_key").input(KEY).run()
    next(b for b in teacher.button if b.label == "Cancel").click().run()
    assert job_manager().store.status(run_id) == "cancelled"


def test_only_the_owner_may_delete_or_rename_on_the_runs_page(waiting):
    from app_pages._shared import job_manager

    a = new_owner_token()
    run_id = waiting(a)
    job_manager().cancel(run_id)
    student = open_page("runs", run=run_id)
    assert "Delete" not in labels(student) and student.text_input(key=f"name_{run_id}").disabled
    assert "may cancel, delete or rename it" in texts(student.caption)
    assert not student.dataframe[0].value["yours"].any()
    owner = open_page("runs", run=run_id, me=a)
    assert owner.dataframe[0].value["yours"].all()
    owner.text_input(key=f"name_{run_id}").input("mine").run()
    assert job_manager().store.run(run_id)["name"] == "mine"
    owner.checkbox(key=f"confirm_{run_id}").check().run()
    next(b for b in owner.button if b.label == "Delete").click().run()
    assert not owner.exception and job_manager().store.runs().empty


@pytest.mark.parametrize("teacher_key", [None, KEY])
def test_a_run_with_no_owner_is_anyones_without_a_teacher_key_and_the_teachers_with_one(waiting, monkeypatch,
                                                                                       teacher_key):
    if teacher_key:
        monkeypatch.setenv("FGFF_TEACHER_KEY", teacher_key)  # before the server's manager starts
    run_id = waiting(None)  # from the command line, or stored before runs had owners
    at = open_page("runs", run=run_id)
    assert ("Cancel run" in labels(at)) == (teacher_key is None)
    assert (f"Run {run_id} was started on the server itself (from the command line, or before runs had owners): "
            "only the teacher may" in texts(at.caption)) == (teacher_key is not None)


def test_the_per_owner_limit_counts_each_session_alone(waiting, monkeypatch):
    monkeypatch.setenv("FGFF_LIMIT_MAX_QUEUED_PER_OWNER", "1")
    from app_pages._shared import job_manager

    a = new_owner_token()
    waiting(a)
    student_a = open_page("train", me=a, **TINY_PARAMS)
    next(b for b in student_a.button if b.label == "Start training").click().run()
    assert "1 jobs already queued or running, this server allows 1 per user" in texts(student_a.error)
    student_b = open_page("train", **TINY_PARAMS)
    next(b for b in student_b.button if b.label == "Start training").click().run()
    assert not student_b.error, texts(student_b.error)  # not refused because of A's run
    mine = job_manager().store.run(query_param(student_b, "run"))
    assert mine["owner"] == query_param(student_b, OWNER_PARAM) != a
    job_manager().cancel(mine["run_id"])


def test_the_teachers_share_link_carries_no_owner_token(runs_dir):
    token = new_owner_token()
    at = open_page("learn", me=token, layers="8,6", epochs="5")
    assert query_param(at, OWNER_PARAM) == token  # the page's own URL keeps it (a reload stays this owner)
    link = next(c.value for c in at.code if "?" in c.value)
    assert "step=" in link and OWNER_PARAM + "=" not in link and token not in link
