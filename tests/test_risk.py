"""RiskManager limits and the RiskSizer's arithmetic."""
from __future__ import annotations

import backtrader as bt
import pytest

from mtbt.risk import RiskManager, RiskSizer, cost_per_share, open_cash

# the commission info build_cerebro gives the broker (defaults: $0.005/share, leverage 4)
COMM = bt.CommInfoBase(commission=0.005, commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True,
                       leverage=4.0)


def manager() -> RiskManager:
    return RiskManager(account_size=25_000, risk_per_trade_pct=0.02, max_positions=3,
                       daily_dd_limit=500, max_dd_threshold=1_000)


def test_fourth_position_is_refused():
    risk = manager()
    for _ in range(3):
        assert risk.can_take_trade(400)
        risk.on_open()
    decision = risk.can_take_trade(400)
    assert not decision and "max_positions" in decision.reason
    risk.on_close()
    assert risk.can_take_trade(400)


def test_position_cost_over_the_budget_is_refused():
    risk = manager()
    assert risk.risk_budget == 500
    assert risk.can_take_trade(500)
    decision = risk.can_take_trade(500.01)
    assert not decision and "risk budget" in decision.reason
    assert not risk.can_take_trade(0)


def test_daily_loss_limit_stops_entries_until_the_daily_reset():
    risk = manager()
    risk.update_pnl(-300)
    assert risk.can_take_trade(200)
    risk.update_pnl(-200)                  # the day has now lost exactly the limit
    decision = risk.can_take_trade(100)
    assert not decision and "daily loss limit" in decision.reason
    assert risk.halted_today and len(risk.alerts) == 1
    risk.reset_daily()
    assert risk.can_take_trade(400)
    assert risk.day_pnl == 0


def test_the_daily_limit_is_a_cap_on_realised_plus_open_plus_new_risk():
    risk = manager()
    assert risk.entry_budget == 500                 # the per-trade budget binds
    risk.update_pnl(-150)
    assert risk.daily_room == 350 and risk.entry_budget == 350
    risk.open_risk = 200                            # lots open, losing 200 at their stops
    assert risk.entry_budget == pytest.approx(150)
    assert risk.can_take_trade(150)
    decision = risk.can_take_trade(150.01)
    assert not decision and "daily room" in decision.reason
    risk.open_risk = 260                            # 90 left: under a fifth of the budget
    assert risk.entry_budget == 0
    decision = risk.can_take_trade(50)
    assert not decision and "under 20%" in decision.reason
    risk.update_pnl(400)                            # a winning exit: the day is +250
    assert risk.entry_budget == 490                 # 500 + 250 - 260
    risk.open_risk = 900
    assert risk.entry_budget == 0 and not risk.can_take_trade(1)


def test_sizer_sizes_to_the_daily_room():
    risk = manager()
    sizer = RiskSizer(risk=risk, stop_pct=0.007, commission=0.005, slippage=0.01)
    risk.update_pnl(-250)
    risk.open_risk = 100
    qty = sizer.shares(price=500.0, cash=24_750, comminfo=COMM)
    assert qty == 42                                # floor(150 / 3.53)
    assert risk.can_take_trade(sizer.position_cost(qty, 500.0))


def test_the_breaker_pauses_for_good_unless_reset():
    risk = manager()
    risk.update_pnl(400)                   # peak 25,400
    risk.reset_daily()
    risk.update_pnl(-450)
    risk.reset_daily()
    risk.update_pnl(-450)                  # 900 below the peak (its own day: not halted)
    assert risk.drawdown == pytest.approx(900)
    risk.reset_daily()
    assert risk.can_take_trade(400) and not risk.tripped
    risk.update_pnl(-100)
    decision = risk.can_take_trade(400)
    assert not decision and "paused" in decision.reason
    assert risk.tripped and risk.paused and risk.trips == 1
    assert any("max drawdown" in a and "paused" in a for a in risk.alerts)
    risk.reset_daily()
    assert not risk.can_take_trade(400)    # a new day does not lift the pause
    risk.reset_breaker()                   # the user's reset: it counts from here
    assert risk.can_take_trade(400) and risk.peak == risk.equity and risk.drawdown == 0


def test_the_alert_breaker_marks_each_trip_and_trades_on():
    risk = RiskManager(daily_dd_limit=5_000, max_dd_threshold=1_000, max_dd_action="alert")
    risk.update_pnl(-1_000)
    assert risk.tripped and not risk.paused and risk.trips == 1
    assert risk.can_take_trade(400)
    assert "alert only" in risk.alerts[-1]
    risk.update_pnl(-500)                  # deeper in the same drawdown: no second trip
    assert risk.trips == 1
    risk.update_pnl(1_600)                 # a new peak re-arms it
    assert not risk.tripped
    risk.update_pnl(-1_000)
    assert risk.trips == 2
    with pytest.raises(ValueError):
        RiskManager(max_dd_action="stop")


def test_sizer_risks_at_most_the_budget_costs_included():
    risk = manager()
    sizer = RiskSizer(risk=risk, stop_pct=0.007, commission=0.005, slippage=0.01)
    qty = sizer.shares(price=500.0, cash=25_000, comminfo=COMM)
    per_share = cost_per_share(500.0, 0.007, 0.005, 0.01)
    assert per_share == pytest.approx(3.53)
    assert qty == 141                       # floor(500 / 3.53)
    assert sizer.position_cost(qty, 500.0) <= risk.risk_budget
    assert sizer.position_cost(qty + 1, 500.0) > risk.risk_budget


def test_sizer_is_capped_by_the_brokers_free_cash():
    sizer = RiskSizer(risk=manager(), stop_pct=0.007, commission=0.005, slippage=0.01)
    # the broker takes price / 4 + $0.005 a share; sized for a fill 1% up plus slippage
    per_share = open_cash(COMM, 500.0 * 1.01 + 0.01)
    assert per_share == pytest.approx(505.01 / 4 + 0.005)
    assert sizer.shares(price=500.0, cash=2_500, comminfo=COMM) == 19   # 2,500 / 126.2575
    assert sizer.shares(price=500.0, cash=0.0, comminfo=COMM) == 0
    assert sizer.shares(price=500.0, cash=-100.0, comminfo=COMM) == 0
