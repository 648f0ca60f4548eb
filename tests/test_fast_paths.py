"""The shortcuts a backtest takes for speed give the run backtrader's own code paths give."""
from __future__ import annotations

import backtrader as bt
import pytest

import mtbt
from feeds.arrays import BarFeed
from mtbt.brokers.backtest import BacktestBroker
from mtbt.indicators._base import Inputs, KernelIndicator

REPORTS = ("trades.csv", "equity.csv", "daily.csv", "regime.csv", "summary.json")


def _run(out, instrument: str) -> dict[str, str]:
    cfg = mtbt.load_run(None, ['data.start="2023-09-01"', 'data.end="2023-10-31"',
                               f'strategy.instrument="{instrument}"'])
    mtbt.run_backtest(cfg, out_dir=out, tearsheet=False)
    return {name: (out / name).read_text() for name in REPORTS}


@pytest.mark.parametrize("instrument", ["equity", "options"])
def test_the_speed_shortcuts_change_nothing_in_a_run(tmp_path, monkeypatch, instrument):
    """The backtest broker skipping bars that can change nothing, the feed's tick fill and the
    indicators' advance, each against backtrader's own: the same reports to the byte, on a run
    with trades whose broker both skipped bars and worked."""
    idle = BacktestBroker._idle
    seen = []
    monkeypatch.setattr(BacktestBroker, "_idle", lambda self: seen.append(idle(self)) or seen[-1])
    fast = _run(tmp_path / "fast", instrument)
    assert True in seen and False in seen
    assert fast["trades.csv"].count("\n") > 3          # a header and trades

    monkeypatch.setattr(BacktestBroker, "_idle", lambda self: False)
    monkeypatch.setattr(BarFeed, "_tick_fill", bt.feed.AbstractDataBase._tick_fill)
    monkeypatch.setattr(BarFeed, "_tick_nullify", bt.feed.AbstractDataBase._tick_nullify)
    monkeypatch.setattr(KernelIndicator, "advance", bt.Indicator.advance)
    monkeypatch.setattr(Inputs, "advance", bt.Indicator.advance)
    slow = _run(tmp_path / "slow", instrument)
    for name in REPORTS:
        assert fast[name] == slow[name], name
