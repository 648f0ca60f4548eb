"""Honesty checks on real data: no look-ahead, and costs cost money.

VIX timing (a day's close is used from the next session on) is tested in
``tests/test_indicators.py::test_regime_uses_the_prior_sessions_vix``.
"""
from __future__ import annotations

import pandas as pd
import pytest

from analyzers.journal import iso_ny
from feeds.arrays import BarFeed
from feeds.loader import load_market_data
from mtbt.config import load_run
from mtbt.options.structures import long_call, long_put
from mtbt.runner import backtest_venue, build_cerebro, strategy_kwargs
from mtbt.strategies import WaveRenko
from mtbt.strategies._structures import Choice

SPY = "spy_1m_2024-03-26_2025-04-02.parquet"
VIX = "vix_1d_1990_2026.parquet"
# cut times between and right at entries of the default run (bars strictly before a cut stay)
CUTS = ["2024-04-19 10:00", "2024-04-24 10:01", "2024-05-01 10:20", "2024-05-02 10:17",
        "2024-06-12 14:00"]


class AtTheMoneyCall(WaveRenko):
    """WaveRenko whose every options signal buys one at-the-money call or put (the allocator's
    choice depends on costs, so comparing costs needs a fixed structure)."""

    def choose_structure(self, signal, chain, budget):
        make = long_call if signal.side > 0 else long_put
        return Choice(make(chain.expiry, chain.nearest_strike(chain.spot)), 1, 100.0, "fixed")


def journal(cfg, bars: pd.DataFrame, strategy=None) -> pd.DataFrame:
    """The exit rows, plus one row per lot still open when the data ended (no exit)."""
    days = bars.index.tz_localize(None).normalize()
    venue = backtest_venue(cfg, BarFeed(dataname=bars), first=days[0].date(),
                           last=days[-1].date())
    cerebro = build_cerebro(cfg, venue, strategy=strategy,
                            strategy_params=strategy_kwargs(cfg) if strategy else None)
    (strat,) = cerebro.run()
    still_open = pd.DataFrame([
        {"trade_id": lot.trade_id, "side": "long" if lot.side > 0 else "short",
         "entry_time": iso_ny(lot.entry_time),
         "entry_price": round(lot.entry_price if lot.structure is None else lot.premium, 4),
         "qty": lot.remaining, "exit_time": "9999-12-31T00:00:00"}
        for lot in strat.open_at_end])
    return pd.concat([strat.analyzers.journal.get_frame(), still_open], ignore_index=True)


@pytest.fixture(scope="module")
def spy_run(request):
    shared = request.getfixturevalue("shared_data")
    cfg = load_run(None, [f'data.bars="{shared / SPY}"', f'data.vix="{shared / VIX}"',
                          "data.end=2024-06-28"])
    bars = load_market_data(cfg.data).bars
    return cfg, bars, journal(cfg, bars)


def entries(trades: pd.DataFrame, before: pd.Timestamp) -> pd.DataFrame:
    entry = pd.to_datetime(trades["entry_time"].str.slice(0, 19))
    picked = trades[entry < before]
    return picked.groupby("trade_id").agg(entry_time=("entry_time", "first"),
                                          side=("side", "first"),
                                          entry_price=("entry_price", "first"),
                                          qty=("qty", "sum"))


@pytest.mark.parametrize("cut", CUTS)
def test_no_look_ahead_trades_before_a_cut_do_not_change(spy_run, cut):
    """Re-run with the bars truncated at ``cut``: every trade entered before it, and every
    exit filled before it, is identical (time, side, price, qty)."""
    cfg, bars, full = spy_run
    at = pd.Timestamp(cut)
    cut_trades = journal(cfg, bars[bars.index < at.tz_localize("America/New_York")])
    expected = entries(full, at)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(entries(cut_trades, at), expected)
    exits = pd.to_datetime(full["exit_time"].str.slice(0, 19)) < at
    cut_exits = pd.to_datetime(cut_trades["exit_time"].str.slice(0, 19)) < at
    pd.testing.assert_frame_equal(cut_trades[cut_exits].reset_index(drop=True),
                                  full[exits].reset_index(drop=True))


@pytest.mark.parametrize("instrument, free", [
    ("equity", ["costs.commission_per_share=0", "costs.slippage_per_share=0"]),
    ("options", ["options.fee_per_contract=0", "options.half_spread_pct=0"]),
])
def test_costs_cost_money(spy_run, instrument, free):
    """The same run with its costs at zero ends with more money: commission and slippage for
    shares; fees and the bid-ask spread (down to its one-tick minimum) for structures."""
    cfg, bars, _ = spy_run
    base = [f'data.bars="{cfg.data.bars}"', f'data.vix="{cfg.data.vix}"', "data.end=2024-06-28",
            f'strategy.instrument="{instrument}"']
    strategy = AtTheMoneyCall if instrument == "options" else None
    with_costs = journal(load_run(None, base), bars, strategy)
    without = journal(load_run(None, [*base, *free]), bars, strategy)
    assert with_costs["pnl"].notna().sum() > 0
    if instrument == "options":            # the same trades, one contract each
        same = ["entry_time", "instrument", "exit_time", "exit_reason", "qty"]
        assert (with_costs["instrument"] != "equity").sum() > 0
        pd.testing.assert_frame_equal(without[same], with_costs[same])
    assert without["pnl"].sum() > with_costs["pnl"].sum()
