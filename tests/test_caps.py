"""Risk limits that cap, on the year of real SPY minutes (skipped without ../shared).

The drawdown breaker only alerts here, so the whole year trades; the options run sets
``min_edge`` low enough that every signal with a structure that fits is traded as one (the
strongest test of the worst-case sizing).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mtbt.cli import main

SPY = "spy_1m_2024-03-26_2025-04-02.parquet"
VIX = "vix_1d_1990_2026.parquet"
BUDGET, DAILY = 500.0, 500.0          # the default run's risk budget and daily limit
RUNS = {
    "equity": ['strategy.instrument="equity"'],
    "options": ['strategy.instrument="options"', "options.min_edge=-10.0"],
}


@pytest.fixture(scope="module")
def year(shared_data, tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name, sets in RUNS.items():
        folder = tmp_path_factory.mktemp(name) / "report"
        args = ["backtest", "--data", str(shared_data / SPY), "--vix", str(shared_data / VIX),
                "--out", str(folder), "--quiet", "--no-tearsheet",
                "--set", 'risk_management.max_dd_action="alert"']
        for item in sets:
            args += ["--set", item]
        assert main(args) == 0
        out[name] = folder
    return out


def per_trade(folder: Path) -> pd.DataFrame:
    trades = pd.read_csv(folder / "trades.csv")
    return trades.groupby("trade_id").agg(pnl=("pnl", "sum"), instrument=("instrument", "first"),
                                          day=("exit_time", lambda t: t.str[:10].max()))


def test_no_options_trade_loses_more_than_the_risk_budget(year):
    trades = per_trade(year["options"])
    structures = trades[trades["instrument"] != "equity"]
    assert len(structures) >= 50                      # the year really traded structures
    assert structures["pnl"].min() >= -1.05 * BUDGET, structures.nsmallest(3, "pnl")


@pytest.mark.parametrize("name", list(RUNS))
def test_no_session_loses_more_than_the_daily_limit(year, name):
    daily = pd.read_csv(year[name] / "daily.csv")
    assert daily["trades"].sum() >= 50
    assert daily["pnl"].min() >= -1.1 * DAILY, daily.nsmallest(3, "pnl")
    booked = per_trade(year[name]).groupby("day")["pnl"].sum()
    assert booked.min() >= -1.1 * DAILY


def test_no_leg_is_sold_at_a_zero_bid_and_every_pick_is_journaled(year):
    legs = pd.read_csv(year["options"] / "legs.csv")
    sells = legs[(legs["action"] == "open") & (legs["qty"] < 0)]
    assert len(sells) > 0 and (sells["fill"] > 0).all()
    decisions = pd.read_csv(year["options"] / "allocator.csv")
    entered = decisions[decisions["entered"]]
    assert set(per_trade(year["options"]).index) <= set(entered["trade_id"].astype(int))
    assert decisions["p_tp1"].between(0, 1).all() and decisions["p_stop"].between(0, 1).all()
