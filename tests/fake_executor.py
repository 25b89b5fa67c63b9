"""``FakeExecutor``: a stand-in executor for the job manager's bookkeeping, without spawning anything
(the job and owner tests share it)."""

from __future__ import annotations

import signal


class FakeExecutor:
    """Jobs that 'run' until killed; records what the manager asked for."""

    def __init__(self):
        self.started: list[str] = []
        self.alive: set[str] = set()

    def start(self, run_id, config, slot):
        self.started.append(run_id)
        self.alive.add(run_id)
        return None

    def is_alive(self, run_id):
        return run_id in self.alive

    def kill(self, run_id):
        self.alive.discard(run_id)

    def reap(self, run_id):
        return -signal.SIGKILL
