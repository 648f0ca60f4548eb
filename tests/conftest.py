"""Shared fixtures. Real-data tests use ../shared/data and skip when it is absent."""
from __future__ import annotations

import os
import sys
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


@pytest.fixture
def paper_logs(tmp_path) -> Path:
    """Where the test's paper sessions write (grepped for keys after the last test, by
    ``no_file_holds_a_test_key``)."""
    (tmp_path / "paper_logs").mkdir()
    return tmp_path / "paper_logs"


def files_holding(base: Path, keys) -> list[str]:
    """The files under ``base`` whose bytes hold any of ``keys``."""
    wanted = [key.encode() for key in keys]
    return [str(path) for path in sorted(base.rglob("*")) if path.is_file() and not
            path.is_symlink() and any(key in path.read_bytes() for key in wanted)]


@pytest.fixture(scope="session", autouse=True)
def no_file_holds_a_test_key(tmp_path_factory):
    """After the last test (of each worker, under pytest-xdist): no file any test wrote
    holds a made-up key a test module gave its simulators (its ``KEYS``)."""
    yield
    keys = [key for name, module in list(sys.modules.items())
            if name.startswith("tests.test_") for key in getattr(module, "KEYS", ())]
    leaked = files_holding(tmp_path_factory.getbasetemp(), keys)
    assert not leaked, f"a test key was written to {leaked}"
