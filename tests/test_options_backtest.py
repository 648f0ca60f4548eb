"""Option structures in the backtest broker, and the iron condor's exit paths, on hand-made bars.

Prices: SPY-like at 450 with VIX 18 (the bars carry it), so the synthetic chain quotes real
strikes; entries are scripted, everything else is the production code path.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from feeds.arrays import BarFeed
from mtbt.config import load_run
from mtbt.options.structures import long_call
from mtbt.runner import backtest_venue, build_cerebro, strategy_kwargs
from mtbt.strategies import IronCondor0DTE, ManagedStrategy, Signal
from mtbt.strategies._structures import Choice
from tests.bars import session_frame

DAY = dt.date(2024, 1, 3)


class OneCall(ManagedStrategy):
    """Buys ``contracts`` 450 calls expiring today on the 09:40 bar; never exits by itself."""

    params = (("contracts", 2),)

    def entry_signal(self):
        if self.data.datetime.time(0) == dt.time(9, 40):
            return Signal(1, "scripted", "TEST")
        return None

    def choose_structure(self, signal, chain, budget):
        return Choice(long_call(chain.expiry, 450.0), self.p.contracts, 100.0, "scripted")

    def manage_lot(self, lot, close):
        pass


class ScriptedCondor(IronCondor0DTE):
    """The condor strategy with the market called neutral; optionally a loss booked at
    ``book_loss_at`` from elsewhere (to trip the daily limit)."""

    params = (("book_loss_at", None),)

    def entry_signal(self):
        if len(self._lots) >= self.p.max_open:
            return None
        return Signal(-1, "scripted condor", "TEST")

    def next(self):
        if self.data.datetime.time(0) == self.p.book_loss_at:
            self.risk.update_pnl(-600.0)
        super().next()


def run(frame: pd.DataFrame, strategy, overrides=(), **params):
    """Run ``strategy`` with the run config's own params for it, plus ``params``."""
    name = "iron_condor" if issubclass(strategy, IronCondor0DTE) else "wave_renko"
    cfg = load_run(None, ["strategy.instrument=\"options\"", f"strategy.name=\"{name}\"",
                          *overrides])
    own = strategy_kwargs(cfg) if name == "iron_condor" else {}
    cerebro = build_cerebro(cfg, backtest_venue(cfg, BarFeed(dataname=frame), first=DAY,
                                                last=DAY),
                            strategy=strategy, strategy_params=own | params)
    (strat,) = cerebro.run()
    return strat


def test_an_open_structure_moves_equity_and_expires_at_intrinsic_value():
    frame = session_frame(DAY, base=449.0, levels={"11:00": 452.0, "15:00": 453.5}, vix=18.0)
    strat = run(frame, OneCall, ["trading_hours.options_force_close_time=\"16:00\""])
    equity = strat.analyzers.equity.get_frame()["equity"]
    held = equity[(equity.index.time > dt.time(9, 41)) & (equity.index.time < dt.time(15, 59))]
    assert held.nunique() > 100                      # marked to model every bar
    assert held.loc["2024-01-03 10:59":"2024-01-03 11:00"].diff().iloc[-1] > 0
    trades = strat.analyzers.journal.get_frame()
    (row,) = trades.itertuples()
    assert row.exit_reason == "eod" and row.exit_time == "2024-01-03T16:00:00-05:00"
    assert row.exit_price == pytest.approx(3.5)      # 453.50 - 450 at the close
    legs = strat.analyzers.journal.get_legs()
    assert list(legs["action"]) == ["open", "expire"] and list(legs["qty"]) == [2, -2]
    # the account: paid the ask and two fees, received intrinsic x 100 x 2 at expiry
    entry = legs.loc[0, "fill"]
    assert equity.iloc[-1] == pytest.approx(25_000 - entry * 200 - 1.30 + 3.5 * 200, abs=0.01)
    assert row.pnl == pytest.approx((3.5 - entry) * 200 - 1.30, abs=0.01)


def test_structures_are_flat_by_the_options_force_close():
    frame = session_frame(DAY, base=449.0, vix=18.0)
    trades = run(frame, OneCall).analyzers.journal.get_frame()
    assert list(trades["exit_reason"]) == ["eod"]
    assert trades.loc[0, "exit_time"] == "2024-01-03T15:25:00-05:00"


def condor_rows(frame, overrides=(), **params):
    strat = run(frame, ScriptedCondor, overrides, **params)
    return [(r.exit_reason, r.entry_time[11:16], r.exit_time[11:16])
            for r in strat.analyzers.journal.get_frame().itertuples()]


ONE_AT_0945 = ['iron_condor.entry_times=["09:45"]']


def test_condor_profit_target_on_a_quiet_day():
    rows = condor_rows(session_frame(DAY, base=450.0), ONE_AT_0945)
    assert [r[0] for r in rows] == ["profit_target"]


def test_condor_profit_target_is_a_limit_so_it_never_fills_at_a_loss(caplog):
    quiet = condor_rows(session_frame(DAY, base=450.0), ONE_AT_0945)
    assert quiet == [("profit_target", "09:45", "12:10")]   # decided on the 12:09 close
    # the next open jumps towards the short call: closing there would give the profit
    # back, so the limit is not reached; the close is back at 450 and the target fills later
    gap = session_frame(DAY, base=450.0, bars={"12:10": (455.5, 455.52, 449.98, 450.0)})
    with caplog.at_level("INFO", logger="mtbt.strategy"):
        strat = run(gap, ScriptedCondor, ONE_AT_0945)
    trades = strat.analyzers.journal.get_frame()
    assert list(trades["exit_reason"]) == ["profit_target"]
    assert trades.loc[0, "exit_time"][11:16] == "12:11" and trades.loc[0, "pnl"] > 0
    assert "profit_target: limit" in caplog.text and "not reached" in caplog.text


def test_condor_sizes_on_its_stop_or_on_its_worst_case():
    frame = session_frame(DAY, base=450.0)
    by_stop = run(frame, ScriptedCondor, ONE_AT_0945).analyzers.journal.get_frame()
    by_worst = run(frame, ScriptedCondor, [*ONE_AT_0945, 'iron_condor.sizing="max_loss"'])
    by_worst = by_worst.analyzers.journal.get_frame()
    credit = -by_stop.loc[0, "entry_price"] * 100
    per_stop = 2 * credit + 4 * 0.65 * 2                 # 2x the credit, fees both ways
    assert by_stop.loc[0, "qty"] == int(500 // per_stop)
    assert by_stop.loc[0, "risk"] == pytest.approx(by_stop.loc[0, "qty"] * per_stop)
    assert by_worst.loc[0, "qty"] == 1                   # $5 wings: ~$440 worst case each
    assert 5 * 100 - credit <= by_worst.loc[0, "risk"] <= 500


def test_condor_stop_loss_on_a_run_through_the_short_call():
    frame = session_frame(DAY, base=450.0, levels={"10:30": 454.0, "10:40": 458.0})
    rows = condor_rows(frame, ONE_AT_0945)
    assert rows[0][0] == "stop_loss" and "10:30" <= rows[0][2] <= "10:45"


def test_condor_time_exit_after_four_hours():
    rows = condor_rows(session_frame(DAY, base=450.0),
                       [*ONE_AT_0945, "iron_condor.profit_target=1.0"])
    assert rows == [("time", "09:45", "13:45")]


def test_condor_eod_at_the_options_force_close():
    rows = condor_rows(session_frame(DAY, base=450.0),
                       ['iron_condor.entry_times=["13:00"]', "iron_condor.profit_target=1.0"])
    assert rows == [("eod", "13:00", "15:25")]


def test_condor_risk_exit_when_the_daily_loss_limit_trips():
    rows = condor_rows(session_frame(DAY, base=450.0),
                       [*ONE_AT_0945, "iron_condor.profit_target=1.0"],
                       book_loss_at=dt.time(10, 30))
    assert rows == [("risk", "09:45", "10:31")]
