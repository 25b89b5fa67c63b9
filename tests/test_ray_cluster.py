"""The Ray executor on a simulated two-node cluster (``ray.cluster_utils.Cluster``, one machine).

The head has no CPUs, so each run lands on one of the two one-CPU worker nodes: two managers that
hand Ray four runs each never train more than two at once; removing a node mid-run fails that run
with a reason while the other goes on.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402
from test_ray import LONG  # noqa: E402
from waiting import wait_for  # noqa: E402

from fgff_core.format import node_id  # noqa: E402
from fgff_core.jobs import JobManager, shutdown_all  # noqa: E402
from fgff_core.jobs.ray_cluster import cluster_info, connect  # noqa: E402
from fgff_core.jobs.ray_host import TrainingSpan  # noqa: E402

SHORT = dict(dataset="digits", layers=(8,), epochs=100, eval_every=50)


@pytest.fixture(scope="module")
def two_nodes():
    assert not ray.is_initialized()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    try:
        connect(cluster.address)
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


def most_at_once(spans: list[TrainingSpan]) -> int:
    """The largest number of spans that overlap at one moment (one ending as another starts: not overlapping)."""
    edges = sorted([(s.start, 1) for s in spans] + [(s.end, -1) for s in spans])  # at a tie the end (-1) first
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


@pytest.mark.timeout(600)
def test_two_managers_with_four_runs_each_never_train_more_runs_than_the_two_cpus(two_nodes, tmp_path,
                                                                                   monkeypatch):
    """Issue 36 item 1: a run owns its CPU for its whole life (no CPU lent out while it reports an epoch)."""
    monkeypatch.setenv("FGFF_MAX_CONCURRENT", "4")
    with JobManager(tmp_path / "a", executor="ray") as first, JobManager(tmp_path / "b", executor="ray") as second:
        assert first.max_concurrent == second.max_concurrent == 4
        runs = [(jm, jm.submit(SHORT)) for _ in range(4) for jm in (first, second)]
        for jm, run_id in runs:
            assert jm.wait(run_id, timeout=500) == "done", jm.store.run(run_id)["error"]
        spans = [*first.executor.spans, *second.executor.spans]
    assert sorted(s.run_id for s in spans) == sorted(run_id for _, run_id in runs)
    assert most_at_once(spans) == 2, sorted(spans, key=lambda s: s.start)
    for node in {s.node for s in spans}:
        assert most_at_once([s for s in spans if s.node == node]) == 1, node
    assert len({s.node for s in spans}) == 2  # both nodes trained


@pytest.mark.timeout(420)
def test_a_removed_node_fails_its_run_and_the_other_goes_on(two_nodes, tmp_path, monkeypatch):
    cluster, workers = two_nodes
    info = cluster_info()
    assert info is not None and info.cpus_total == 2 and sum(n.alive for n in info.nodes) == 3
    with JobManager(tmp_path, executor="ray", max_concurrent=2) as jm:
        a, b = jm.submit(LONG), jm.submit(LONG)
        for run_id in (a, b):
            wait_for(lambda r=run_id: jm.store.run(r)["epochs_done"] >= 3, 300,
                     lambda: f"both runs to train: {jm.store.runs()[['status', 'epochs_done', 'node', 'error']]}")
        node_of = {r: jm.store.run(r)["node"] for r in (a, b)}
        assert node_of[a] != node_of[b]  # one run per one-CPU node
        victim = next(w for w in workers if node_of[a].endswith(f" · {node_id(w.node_id)}"))
        cluster.remove_node(victim)

        assert jm.wait(a, timeout=120) == "failed"
        row = jm.store.run(a)
        assert row["error"] and ("node" in row["error"] or "worker process" in row["error"]), row["error"]
        assert row["epochs_done"] == len(jm.store.metrics(a)) >= 3  # every acknowledged epoch is stored
        before = jm.store.run(b)["epochs_done"]
        wait_for(lambda: jm.store.run(b)["epochs_done"] > before + 2, 60, "the other run to go on")
        assert jm.store.status(b) == "running"
        jm.cancel(b)
        assert jm.wait(b, timeout=60) == "cancelled"

    # Issue 36 item 6: Ray keeps listing the node that left; the Runs page folds it below the live ones.
    wait_for(lambda: any(not n.alive for n in cluster_info().nodes), 60, "Ray to mark the removed node dead")
    info = cluster_info()
    assert [r["node"] for r in info.node_rows(alive=False)] == [victim.node_id[:8]]
    assert len(info.node_rows(alive=True)) == 2 and all(r["alive"] for r in info.node_rows(alive=True))
    at = _runs_page(monkeypatch, tmp_path / "page")
    assert not at.exception
    assert [e.label for e in at.expander if "node" in e.label] == [info.summary(), "1 node that left the cluster"]
    assert [len(df.value) for df in at.dataframe[:2]] == [2, 1]  # live nodes, then the one that left


def _runs_page(monkeypatch, runs_dir):
    """The Runs page in AppTest, in this process (so it sees this process's Ray), on an empty runs folder."""
    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("FGFF_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("FGFF_WARM_WORKER", "0")
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    at = AppTest.from_file(str(root / "app.py"), default_timeout=60)
    at.switch_page("app_pages/runs.py")
    try:
        return at.run()
    finally:
        shutdown_all()  # the page's own JobManager


@pytest.mark.timeout(420)
def test_a_gpu_run_waiting_for_a_node_that_leaves_fails_with_the_reason(two_nodes, tmp_path):
    """Issue 36 item 4: a run waiting in Ray's queue for the only GPU node fails when that node leaves, not
    hangs as running. Ray sees a GPU resource only: the run never reaches a CUDA call."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cluster, _ = two_nodes
    gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    wait_for(lambda: cluster_info().gpus_total == 1, 60, "Ray to count the GPU node")
    try:  # the GPU node's CPU is taken (a plain Ray task holds it), so the GPU run waits in Ray's queue
        holder = ray.remote(num_cpus=1)(lambda seconds: time.sleep(seconds)).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(gpu_node.node_id, soft=False)).remote(600)
        wait_for(lambda: cluster_info().cpus_free < cluster_info().cpus_total, 120, "the GPU node's CPU to be taken")
        with JobManager(tmp_path, executor="ray", max_concurrent=2) as jm:
            waiting = jm.submit(dict(LONG, device="cuda"))  # a node with a GPU exists: accepted
            wait_for(lambda: jm.store.status(waiting) == "running", 30, "the manager to hand the run to Ray")
            cluster.remove_node(gpu_node)
            assert jm.wait(waiting, timeout=60) == "failed"
            row = jm.store.run(waiting)
            assert row["error"].startswith("no node in the cluster has a GPU"), row["error"]
            assert row["epochs_done"] == 0 and row["node"] is None
    finally:
        if gpu_node in cluster.worker_nodes:  # the next test expects the CPU nodes only
            cluster.remove_node(gpu_node)
        with contextlib.suppress(Exception):  # gone with its node
            ray.cancel(holder, force=True)


@pytest.mark.timeout(420)
def test_the_cap_follows_the_cluster_as_nodes_join_and_leave(two_nodes, tmp_path, monkeypatch):
    """Issue 36 item 2: a node that joins while runs wait is used; one that leaves lowers the cap."""
    cluster, _ = two_nodes
    monkeypatch.delenv("FGFF_MAX_CONCURRENT", raising=False)
    cpus = int(cluster_info().cpus_total)
    with JobManager(tmp_path, executor="ray") as jm:
        assert jm.max_concurrent == cpus
        runs = [jm.submit(LONG) for _ in range(cpus + 1)]
        wait_for(lambda: sum(jm.store.run(r)["epochs_done"] >= 1 for r in runs) == cpus, 300,
                 lambda: f"{cpus} runs to train: {jm.store.runs()[['status', 'epochs_done', 'node']]}")
        queued = [r for r in runs if jm.store.status(r) == "queued"]
        assert len(queued) == 1  # the manager holds it back: the cluster has no CPU for it
        joined = cluster.add_node(num_cpus=1)
        wait_for(lambda: jm.store.run(queued[0])["epochs_done"] >= 1, 120,
                 lambda: f"the waiting run to train on the new node: {jm.store.run(queued[0])}")
        assert jm.max_concurrent == cpus + 1
        assert jm.store.run(queued[0])["node"].endswith(f" · {node_id(joined.node_id)}")
        cluster.remove_node(joined)
        wait_for(lambda: jm.max_concurrent == cpus, 60, "the cap to come down with the node that left")
        for run_id in runs:
            jm.cancel(run_id)
        assert jm.wait(queued[0], timeout=60) == "failed"  # it trained on the node that left
        for run_id in runs:
            assert jm.wait(run_id, timeout=60) in ("cancelled", "failed")
