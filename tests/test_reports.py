"""The report figures (daily.csv, summary.json) on a hand-made journal and equity curve."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from analyzers.daily import daily_table
from analyzers.summary import summarize


def equity_curve() -> pd.DataFrame:
    times = pd.DatetimeIndex(["2024-01-03 09:30", "2024-01-03 12:00", "2024-01-03 15:59",
                              "2024-01-04 09:30", "2024-01-04 15:59"]).tz_localize(
        "America/New_York")
    values = [25_000.0, 25_200.0, 24_900.0, 25_100.0, 25_400.0]
    return pd.DataFrame({"cash": values, "equity": values}, index=times)


def journal() -> pd.DataFrame:
    return pd.DataFrame({
        "trade_id": [1, 1, 2],
        "exit_time": ["2024-01-03T10:00:00-05:00", "2024-01-03T11:00:00-05:00",
                      "2024-01-04T10:00:00-05:00"],
        "pnl": [300.0, -100.0, -200.0],
        "risk": [400.0, 400.0, 400.0],
    })


def regimes() -> pd.DataFrame:
    return pd.DataFrame({"time": ["2024-01-02T09:30:00-05:00", "2024-01-04T09:30:00-05:00"],
                         "regime": ["TRADE_NORMAL", "PAUSE_HIGH_VOL"],
                         "vix": [20.0, 31.0], "atr_pct": [1.0, 1.2]})


def test_daily_table():
    trips = [dt.datetime(2024, 1, 4, 10, 0), dt.datetime(2024, 1, 4, 14, 0)]
    daily = daily_table(equity_curve(), journal(), regimes(), 25_000.0, trips)
    assert daily.to_dict("records") == [
        {"date": "2024-01-03", "pnl": -100.0, "trades": 1, "wins": 1, "equity": 24_900.0,
         "drawdown": 300.0, "regime": "TRADE_NORMAL", "breaker_trips": 0},
        {"date": "2024-01-04", "pnl": 500.0, "trades": 1, "wins": 0, "equity": 25_400.0,
         "drawdown": 0.0, "regime": "PAUSE_HIGH_VOL", "breaker_trips": 2},
    ]


def test_summary_figures():
    s = summarize(journal(), equity_curve(), 25_000.0, data="x.parquet",
                  data_sha256={"x.parquet": "ab"}, version="9", max_dd_action="alert",
                  breaker_trips=["2024-01-04T10:00:00-05:00"])
    assert s["max_dd_action"] == "alert" and s["breaker_trips"] == ["2024-01-04T10:00:00-05:00"]
    assert s["allocator"] is None
    assert (s["trades"], s["wins"], s["win_rate"]) == (2, 1, 0.5)
    assert (s["total_pnl"], s["final_equity"], s["max_drawdown"]) == (400.0, 25_400.0, 300.0)
    assert s["profit_factor"] == 1.0                 # 200 won / 200 lost
    assert s["avg_r"] == 0.0                         # +0.5 R and -0.5 R
    r = np.array([-100 / 25_000, 500 / 24_900])
    assert s["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252), abs=1e-4)
    assert s["sortino"] == pytest.approx(r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2))
                                         * math.sqrt(252), abs=1e-4)
    assert s["start"] == "2024-01-03T09:30:00-05:00" and s["end"] == "2024-01-04T15:59:00-05:00"


def test_undefined_ratios_are_null():
    no_trades = journal().iloc[:0]
    flat = equity_curve().assign(equity=25_000.0)
    s = summarize(no_trades, flat, 25_000.0, data="synthetic", data_sha256={}, version="9")
    assert s["trades"] == 0 and s["win_rate"] == 0.0
    assert s["sharpe"] is None and s["sortino"] is None and s["profit_factor"] is None
    assert s["avg_r"] is None and s["max_drawdown"] == 0.0


def test_allocator_table_joins_each_decision_with_its_outcome():
    from analyzers.allocator import ALLOCATOR_COLUMNS, allocator_counts, allocator_table

    at = dt.datetime(2024, 1, 3, 9, 45)
    base = dict(time=at, side="long", underlying=470.0, contracts=2, ev=12.5, p_profit=0.5,
                p_tp1=0.2, p_stop=0.3, worst_loss=480.0, score=0.026, sigma_per_min=4e-4,
                drift_per_min=0.0, why="best")
    decisions = [base | dict(trade_id=1, pick="call_butterfly 465/470/475", entered=True),
                 base | dict(trade_id=2, pick="shares", entered=True, contracts=0, ev=None),
                 base | dict(trade_id=3, pick="skip", entered=False, contracts=0, ev=None),
                 base | dict(trade_id=3, pick="long_call 470", entered=False)]  # refused
    trades = pd.DataFrame({"trade_id": [1, 1, 2], "exit_reason": ["tp1", "trail", "stop"],
                           "exit_time": ["2024-01-03T10:00:00-05:00",
                                         "2024-01-03T11:00:00-05:00",
                                         "2024-01-03T10:30:00-05:00"],
                           "pnl": [50.0, 20.0, -300.0]})
    table = allocator_table(decisions, trades)
    assert tuple(table.columns) == ALLOCATOR_COLUMNS
    assert table["time"].iloc[0] == "2024-01-03T09:45:00-05:00"
    rows = table[["trade_id", "entered", "tp1_hit", "stopped", "first_exit", "pnl"]]
    assert rows.iloc[0].tolist() == [1, True, True, False, "tp1", 70.0]
    assert rows.iloc[1].tolist() == [2, True, False, True, "stop", -300.0]
    assert rows.iloc[2:]["trade_id"].isna().all() and rows.iloc[2:]["pnl"].isna().all()
    assert allocator_counts(table) == {"signals": 4, "structures": {"call_butterfly": 1,
                                                                    "long_call": 1},
                                       "shares": 1, "skipped": 1}
