"""How a job process ends: ``end_process_after`` (the local executor's process entry point) gives the
exit code multiprocessing would give, and what the job wrote is there, without the interpreter's teardown."""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import pytest

from fgff_core.jobs.worker import EXIT_DISK_FULL, end_process_after


def _exit_code(*args: object) -> int:
    proc = multiprocessing.get_context("spawn").Process(target=end_process_after, args=args, daemon=True)
    proc.start()
    proc.join(timeout=120)
    assert not proc.is_alive(), "the job process did not end"
    return proc.exitcode


@pytest.mark.timeout(300)
def test_a_job_process_ends_with_the_code_of_how_its_main_ended(tmp_path):
    out = tmp_path / "written.txt"
    assert _exit_code(Path.write_text, out, "recorded") == 0
    assert out.read_text() == "recorded"  # the job's own writes are complete when the process ends
    assert _exit_code(sys.exit, EXIT_DISK_FULL) == EXIT_DISK_FULL  # a worker that could not record its failure
    assert _exit_code(int, "not a number") == 1  # an escaped exception, as multiprocessing reports it
