"""Daily figures (daily.csv) from the equity curve, the journal and the regime log."""
from __future__ import annotations

import pandas as pd

DAILY_COLUMNS = ("date", "pnl", "trades", "wins", "equity", "drawdown", "regime",
                 "breaker_trips")


def end_of_day(equity: pd.DataFrame) -> pd.Series:
    """The last marked equity of each session, indexed by naive dates."""
    values = equity["equity"]
    return values.groupby(values.index.tz_localize(None).normalize()).last()


def closed_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """One row per trade: its net PnL, the day of its last exit and its initial risk."""
    if trades.empty:
        return pd.DataFrame(columns=["trade_id", "pnl", "date", "risk"])
    exit_day = pd.to_datetime(trades["exit_time"].str.slice(0, 10))
    grouped = trades.assign(date=exit_day).groupby("trade_id", sort=True)
    out = grouped.agg(pnl=("pnl", "sum"), date=("date", "max"))
    if "risk" in trades:
        out["risk"] = grouped["risk"].first()
    return out.reset_index()


def daily_table(equity: pd.DataFrame, trades: pd.DataFrame, regimes: pd.DataFrame,
                start_equity: float, trips: list | tuple = ()) -> pd.DataFrame:
    """date, pnl, trades, wins, equity, drawdown, regime, breaker_trips per session.

    ``pnl`` is the change of end-of-day equity (marked to market), ``drawdown`` the dollars
    below the highest equity seen at any bar so far, ``regime`` the regime at the day's open,
    ``breaker_trips`` how many times the drawdown breaker tripped that day (``trips``: the
    naive New York times of the trips).
    """
    if equity.empty:
        return pd.DataFrame(columns=list(DAILY_COLUMNS))
    eod = end_of_day(equity)
    peak = end_of_day(equity.cummax())
    per_trade = closed_trades(trades)
    counts = per_trade.groupby("date")["pnl"].agg(trades="size", wins=lambda s: int((s > 0).sum()))
    table = pd.DataFrame({
        "pnl": eod.diff().fillna(eod.iloc[0] - start_equity).round(2),
        "equity": eod.round(2),
        "drawdown": (peak - eod).round(2),
    })
    table = table.join(counts).fillna({"trades": 0, "wins": 0})
    table["regime"] = _regime_at_open(table.index, regimes)
    tripped = pd.Series(1, index=pd.DatetimeIndex(list(trips)).normalize())
    table["breaker_trips"] = tripped.groupby(level=0).sum().reindex(table.index).fillna(0)
    table.index.name = "date"
    out = table.reset_index()
    out["date"] = out["date"].dt.strftime("%Y-%m-%d")
    out[["trades", "wins", "breaker_trips"]] = out[["trades", "wins", "breaker_trips"]].astype(int)
    return out[list(DAILY_COLUMNS)]


def _regime_at_open(days: pd.DatetimeIndex, regimes: pd.DataFrame) -> list[str]:
    if regimes.empty:
        return [""] * len(days)
    times = pd.to_datetime(regimes["time"].str.slice(0, 19))
    changes = pd.Series(regimes["regime"].to_numpy(), index=times)
    by_day = changes.groupby(changes.index.normalize()).last()   # it changes only at opens
    return by_day.reindex(by_day.index.union(days)).ffill().reindex(days).fillna("").tolist()
