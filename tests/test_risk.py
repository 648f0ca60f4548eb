"""RiskManager limits and the RiskSizer's arithmetic."""
from __future__ import annotations

import pytest

from mtbt.risk import RiskManager, RiskSizer, cost_per_share


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
    assert risk.can_take_trade(400)
    risk.update_pnl(-200)                  # the day has now lost exactly the limit
    decision = risk.can_take_trade(400)
    assert not decision and "daily loss limit" in decision.reason
    assert risk.halted_today and len(risk.alerts) == 1
    risk.reset_daily()
    assert risk.can_take_trade(400)
    assert risk.day_pnl == 0


def test_total_drawdown_pauses_for_good():
    risk = manager()
    risk.update_pnl(400)                   # peak 25,400
    risk.reset_daily()
    risk.update_pnl(-450)
    risk.reset_daily()
    risk.update_pnl(-450)                  # 1,000 below the peak (its own day: not halted)
    assert risk.drawdown == pytest.approx(900)
    assert risk.can_take_trade(400)
    risk.reset_daily()
    risk.update_pnl(-100)
    decision = risk.can_take_trade(400)
    assert not decision and "paused" in decision.reason
    assert any("max drawdown" in a for a in risk.alerts)
    risk.reset_daily()
    assert not risk.can_take_trade(400)    # a new day does not lift the pause


def test_sizer_risks_at_most_the_budget_costs_included():
    risk = manager()
    sizer = RiskSizer(risk=risk, stop_pct=0.007, commission=0.005, slippage=0.01,
                      max_leverage=4.0)
    qty = sizer.shares(price=500.0, equity=25_000, exposure=0.0)
    per_share = cost_per_share(500.0, 0.007, 0.005, 0.01)
    assert per_share == pytest.approx(3.53)
    assert qty == 141                       # floor(500 / 3.53)
    assert sizer.position_cost(qty, 500.0) <= risk.risk_budget
    assert sizer.position_cost(qty + 1, 500.0) > risk.risk_budget


def test_sizer_is_capped_by_buying_power():
    sizer = RiskSizer(risk=manager(), stop_pct=0.007, commission=0.005, slippage=0.01,
                      max_leverage=4.0)
    # 4 x 25,000 = 100,000 of buying power, 90,000 used: floor(0.99 x 10,000 / 500.015)
    assert sizer.shares(price=500.0, equity=25_000, exposure=90_000) == 19
    assert sizer.shares(price=500.0, equity=25_000, exposure=100_000) == 0
