"""Shared fixtures: small, fast configurations on the embedded digits data."""

from __future__ import annotations

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
