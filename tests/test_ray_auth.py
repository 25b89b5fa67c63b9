"""A Ray head that requires token authentication, as a user meets it: one line naming the token, within 10 s.

Issue 36 item 5: a missing or wrong token took 20 s and said only "Failed to connect". Here a real head runs in
token mode (``ray start --head --block`` with its own HOME and temp folder, so no ``~/.ray/auth_token`` of this
account is read or written), and the app's JobManager starts against it in a fresh process, as the app does:
without a token, with a wrong one, in token mode with none, and, as the control, with the head's own token.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

from waiting import wait_for  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SECRET = "fgff-test-token-" + "0123456789abcdef" * 2
WHERE = "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
COPY = "copy the cluster's token (`ray get-auth-token` on the head) to this machine"
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")
START = ("import sys, time\nfrom fgff_core.jobs import JobManager\nt0 = time.monotonic()\n"
         "try:\n    JobManager(sys.argv[1], executor='ray').shutdown()\n    print('connected')\n"
         "except Exception as exc:\n    print(f\"{type(exc).__name__}: {exc}\")\n"
         "print(f'seconds {time.monotonic() - t0:.1f}')\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in AUTH_ENV}
    return {**env, "HOME": str(home), "PYTHONPATH": str(REPO), **extra}


@pytest.fixture(scope="module")
def token_head(tmp_path_factory):
    """The port of a one-CPU Ray head that accepts only ``SECRET``. Stopped by a SIGTERM to ``ray start`` itself:
    one to its whole process group stopped the GCS first, and ray start then waited 30 s to drain through it."""
    home, temp = tmp_path_factory.mktemp("head-home"), tmp_path_factory.mktemp("rt")
    port = _free_port()
    ray_cli = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    log = open(temp / "head.log", "w")  # noqa: SIM115 - closed at teardown
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
         "--node-ip-address=127.0.0.1", f"--temp-dir={temp}"],
        env=_env(home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=SECRET), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        wait_for(lambda: _answers(port) or head.poll() is not None, timeout=120)
        assert head.poll() is None, (temp / "head.log").read_text()[-2000:]
        yield port
    finally:
        head.terminate()  # ray start alone: it drains the node through its GCS, then stops its processes (3-4 s)
        try:
            head.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGKILL)  # whatever of its session is left
            log.close()


def _start_manager(port: int, tmp_path: Path, **auth: str) -> tuple[str, float]:
    home = tmp_path / "home"
    home.mkdir()
    env = _env(home, RAY_ADDRESS=f"127.0.0.1:{port}", **auth)
    done = subprocess.run([sys.executable, "-c", START, str(tmp_path / "runs")], capture_output=True, text=True,
                          env=env, timeout=180)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    message, seconds = done.stdout.strip().splitlines()[-2:]
    return message, float(seconds.split()[1])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("auth, why", [
    ({}, f"the cluster requires token authentication: set RAY_AUTH_MODE=token and {COPY} ({WHERE})"),
    ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "wrong-" + SECRET},
     f"the cluster refused this machine's authentication token ({WHERE}): {COPY}"),
    ({"RAY_AUTH_MODE": "token"}, f"RAY_AUTH_MODE=token is set but this machine has no token ({WHERE}): {COPY}"),
], ids=["no-token", "wrong-token", "token-mode-without-token"])
def test_a_token_the_head_does_not_accept_is_one_line_naming_it_within_10_s(token_head, tmp_path, auth, why):
    message, seconds = _start_manager(token_head, tmp_path, **auth)
    assert message == f"RayUnavailableError: cannot connect to the Ray cluster at 127.0.0.1:{token_head}: {why}"
    assert seconds < 10  # from the manager's start to the error (importing torch is before)


@pytest.mark.timeout(600)
def test_the_heads_own_token_connects(token_head, tmp_path):
    """The control: the same head and the same start, with the right token, connect."""
    message, _ = _start_manager(token_head, tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=SECRET)
    assert message == "connected"
