"""Shared fixtures. Real-data tests use ../shared/data and skip when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real market data beside the project; skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not here (real-data tests run only beside it)")
    return SHARED_DATA
