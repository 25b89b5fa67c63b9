"""Shared fixtures: small, fast configurations on the embedded digits data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from fgff_core.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(autouse=True)
def _fixed_threads():
    torch.set_num_threads(1)  # deterministic and friendly to a shared 2-core machine
    yield


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(options)``: a fresh tmpfs (e.g. ``"size=64k"``, ``"ro,size=1m"``) under tmp_path.

    Needs the right to mount (root); the test is skipped elsewhere. Every mount is undone after the test.
    """
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                               capture_output=True).returncode != 0:
            pytest.skip("needs root and a mountable tmpfs")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)
