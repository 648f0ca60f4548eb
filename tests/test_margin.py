"""The sizer and the broker agree: an entry the RiskSizer sizes is never refused for Margin.

BackBroker takes price / leverage + commission a share from ``cash`` to open a long and
refuses the entry when cash would go negative; equity also holds the open lots' unrealised
gains, which are no cash. The hand-made day: 684 shares at 100.01, half taken at 101.01,
the rest held at 101.90 (+$646 unrealised) when a second long is sized.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math

import backtrader as bt
import pytest

from feeds.arrays import BarFeed
from mtbt.config import load_run
from mtbt.options.book import StructurePosition
from mtbt.options.structures import iron_condor, long_call
from mtbt.risk import RiskSizer, cost_per_share, open_cash
from mtbt.runner import backtest_venue, build_cerebro, run_backtest
from mtbt.strategies import ManagedStrategy, Signal
from tests.bars import session_frame

DAY = dt.date(2024, 1, 3)
COMM = bt.CommInfoBase(commission=0.005, commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True,
                       leverage=4.0)                 # what build_cerebro gives the broker
SPY_YEAR, VIX = "spy_1m_2024-03-26_2025-04-02.parquet", "vix_1d_1990_2026.parquet"


class Scripted(ManagedStrategy):
    """Enters at the given bar times ("HH:MM", side); records the broker's free cash."""

    params = (("script", ()),)

    def entry_signal(self) -> Signal | None:
        now = self.data.datetime.time(0).strftime("%H:%M")
        self.free = getattr(self, "free", {})
        self.free[now] = self.broker.free_cash()
        for hhmm, side in self.p.script:
            if hhmm == now:
                return Signal(side, "scripted", "TEST")
        return None


class EquitySizer(RiskSizer):
    """The sizer before the fix: 99% of equity x leverage less the open exposure."""

    def _getsizing(self, comminfo, cash, data, isbuy) -> int:
        p, price = self.p, data.close[0]
        by_risk = math.floor(p.risk.entry_budget / cost_per_share(price, p.stop_pct,
                                                                 p.commission, p.slippage))
        exposure = abs(self.broker.getposition(data).size) * price
        power = 0.99 * (self.broker.getvalue() * 4.0 - exposure)
        return max(0, min(by_risk, math.floor(power / (price + p.commission + p.slippage))))


def run_day(caplog, frame, script, sizer=None, overrides=(), strategy=None):
    """The run.log lines of a scripted equity day (``sizer``: another RiskSizer) and the
    strategy."""
    cfg = load_run(None, ['strategy.instrument="equity"', *overrides])
    cerebro = build_cerebro(cfg, backtest_venue(cfg, BarFeed(dataname=frame), first=DAY,
                                                last=DAY),
                            strategy=strategy or Scripted, strategy_params={"script": script})
    if sizer is not None:
        cerebro.addsizer(sizer, **cerebro.sizers[None][2])
    with caplog.at_level(logging.INFO, logger="mtbt"):
        (strat,) = cerebro.run()
    return [r.getMessage() for r in caplog.records if r.name.startswith("mtbt")], strat


WINNER = session_frame(DAY, levels={"09:51": 100.9, "09:55": 101.9},
                       bars={"09:50": (100.50, 101.05, 100.45, 100.90)})


def test_an_unrealised_gain_is_no_cash_for_the_broker(caplog):
    script = (("09:40", 1), ("10:00", 1))
    old, _ = run_day(caplog, WINNER, script, EquitySizer)
    assert any("ENTRY #2 scripted qty 671" in line for line in old)
    assert any("ENTRY #2 not filled: Margin" in line for line in old)
    caplog.clear()
    new, strat = run_day(caplog, WINNER, script)
    # 16,786.00 free / ((101.90 x 1.01 + 0.01) / 4 + 0.005 a share); the old size needed
    # 671 x (101.91 / 4 + 0.005) = 17,098.79 at the fill
    assert any("ENTRY #2 scripted qty 652" in line for line in new)
    assert any("FILL #2 entry buy 652 @ 101.91" in line for line in new)
    assert not any("Margin" in line for line in new)


def test_a_short_is_charged_like_a_long(caplog):
    """BackBroker credits a short sale's proceeds to cash; free cash takes them back out and
    charges the short as a long: 684 shares long at 100.01 or short at 99.99."""
    free = {}
    for side in (1, -1):
        cfg = load_run(None, ['strategy.instrument="equity"'])
        venue = backtest_venue(cfg, BarFeed(dataname=session_frame(DAY)), first=DAY, last=DAY)
        cerebro = build_cerebro(cfg, venue, strategy=Scripted,
                                strategy_params={"script": (("09:40", side),)})
        (strat,) = cerebro.run()
        free[side] = strat.free["10:00"]
    assert free[1] == pytest.approx(25_000 - 684 * 100.01 / 4 - 684 * 0.005)
    assert free[-1] == pytest.approx(25_000 - 684 * 99.99 / 4 - 684 * 0.005)


class WithCall(Scripted):
    """Scripted, holding 25 at-the-money calls from 09:36 to 11:01 (outside any lot)."""

    def next(self) -> None:
        now = self.data.datetime.time(0).strftime("%H:%M")
        if now == "09:35":
            self.broker.open_structure(self, self.data, long_call(DAY, 100.0), 25)
        elif now == "11:00":
            for held in list(self.broker.structures.values()):
                self.broker.close_structure(self, held)
        super().next()

    def notify_order(self, order) -> None:
        if getattr(order, "structure", None) is None:     # the calls belong to no lot
            super().notify_order(order)


def test_a_debit_structure_leaves_less_cash_for_shares(caplog):
    """The calls' premium left cash but is in equity (at the mark): sized on equity, a
    shares entry as large as the buying power allows is refused."""
    big = ["risk_management.risk_per_trade_pct=0.05", "risk_management.daily_dd_limit=2000"]
    frame = session_frame(DAY)
    old, _ = run_day(caplog, frame, (("09:40", 1),), EquitySizer, big, strategy=WithCall)
    assert any("ENTRY #1 not filled: Margin" in line for line in old)
    caplog.clear()
    new, strat = run_day(caplog, frame, (("09:40", 1),), overrides=big, strategy=WithCall)
    free = strat.free["09:40"]                # 25,000 less the calls' premium and fees
    assert 23_000 < free < 24_900
    qty = math.floor(free / open_cash(COMM, 100.00 * 1.01 + 0.01))
    assert any(f"ENTRY #1 scripted qty {qty} " in line for line in new)
    assert any(f"FILL #1 entry buy {qty} @ 100.01" in line for line in new)


def test_structures_hold_what_they_may_still_lose():
    """A debit structure's premium has left cash already (its max loss); a credit
    structure's credit came in and its max loss is held."""
    cfg = load_run(None)
    broker = build_cerebro(cfg, backtest_venue(cfg, BarFeed(dataname=session_frame(DAY)),
                                               first=DAY, last=DAY)).broker
    broker.start()
    opened, close = dt.datetime(2024, 1, 3, 10), dt.datetime(2024, 1, 3, 16)
    broker.structures[1] = StructurePosition(1, long_call(DAY, 100.0), 3, 2.00, opened, close)
    broker.cash = 25_000 - 2.00 * 100 * 3
    assert broker.free_cash() == pytest.approx(24_400)
    condor = iron_condor(DAY, 95.0, 105.0, 5.0)         # $5 wings: max loss 5 - 1.20 = 3.80
    broker.structures[2] = StructurePosition(2, condor, 2, -1.20, opened, close)
    broker.cash += 1.20 * 100 * 2
    assert broker.free_cash() == pytest.approx(24_400 - 3.80 * 100 * 2)


@pytest.mark.parametrize("instrument", ["equity", "options"])
def test_no_margin_refusal_on_the_real_year(shared_data, tmp_path, instrument):
    cfg = load_run(None, [f"data.bars={json.dumps(str(shared_data / SPY_YEAR))}",
                          f"data.vix={json.dumps(str(shared_data / VIX))}",
                          f'strategy.instrument="{instrument}"',
                          'risk_management.max_dd_action="alert"'])
    result = run_backtest(cfg, out_dir=tmp_path, tearsheet=False)
    log = (result.out_dir / "run.log").read_text()
    assert "ENTRY #" in log and "not filled: Margin" not in log


def test_the_sizer_leaves_the_fill_a_percent(caplog):
    """Sized on all the free cash at 100.00 (a $1,250 budget and room), the entry still
    fills when the next open is 1% up: floor(25,000 / ((100.00 x 1.01 + 0.01) / 4 + 0.005))
    = 989."""
    frame = session_frame(DAY, levels={"09:41": 101.0})
    lines, _ = run_day(caplog, frame, (("09:40", 1),), overrides=[
        "risk_management.risk_per_trade_pct=0.05", "risk_management.daily_dd_limit=2000"])
    assert any("ENTRY #1 scripted qty 989" in line for line in lines)
    assert any("FILL #1 entry buy 989 @ 101.01" in line for line in lines)
