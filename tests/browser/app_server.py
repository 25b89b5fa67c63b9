"""Start ``streamlit run app.py`` for a browser test: one helper for every browser module.

Ports come from a fixed range away from other services, a separate slice per pytest-xdist worker,
so that parallel workers never race for the same port.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"  # screenshots of browser tests, failures too
FIRST_PORT, PORTS_PER_WORKER = 8700, 25


def free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    ports = range(FIRST_PORT + index * PORTS_PER_WORKER, FIRST_PORT + (index + 1) * PORTS_PER_WORKER)
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


@contextlib.contextmanager
def running_app(env: dict[str, str], log_path: Path, ready_s: float = 90) -> Iterator[str]:
    """Serve the app on a free loopback port with ``env`` added to this environment; yield its base URL."""
    port = free_port()
    full_env = {**os.environ, **env}
    full_env.pop("RAY_ADDRESS", None)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + ready_s
            while True:
                try:
                    if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).status == 200:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not become healthy: {log_path.read_text()[-2000:]}")
                time.sleep(0.5)
            yield base
        finally:
            proc.terminate()  # the job manager's exit hook stops its workers (and a Ray instance it started)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
