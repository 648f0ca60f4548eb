"""The process that writes a backtest's slow reports beside it (analyzers/report_process.py)."""
from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import threading
import time

import pytest

import analyzers.report_process
from analyzers.report_process import ReportProcess
from mtbt.options import structures as st
from mtbt.options.chain import ChainModel

FLY = dict(structure=st.call_butterfly(dt.date(2024, 1, 3), 470.0, 5.0), premium=1.2,
           vix=14.0, now=dt.datetime(2024, 1, 3, 10, 5), spot=469.5,
           expiry_close=dt.datetime(2024, 1, 3, 16, 0))


@pytest.fixture
def forking(monkeypatch):
    """The process is forked even if an earlier test in this pytest worker left a thread
    running (the product then writes the reports in its own process, tested below)."""
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("needs fork")
    monkeypatch.setattr(analyzers.report_process, "_can_fork", lambda: True)


def _appears(path, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_payoff_chart_is_drawn_while_the_run_goes_on(tmp_path, forking):
    """Drawn by the process when the run first trades the structure, named when it ends."""
    process = ReportProcess(tmp_path, ChainModel(), tearsheet=False)
    assert process.child is None                   # forked at the first structure only
    process.payoff("call_butterfly", FLY)
    assert process.child.is_alive()
    assert _appears(tmp_path / ".payoff_call_butterfly.png.part")
    assert not (tmp_path / "payoff_call_butterfly.png").exists()
    assert process.finish(None)() == []
    assert (tmp_path / "payoff_call_butterfly.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["payoff_call_butterfly.png"]
    assert not process.child.is_alive()


def test_a_failed_run_leaves_no_chart(tmp_path, forking):
    process = ReportProcess(tmp_path, ChainModel(), tearsheet=True)
    process.payoff("call_butterfly", FLY)
    assert _appears(tmp_path / ".payoff_call_butterfly.png.part")
    process.abort()
    assert list(tmp_path.iterdir()) == [] and not process.child.is_alive()


def test_a_failed_chart_is_a_note(tmp_path, forking):
    process = ReportProcess(tmp_path, ChainModel(), tearsheet=False)
    process.payoff("call_butterfly", dict(FLY, spot="not a price"))
    note, = process.finish(None)()
    assert note.startswith("payoff_call_butterfly.png failed (TypeError")
    assert list(tmp_path.iterdir()) == []


def test_with_other_threads_running_the_charts_are_drawn_here_at_the_end(tmp_path):
    """Forking a process with threads is unsafe: the same files, from this process."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        process = ReportProcess(tmp_path, ChainModel(), tearsheet=True)
        process.payoff("call_butterfly", FLY)
        assert process.child is None and not any(tmp_path.iterdir())
        assert process.finish(None)() == []
    finally:
        stop.set()
        thread.join()
    assert [p.name for p in tmp_path.iterdir()] == ["payoff_call_butterfly.png"]

