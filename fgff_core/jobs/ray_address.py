"""Before and after ``ray.init`` on a cluster's address: one line saying what to check, within seconds.

``ray.init`` alone answers a wrong address slowly and vaguely: a port that is open but is not a Ray head
keeps it retrying for minutes, a missing or wrong authentication token for 20 s, both ending in "Failed
to connect". So ``check_address`` first connects to the port (refused or unreachable: say so), then
sends the HTTP/2 connection preface that every gRPC client sends: a Ray head (its GCS is a gRPC server)
answers with its SETTINGS frame at once; anything else (a web server, a database, a silent port) does
not, within ``GRPC_REPLY_S``. ``explain_init_failure`` turns what ``ray.init`` raised into one line,
naming token authentication when the head refused this machine's token (or its lack of one);
``few_connect_retries`` keeps Ray's own retries, which make that take 20 s, to a few seconds.

Errors are ``RayUnavailableError``; this module imports ``ray`` only inside functions.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

RAY_ADDRESS_ENV = "RAY_ADDRESS"
GRPC_REPLY_S = 3.0
CONNECT_RETRIES = 4  # Ray retries its first GCS request once a second (20 times by default)
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + an empty SETTINGS
_SETTINGS = 0x04
_RETRIES_ENV = "RAY_NUM_REDIS_GET_RETRIES"  # Ray's own knob for those retries: honoured when set


class RayUnavailableError(RuntimeError):
    """Ray cannot be used: not installed, or the cluster at ``RAY_ADDRESS`` cannot be reached."""


def host_and_port(address: str) -> tuple[str, int]:
    """``host:port`` (or ``ray://host:port``) split; RayUnavailableError naming ``RAY_ADDRESS`` otherwise."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(f"{RAY_ADDRESS_ENV}: expected host:port (or ray://host:port, auto), got {address!r}")
    return host.strip("[]"), int(port)


def check_address(address: str, timeout: float) -> None:
    """RayUnavailableError in one line unless something at ``address`` answers as a gRPC server (a Ray head)."""
    host, port = host_and_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(GRPC_REPLY_S)
            sock.sendall(_H2_PREFACE)
            head = _read(sock, 9)
    except OSError as exc:
        raise RayUnavailableError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it "
                                  f"with `ray start --head` or fix {RAY_ADDRESS_ENV}") from None
    if len(head) < 9 or head[3] != _SETTINGS:
        raise RayUnavailableError(
            f"{address} answers, but not as a Ray head (no gRPC reply within {GRPC_REPLY_S:g} s): check the port "
            f"in {RAY_ADDRESS_ENV}: the head's GCS port (`ray start --head --port`, default 6379), not the "
            "dashboard's (8265); for the Ray Client port (10001) write ray://HOST:10001")


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    with contextlib.suppress(OSError):  # a timeout or a reset: what came so far
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                break
            data += chunk
    return data


@contextlib.contextmanager
def few_connect_retries() -> Iterator[None]:
    """While connecting: Ray retries a refused first request ``CONNECT_RETRIES`` times, not 20 (unless
    ``$RAY_NUM_REDIS_GET_RETRIES`` says otherwise). Ray reads the constant at each connection."""
    from ray._private import ray_constants

    before = ray_constants.NUM_REDIS_GET_RETRIES
    if _RETRIES_ENV not in os.environ:
        ray_constants.NUM_REDIS_GET_RETRIES = CONNECT_RETRIES
    try:
        yield
    finally:
        ray_constants.NUM_REDIS_GET_RETRIES = before


def explain_init_failure(address: str, exc: BaseException) -> RayUnavailableError:
    """One line for what ``ray.init(address=...)`` raised, naming token authentication where it is the cause."""
    text = " ".join(str(e) for e in _chain(exc))
    token_mode = os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "token"
    where = "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
    copy = "copy the cluster's token (`ray get-auth-token` on the head) to this machine"
    if "no authentication token was found" in text:
        why = f"RAY_AUTH_MODE=token is set but this machine has no token ({where}): {copy}"
    elif "Unauthenticated" in text or "InvalidAuthToken" in text:
        why = (f"the cluster refused this machine's authentication token ({where}): {copy}" if token_mode
               and _has_token() else f"the cluster requires token authentication: set RAY_AUTH_MODE=token and "
               f"{copy} ({where})")
    else:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        why = f"{first.strip()}; check that the head runs the same Ray version (2.60) and Python"
    return RayUnavailableError(f"cannot connect to the Ray cluster at {address}: {why}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _has_token() -> bool:
    path = os.environ.get("RAY_AUTH_TOKEN_PATH", "").strip()
    return bool(os.environ.get("RAY_AUTH_TOKEN", "").strip()) or (Path(path) if path else
                                                                    Path.home() / ".ray" / "auth_token").is_file()
