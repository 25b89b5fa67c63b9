"""Ray, the cluster: connecting this process (``connect``) and what the cluster holds (``cluster_info``).

Imports ``ray`` only inside the functions, so the app runs without it when Ray is not used.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..format import node_id
from .ray_address import (
    RAY_ADDRESS_ENV,
    RayUnavailableError,
    check_address,
    explain_init_failure,
    few_connect_retries,
)

CONNECT_TIMEOUT_S = 10.0


# -- connecting ---------------------------------------------------------------------------------------
def _package_root() -> Path:
    return Path(__file__).resolve().parents[2]  # the folder that holds fgff_core/


def connect(address: str | None = None, timeout: float = CONNECT_TIMEOUT_S, num_cpus: int | None = None) -> bool:
    """Connect this process to Ray; return True if this call started Ray (then it shuts it down).

    ``address`` (default ``$RAY_ADDRESS``): a running cluster (``host:port``, ``ray://host:port``
    or ``auto``); unset or ``local``: a new local instance without the dashboard (``num_cpus``:
    its CPUs, default all). An address that does not answer within ``timeout`` seconds, one that is
    not a Ray head, and a head that refuses this machine's token raise ``RayUnavailableError`` in one
    line saying what to check (``ray_address``), within seconds.
    """
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("the Ray executor needs the ray package: pip install 'ray==2.60.*'") from None
    if ray.is_initialized():
        return False
    address = address if address is not None else (os.environ.get(RAY_ADDRESS_ENV, "").strip() or None)
    if address in (None, "local"):
        # Same machine: the workers import this very package from its folder.
        with _loopback_only(), _no_failure_signal_handler():
            _init_from_lasting_thread(address="local", num_cpus=num_cpus, include_dashboard=False,
                                      log_to_driver=False,
                                      runtime_env={"env_vars": {"PYTHONPATH": str(_package_root())}})
        return True
    if address != "auto":
        check_address(address, timeout)
    import fgff_core

    try:  # other machines get this package's code with the job (they need torch, numpy, ... installed)
        with few_connect_retries(), _no_failure_signal_handler():
            _init_from_lasting_thread(address=address, log_to_driver=False,
                                      runtime_env={"py_modules": [str(Path(fgff_core.__file__).parent)]})
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - Ray raises many kinds (and SystemExit); one line each
        raise explain_init_failure(address, exc) from None
    return True


# Ray's switch for "no multi-node cluster" (its default on macOS and Windows): the node's address is then
# 127.0.0.1, and GCS, raylet, workers and agents listen on loopback only. On Linux Ray otherwise picks the
# machine's network address for a local instance and its gRPC servers listen on every interface.
_SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """While a local instance starts: its processes (which inherit the environment) and this driver use loopback.

    Ray reads the switch once, at import, into ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``; this
    process may have imported Ray already, so the constant is set too (Ray is pinned to 2.60.*; the test
    ``test_a_local_instance_listens_on_loopback_only`` lists every socket its processes listen on). Both are
    restored afterwards: a later connection to a real cluster must advertise this machine's address.
    """
    from ray._private import ray_constants

    before_env, before_const = os.environ.get(_SINGLE_NODE_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_NODE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_const
        if before_env is None:
            os.environ.pop(_SINGLE_NODE_ENV, None)
        else:
            os.environ[_SINGLE_NODE_ENV] = before_env


_FAILURE_HANDLER_ENV = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"


@contextlib.contextmanager
def _no_failure_signal_handler() -> Iterator[None]:
    """While this process connects: Ray's driver gets no C++ failure-signal handler (unless
    ``$RAY_DISABLE_FAILURE_SIGNAL_HANDLER`` says otherwise).

    That handler (Abseil's, installed by ``ray.init`` in the driver) catches SIGTERM too: stopping the app
    the usual way (``kill``, systemd, ``docker stop``; Streamlit stops on it) printed a "*** SIGTERM received"
    stack dump, and the process then aborted (exit 134) in the middle of the job manager's exit hook, so its
    runs were never marked interrupted and it stayed registered. Without it SIGTERM reaches Streamlit's
    handler alone and the app stops cleanly (``tests/test_ray.py``). The cost: a native crash of the app's
    process prints no C++ stack. Ray reads the constant when the driver's core worker starts; the workers
    on the nodes keep theirs.
    """
    from ray._private import ray_constants

    before = ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER
    if _FAILURE_HANDLER_ENV not in os.environ:
        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True
    try:
        yield
    finally:
        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = before


KEEPER_STOP = threading.Event()


def disconnect() -> None:
    """Undo a ``connect`` that returned True: shut Ray down and let the thread that started it end."""
    import ray

    ray.shutdown()
    KEEPER_STOP.set()


def _init_from_lasting_thread(**init_args: Any) -> None:
    """``ray.init`` from a thread that lives as long as this process uses Ray.

    Ray starts its local processes (GCS, raylet) with ``PR_SET_PDEATHSIG``, which kills them when
    the *thread* that started them ends. Streamlit runs page scripts in short-lived threads, so
    ``ray.init`` called there would lose its cluster seconds later. The main thread lasts.
    """
    import ray

    if threading.current_thread() is threading.main_thread():
        ray.init(**init_args)
        return
    started, failure = threading.Event(), []

    def keeper() -> None:
        try:
            ray.init(**init_args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)
        finally:
            started.set()
        KEEPER_STOP.wait()

    KEEPER_STOP.clear()
    threading.Thread(target=keeper, name="fgff-ray-keeper", daemon=True).start()
    started.wait()
    if failure:
        raise failure[0]


# -- cluster information ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    alive: bool
    cpus: float
    gpus: float


@dataclass(frozen=True)
class ClusterInfo:
    nodes: tuple[NodeInfo, ...]
    cpus_total: float
    cpus_free: float
    gpus_total: float
    gpus_free: float

    def summary(self) -> str:
        """One line for the app, e.g. "Ray cluster: 2 nodes, 3 of 8 CPUs free, 1 of 2 GPUs free"."""
        alive = sum(n.alive for n in self.nodes)
        gpus = f", {self.gpus_free:g} of {self.gpus_total:g} GPUs free" if self.gpus_total else ""
        nodes = f"{alive} node{'s' if alive != 1 else ''}"
        return f"Ray cluster: {nodes}, {self.cpus_free:g} of {self.cpus_total:g} CPUs free{gpus}"

    def why_no_node_fits(self, cpus: float, gpus: float) -> str | None:
        """Why no live node could ever take a run asking for ``cpus`` CPUs and ``gpus`` GPUs (None: one could).

        Counts what the nodes have, not what is free now: a run that waits for busy CPUs is not refused.
        """
        alive = [n for n in self.nodes if n.alive]
        if any(n.cpus >= cpus and n.gpus >= gpus for n in alive):
            return None
        if gpus and not any(n.gpus >= gpus for n in alive):
            return (f"no node in the cluster has a GPU (the run asks for one for device cuda; "
                    f"{_live(alive)} with CPUs only): choose device cpu or add a GPU node")
        most = max((n.cpus for n in alive if n.gpus >= gpus), default=0)
        return (f"no node in the cluster has {cpus:g} CPUs{' and a GPU' if gpus else ''} for a run "
                f"(FGFF_RAY_CPUS_PER_RUN; {_live(alive)}, the largest with {most:g})")

    def node_rows(self, alive: bool | None = None) -> list[dict[str, Any]]:
        """One row per node (address, alive, CPUs, GPUs), for a table; ``alive``: only the live (True) or the
        dead (False) ones. Ray lists a node that left for as long as the cluster runs."""
        return [{"node": node_id(n.node_id), "address": n.address, "alive": n.alive, "CPUs": n.cpus, "GPUs": n.gpus}
                for n in self.nodes if alive is None or n.alive == alive]


def _live(alive: list[NodeInfo]) -> str:
    return f"{len(alive)} live node{'s' if len(alive) != 1 else ''}"


def cluster_info() -> ClusterInfo | None:
    """The Ray cluster this process uses (nodes, free CPUs/GPUs); None when Ray is not in use."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    total, free = ray.cluster_resources(), ray.available_resources()
    nodes = tuple(NodeInfo(node_id=n["NodeID"], address=n.get("NodeManagerAddress", ""), alive=bool(n.get("Alive")),
                           cpus=float(n.get("Resources", {}).get("CPU", 0)),
                           gpus=float(n.get("Resources", {}).get("GPU", 0))) for n in ray.nodes())
    return ClusterInfo(nodes=nodes, cpus_total=float(total.get("CPU", 0)), cpus_free=float(free.get("CPU", 0)),
                       gpus_total=float(total.get("GPU", 0)), gpus_free=float(free.get("GPU", 0)))
