"""Whose run is it (issue 39 item 4): owner tokens, the teacher's key, and who may cancel, delete or rename."""

from __future__ import annotations

import pandas as pd
import pytest
from fake_executor import FakeExecutor

from fgff_core.jobs import JobManager, Limits, Requester, RunAccess, RunPermissionError, owners
from fgff_core.jobs.owners import check_owner_token, new_owner_token, newest_active_run, owner_token_or_none

SMALL = dict(layers=(8,), epochs=10)



def test_new_tokens_are_url_safe_distinct_and_valid():
    tokens = {new_owner_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) == owners.TOKEN_CHARS and check_owner_token(token) == token == owner_token_or_none(token)


@pytest.mark.parametrize("bad", ["", "short", "x" * 21, "x" * 23, "a/b" + "x" * 19, "é" * 22, None, 12])
def test_a_malformed_token_is_refused_naming_the_parameter(bad):
    with pytest.raises(ValueError, match=r"^me: expected an owner token of 22 URL-safe characters"):
        check_owner_token(bad)
    assert owner_token_or_none(bad) is None


def test_a_newcomer_gets_only_their_own_newest_active_run():
    runs = pd.DataFrame({  # newest first, as RunStore.runs() gives them
        "run_id": ["r5", "r4", "r3", "r2", "r1"],
        "owner": ["alice", "bob", "alice", None, "alice"],
        "status": ["done", "running", "queued", "running", "running"],
    })
    assert newest_active_run(runs, "alice") == "r3"  # not the newer done one, not bob's
    assert newest_active_run(runs, "bob") == "r4"
    assert newest_active_run(runs, "carol") is None  # never someone else's run
    assert newest_active_run(runs, None) is None
    assert newest_active_run(runs.iloc[0:0], "alice") is None


def test_the_teacher_key_comes_from_the_environment_and_is_never_shown():
    access = RunAccess.from_env({owners.TEACHER_KEY_ENV: " s3cret "})
    assert access.has_teacher and "s3cret" not in repr(access)
    assert access.is_teacher_key("s3cret") and not access.is_teacher_key("s3cre") and not access.is_teacher_key("")
    assert access.requester("tok", "s3cret") == Requester("tok", teacher=True)
    assert access.requester("tok", "wrong") == Requester("tok", teacher=False)
    for unset in ({}, {owners.TEACHER_KEY_ENV: ""}, {owners.TEACHER_KEY_ENV: "  "}):
        none = RunAccess.from_env(unset)
        assert not none.has_teacher and not none.is_teacher_key("") and not none.requester("t", "").teacher


def test_who_may_manage_a_run():
    classroom, own_machine = RunAccess("key"), RunAccess(None)
    alice, bob, teacher = Requester("alice"), Requester("bob"), Requester("bob", teacher=True)
    for access in (classroom, own_machine):
        assert access.may_manage("alice", alice) and not access.may_manage("alice", bob)
        assert access.may_manage("alice", None)  # no requester: the CLI or a script, the server's operator
    assert classroom.may_manage("alice", teacher)
    # A run with no owner (CLI, older runs): anyone's on a server without a teacher, the teacher's on one with.
    assert own_machine.may_manage(None, bob)
    assert not classroom.may_manage(None, bob) and classroom.may_manage(None, teacher)
    with pytest.raises(RunPermissionError, match="Run r1 was started in another browser session: only that "
                                                 "session or the teacher may cancel it"):
        classroom.check({"run_id": "r1", "owner": "alice"}, bob, "cancel")
    with pytest.raises(PermissionError, match="Run r2 was started on the server itself .*only the teacher may delete"):
        classroom.check({"run_id": "r2", "owner": float("nan")}, bob, "delete")  # NaN: a data frame's missing owner


def test_the_manager_lets_only_the_owner_or_the_teacher_cancel_delete_or_rename(tmp_path):
    alice, bob, teacher = Requester("alice"), Requester("bob"), Requester("bob", teacher=True)
    with JobManager(tmp_path, max_concurrent=1, executor=FakeExecutor(), access=RunAccess("key")) as jm:
        running = jm.submit(SMALL, owner="alice")
        queued = jm.submit({**SMALL, "seed": 1}, owner="alice")
        other = jm.submit({**SMALL, "seed": 2}, owner="alice")
        cli = jm.submit({**SMALL, "seed": 3})
        for run_id in (queued, cli):
            with pytest.raises(RunPermissionError):
                jm.cancel(run_id, by=bob)
        with pytest.raises(RunPermissionError, match="may rename"):
            jm.rename(queued, "bob's now", by=bob)
        assert jm.store.status(queued) == jm.store.status(cli) == "queued"  # refused: nothing changed
        assert jm.store.run(queued)["name"] != "bob's now"

        jm.cancel(queued, by=alice)
        jm.cancel(cli, by=teacher)
        assert jm.store.status(queued) == jm.store.status(cli) == "cancelled"
        jm.rename(queued, "alice's", by=alice)
        assert jm.store.run(queued)["name"] == "alice's"
        with pytest.raises(RunPermissionError, match="may delete"):
            jm.delete(queued, by=bob)
        assert jm.store.status(queued) == "cancelled"
        jm.delete(queued, by=alice)
        jm.delete(cli, by=teacher)
        jm.cancel(other)  # no requester: the operator
        assert set(jm.store.runs()["run_id"]) == {running, other}
        jm.shutdown(timeout=0.2)  # the stand-in job never stops by itself


def test_the_per_owner_limit_counts_each_session_alone(tmp_path):
    with JobManager(tmp_path, max_concurrent=1, executor=FakeExecutor(),
                    limits=Limits(max_queued_per_owner=1)) as jm:
        a, b = new_owner_token(), new_owner_token()
        first = jm.submit(SMALL, owner=a)
        with pytest.raises(ValueError, match="max_queued_per_owner"):
            jm.submit({**SMALL, "seed": 1}, owner=a)
        second = jm.submit({**SMALL, "seed": 1}, owner=b)  # not refused because of a's run
        runs = jm.store.runs()
        assert (newest_active_run(runs, a), newest_active_run(runs, b)) == (first, second)
        jm.shutdown(timeout=0.2)


def test_a_class_pressing_start_at_once_shares_one_run_and_own_runs_get_distinct_free_seeds(tmp_path):
    """Issue 39 item 3: twenty sessions submitting the same config and seed at once get one run (looked up and
    queued under one lock), and twenty asking for their own run get twenty seeds nobody used."""
    from concurrent.futures import ThreadPoolExecutor

    with JobManager(tmp_path, max_concurrent=1, executor=FakeExecutor()) as jm:
        owners_ = [new_owner_token() for _ in range(20)]
        with ThreadPoolExecutor(20) as pool:
            joined = list(pool.map(lambda o: jm.submit_or_join(SMALL, owner=o), owners_))
        shared = {j.run_id for j in joined}
        assert len(shared) == 1 and sum(not j.joined for j in joined) == 1 and len(jm.store.runs()) == 1
        with ThreadPoolExecutor(20) as pool:
            own = list(pool.map(lambda o: jm.submit_with_free_seed(SMALL, owner=o), owners_))
        seeds = sorted(jm.store.run(r)["config"]["seed"] for r in own)
        assert seeds == list(range(1, 21))  # seed 0 is the shared run's
        assert [jm.store.run(r)["owner"] for r in own] == owners_
        jm.shutdown(timeout=0.2)
