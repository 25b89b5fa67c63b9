"""The Ray executor on a simulated two-node cluster (``ray.cluster_utils.Cluster``, one machine).

The head has no CPUs, so each run lands on one of the two one-CPU worker nodes; removing a node
mid-run fails that run with a reason while the other goes on.
"""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402
from test_ray import LONG  # noqa: E402
from waiting import wait_for  # noqa: E402

from fgff_core.jobs import JobManager  # noqa: E402
from fgff_core.jobs.ray_cluster import cluster_info, connect  # noqa: E402


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


@pytest.mark.timeout(420)
def test_a_removed_node_fails_its_run_and_the_other_goes_on(two_nodes, tmp_path):
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
        victim = next(w for w in workers if f"node {w.node_id[:8]}" in node_of[a])
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
