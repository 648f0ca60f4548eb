"""Every exit path on hand-made bars, through backtrader's broker, with the exact fills.

Costs are the defaults: $0.005/share commission, $0.01/share slippage on market and stop
fills (limits fill at their price). Entry decided on the 09:40 bar fills at the 09:41 open.
At 100.00 the size is floor(500 / (0.70 + 2 * 0.015)) = 684 shares, tp1 takes 342.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from feeds.arrays import BarFeed
from mtbt.config import load_run
from mtbt.runner import backtest_venue, build_cerebro
from mtbt.strategies import ManagedStrategy, Signal
from tests.bars import session_frame

DAY = dt.date(2024, 1, 3)
QTY, HALF = 684, 342
ENTRY = 100.01                  # 100.00 open + 0.01 slippage
STOP, TP1, TP2 = 99.31, 101.01, 102.01   # ENTRY x (1 - 0.007), x 1.01, x 1.02, to the cent
COMM = 0.005


class Scripted(ManagedStrategy):
    """Enters at the given bar times ("HH:MM", side)."""

    params = (("script", ()),)

    def entry_signal(self) -> Signal | None:
        now = self.data.datetime.time(0).strftime("%H:%M")
        for hhmm, side in self.p.script:
            if hhmm == now:
                return Signal(side, "scripted", "TEST")
        return None


def run(frame: pd.DataFrame, script=(("09:40", 1),), overrides=()) -> pd.DataFrame:
    cfg = load_run(None, ['strategy.instrument="equity"', *overrides])
    days = sorted({ts.date() for ts in frame.index})
    cerebro = build_cerebro(cfg, backtest_venue(cfg, BarFeed(dataname=frame), first=days[0],
                                                last=days[-1]),
                            strategy=Scripted, strategy_params={"script": script})
    (strat,) = cerebro.run()
    trades = strat.analyzers.journal.get_frame()
    equity = strat.analyzers.equity.get_frame()["equity"]
    assert trades["pnl"].sum() == pytest.approx(equity.iloc[-1] - 25_000, abs=0.02)
    return trades


def pnl(side: int, entry: float, exit_: float, qty: int) -> float:
    """Net PnL of an exit row: the move, the exit's commission and its share of the entry's."""
    return round(side * (exit_ - entry) * qty - 2 * COMM * qty, 2)


def rows(trades: pd.DataFrame) -> list[tuple]:
    return [(r.exit_reason, r.exit_time[11:16], r.exit_price, r.qty, r.pnl)
            for r in trades.itertuples()]


def test_hard_stop():
    frame = session_frame(DAY, bars={"09:50": (99.80, 99.85, 99.20, 99.40)})
    trades = run(frame)
    assert trades.loc[0, "entry_price"] == ENTRY
    assert trades.loc[0, "entry_time"] == "2024-01-03T09:41:00-05:00"
    # the stop at 99.31 triggers; the fill slips one cent
    assert rows(trades) == [("stop", "09:50", 99.30, QTY, pnl(1, ENTRY, 99.30, QTY))]


def test_tp1_then_tp2():
    frame = session_frame(DAY, levels={"09:51": 100.9},
                          bars={"09:50": (100.50, 101.05, 100.45, 100.90),
                                     "10:30": (101.50, 102.10, 101.45, 101.90)})
    trades = run(frame)
    assert rows(trades) == [("tp1", "09:50", TP1, HALF, pnl(1, ENTRY, TP1, HALF)),
                            ("tp2", "10:30", TP2, HALF, pnl(1, ENTRY, TP2, HALF))]


def test_tp1_then_breakeven():
    # tp1 bar closes at 100.30: the trail (99.80) is below breakeven, the stop sits at 100.01
    frame = session_frame(DAY, levels={"09:51": 100.3},
                          bars={"09:50": (100.50, 101.05, 100.25, 100.30),
                                "10:00": (100.20, 100.22, 99.90, 99.95)})
    trades = run(frame)
    assert rows(trades) == [("tp1", "09:50", TP1, HALF, pnl(1, ENTRY, TP1, HALF)),
                            ("breakeven", "10:00", 100.00, HALF, pnl(1, ENTRY, 100.00, HALF))]


def test_tp1_then_trail():
    # best close 101.60 after tp1 -> stop 101.60 x 0.995 = 101.09; fills 101.08 with slippage
    frame = session_frame(DAY, levels={"09:52": 101.6},
                          bars={"09:50": (100.50, 101.25, 100.45, 101.20),
                                "09:51": (101.20, 101.65, 101.15, 101.60),
                                "10:10": (101.40, 101.45, 100.90, 101.00)})
    trades = run(frame)
    assert rows(trades) == [("tp1", "09:50", TP1, HALF, pnl(1, ENTRY, TP1, HALF)),
                            ("trail", "10:10", 101.08, HALF, pnl(1, ENTRY, 101.08, HALF))]


def test_eod_flat_by_force_close():
    frame = session_frame(DAY, levels={"09:42": 100.2})
    trades = run(frame)
    # decided on the 15:44 bar, filled at the 15:45 open (100.20 - 0.01 slippage)
    assert rows(trades) == [("eod", "15:45", 100.19, QTY, pnl(1, ENTRY, 100.19, QTY))]


def test_eod_on_an_early_close_day():
    day = dt.date(2024, 11, 29)          # closes at 13:00: flat by 12:45
    trades = run(session_frame(day))
    assert list(trades["exit_reason"]) == ["eod"]
    assert trades.loc[0, "exit_time"] == "2024-11-29T12:45:00-05:00"


def test_short_stop_mirrors_long():
    frame = session_frame(DAY, bars={"09:50": (100.20, 100.80, 100.15, 100.60)})
    trades = run(frame, script=(("09:40", -1),))
    entry = 99.99                        # 100.00 - 0.01 slippage
    assert trades.loc[0, "entry_price"] == entry and trades.loc[0, "side"] == "short"
    assert rows(trades) == [("stop", "09:50", 100.70, QTY, pnl(-1, entry, 100.70, QTY))]


def test_a_gap_through_the_trailing_stop_fills_at_the_open():
    # after tp1 (close 100.90: stop 100.40) the next bar opens at 100.00
    frame = session_frame(DAY, bars={"09:50": (100.50, 101.05, 100.45, 100.90)})
    assert rows(run(frame))[1] == ("trail", "09:51", 99.99, HALF, pnl(1, ENTRY, 99.99, HALF))


def test_stop_wins_when_a_bar_reaches_stop_and_tp1():
    frame = session_frame(DAY, bars={"09:50": (100.00, 101.10, 99.20, 100.00)})
    assert rows(run(frame))[0][0] == "stop"


def test_plain_bracket_without_scaling():
    frame = session_frame(DAY, levels={"09:51": 100.9},
                          bars={"09:50": (100.50, 101.05, 100.45, 100.90),
                                     "10:30": (101.50, 102.10, 101.45, 101.90)})
    trades = run(frame, overrides=["scaling_exits.use_scaling=false"])
    assert rows(trades) == [("tp2", "10:30", TP2, QTY, pnl(1, ENTRY, TP2, QTY))]


def test_no_entry_outside_the_window_or_after_the_first_minutes_of_force_close():
    trades = run(session_frame(DAY), script=(("11:05", 1), ("15:50", 1)))
    assert trades.empty


def test_no_entries_on_a_non_session_day():
    """Bars stamped on a holiday (2024-07-04) reach the strategy only if a feed lets them
    through; it still does not trade them."""
    frame = session_frame(dt.date(2024, 7, 5))
    frame.index = frame.index - pd.Timedelta(days=1)
    assert run(frame).empty
