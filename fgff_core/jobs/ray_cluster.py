"""Ray, the cluster: connecting this process (``connect``) and what the cluster holds (``cluster_info``).

Imports ``ray`` only inside the functions, so the app runs without it when Ray is not used.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RAY_ADDRESS_ENV = "RAY_ADDRESS"
CONNECT_TIMEOUT_S = 10.0


class RayUnavailableError(RuntimeError):
    """Ray cannot be used: not installed, or the cluster at ``RAY_ADDRESS`` cannot be reached."""


# -- connecting ---------------------------------------------------------------------------------------
def _package_root() -> Path:
    return Path(__file__).resolve().parents[2]  # the folder that holds fgff_core/


def connect(address: str | None = None, timeout: float = CONNECT_TIMEOUT_S, num_cpus: int | None = None) -> bool:
    """Connect this process to Ray; return True if this call started Ray (then it shuts it down).

    ``address`` (default ``$RAY_ADDRESS``): a running cluster (``host:port``, ``ray://host:port``
    or ``auto``); unset or ``local``: a new local instance without the dashboard (``num_cpus``:
    its CPUs, default all). An address that does not
    answer within ``timeout`` seconds raises ``RayUnavailableError`` instead of waiting.
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
        _init_from_lasting_thread(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                                  runtime_env={"env_vars": {"PYTHONPATH": str(_package_root())}})
        return True
    if address != "auto":
        _check_reachable(address, timeout)
    import fgff_core

    try:  # other machines get this package's code with the job (they need torch, numpy, ... installed)
        _init_from_lasting_thread(address=address, log_to_driver=False,
                                  runtime_env={"py_modules": [str(Path(fgff_core.__file__).parent)]})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailableError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
    return True


KEEPER_STOP = threading.Event()


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


def _check_reachable(address: str, timeout: float) -> None:
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(f"{RAY_ADDRESS_ENV}: expected host:port (or ray://host:port, auto), got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise RayUnavailableError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it "
                                  f"with `ray start --head` or fix {RAY_ADDRESS_ENV}") from None


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

    def node_rows(self) -> list[dict[str, Any]]:
        """One row per node (address, alive, CPUs, GPUs), for a table."""
        return [{"node": n.node_id[:8], "address": n.address, "alive": n.alive, "CPUs": n.cpus, "GPUs": n.gpus}
                for n in self.nodes]


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
