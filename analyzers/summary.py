"""summary.json: the run's headline figures (keys fixed by DESIGN.md)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analyzers.daily import closed_trades, end_of_day

SUMMARY_KEYS = ("trades", "wins", "win_rate", "total_pnl", "max_drawdown", "sharpe",
                "sortino", "profit_factor", "avg_r", "final_equity", "start", "end", "data",
                "data_sha256", "version", "max_dd_action", "breaker_trips", "allocator",
                "option_prices")


def daily_returns(equity: pd.DataFrame, start_equity: float) -> pd.Series:
    """Decimal returns of end-of-day equity, indexed by naive dates (the first day vs start)."""
    eod = end_of_day(equity)
    prev = eod.shift(1).fillna(start_equity)
    return (eod / prev - 1.0).rename("Strategy")


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def sharpe_sortino(returns: pd.Series, periods: int = 252) -> tuple[float | None, float | None]:
    """Annualised Sharpe and Sortino of decimal returns (risk-free 0); None when undefined."""
    r = returns.to_numpy(dtype=float)
    if len(r) < 2:
        return None, None
    sd = r.std(ddof=1)
    downside = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    mean = r.mean() * math.sqrt(periods)
    return (_finite(mean / sd) if sd > 0 else None,
            _finite(mean / downside) if downside > 0 else None)


def summarize(trades: pd.DataFrame, equity: pd.DataFrame, start_equity: float, *,
              data: str, data_sha256: dict[str, str], version: str,
              max_dd_action: str = "pause", breaker_trips: list[str] | None = None,
              allocator: dict | None = None, option_prices: dict | None = None) -> dict:
    """The summary.json figures. Money in dollars; ``max_drawdown`` is a positive amount
    (largest drop of marked equity below its peak); ``avg_r`` is the mean trade PnL in units
    of the trade's initial risk; undefined ratios are null. ``breaker_trips``: when the
    drawdown breaker tripped (ISO times); ``allocator``: the options decisions counted (null
    for shares runs); ``option_prices``: what priced the option legs (``PriceCounts.as_dict``:
    fills and marks, recorded vs model, sessions, structures skipped for want of a recorded
    price, liquidity drops; null for shares runs)."""
    per_trade = closed_trades(trades)
    pnl = per_trade["pnl"].astype(float)
    wins = int((pnl > 0).sum())
    losses = -pnl[pnl < 0].sum()
    values = equity["equity"]
    final = float(values.iloc[-1]) if len(values) else start_equity
    peak = np.maximum.accumulate(np.r_[start_equity, values.to_numpy()])
    sharpe, sortino = sharpe_sortino(daily_returns(equity, start_equity)) if len(values) else (
        None, None)
    has_risk = "risk" in per_trade and len(per_trade)
    return {
        "trades": len(per_trade),
        "wins": wins,
        "win_rate": round(wins / len(per_trade), 4) if len(per_trade) else 0.0,
        "total_pnl": round(final - start_equity, 2),
        "max_drawdown": round(float((peak - np.r_[start_equity, values.to_numpy()]).max()), 2),
        "sharpe": sharpe,
        "sortino": sortino,
        "profit_factor": _finite(pnl[pnl > 0].sum() / losses) if losses > 0 else None,
        "avg_r": _finite((pnl / per_trade["risk"]).mean()) if has_risk else None,
        "final_equity": round(final, 2),
        "start": values.index[0].isoformat() if len(values) else None,
        "end": values.index[-1].isoformat() if len(values) else None,
        "data": data,
        "data_sha256": data_sha256,
        "version": version,
        "max_dd_action": max_dd_action,
        "breaker_trips": list(breaker_trips or []),
        "allocator": allocator,
        "option_prices": option_prices,
    }
