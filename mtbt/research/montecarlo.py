"""Monte Carlo of a finished run: bootstrap its trades' PnL.

The unit resampled is the **trade**: the rows of trades.csv are grouped by ``trade_id`` (a
trade that scales out has one row per exit; it counts once, with the sum of its rows' net
PnL, on the day of its last exit). Each of ``n`` paths draws as many trades as the run had,
with replacement, and puts the k-th draw on the day of the run's k-th trade, so a path has
the run's number of trades per day. On each path's realised equity (closed trades only, as
the risk manager counts it) it measures the total PnL, the maximum drawdown, and whether a
day's running loss reached ``daily_dd_limit`` or the drawdown reached ``max_dd_threshold``.
The limits are measured, not enforced: a path goes on trading after hitting one.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analyzers.daily import closed_trades
from mtbt.errors import DataError, MtbtError

PERCENTILES = (5, 25, 50, 75, 95)


@dataclass(frozen=True)
class RunTrades:
    """A report's trades (one PnL per trade, in order), their days and its risk limits."""

    folder: Path
    pnl: np.ndarray
    days: np.ndarray          # day number of each trade (0, 0, 1, 3, ...)
    account: float
    daily_limit: float
    total_limit: float


@dataclass(frozen=True)
class Paths:
    """What each bootstrap path ended with."""

    total_pnl: np.ndarray
    max_drawdown: np.ndarray
    daily_hit: np.ndarray     # bool: some day's running loss reached the daily limit
    total_hit: np.ndarray     # bool: the drawdown reached the total limit


def read_run(folder: str | Path) -> RunTrades:
    """trades.csv and config.json of a report folder (a backtest's or a walk-forward's)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such report folder")
    trades_path, config_path = folder / "trades.csv", folder / "config.json"
    for path in (trades_path, config_path):
        if not path.is_file():
            raise DataError(f"{path}: not found (is {folder} an mtbt report folder?)")
    try:
        rows = pd.read_csv(trades_path)
    except (ValueError, UnicodeDecodeError) as exc:     # pandas' ParserError is a ValueError
        why = " ".join(str(exc).split())[:160]
        raise DataError(f"{trades_path}: not a readable trades file ({why})") from None
    missing = [c for c in ("trade_id", "exit_time", "pnl") if c not in rows]
    if missing:
        raise DataError(f"{trades_path}: no column {missing[0]}")
    for column in ("trade_id", "pnl"):
        values = pd.to_numeric(rows[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.fillna(0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{trades_path}: line {i + 2}: {column} "
                            f"{rows[column].iloc[i]!r} is not a number")
        rows[column] = values
    exits = pd.to_datetime(rows["exit_time"].astype(str).str.slice(0, 10), errors="coerce",
                           format="%Y-%m-%d")
    if exits.isna().any():
        i = int(np.flatnonzero(exits.isna().to_numpy())[0])
        raise DataError(f"{trades_path}: line {i + 2}: exit_time "
                        f"{rows['exit_time'].iloc[i]!r} is not a date and time")
    trades = closed_trades(rows.astype({"exit_time": str}))
    if trades.empty:
        raise DataError(f"{trades_path}: no trades to resample")
    trades = trades.sort_values(["date", "trade_id"], kind="stable")
    try:
        risk = json.loads(config_path.read_text(encoding="utf-8"))["risk_management"]
        limits = [float(risk[k]) for k in ("account_size", "daily_dd_limit", "max_dd_threshold")]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{config_path}: expected a risk_management section with "
                        f"account_size, daily_dd_limit and max_dd_threshold ({exc})") from None
    days = pd.factorize(trades["date"])[0]
    return RunTrades(folder, trades["pnl"].to_numpy(dtype=float), days, *limits)


def measure(samples: np.ndarray, days: np.ndarray, run: RunTrades) -> Paths:
    """The figures of each row of ``samples`` (paths x trades of PnL) on the days ``days``."""
    cum = np.cumsum(samples, axis=1)
    start = np.zeros((len(samples), 1))
    equity = np.hstack([start, cum])                     # realised PnL, from 0
    drawdown = (np.maximum.accumulate(equity, axis=1) - equity).max(axis=1)
    new_day = np.r_[True, days[1:] != days[:-1]]
    before_day = equity[:, np.flatnonzero(new_day)]      # PnL before each day's first trade
    day_running = cum - before_day[:, np.cumsum(new_day) - 1]
    return Paths(cum[:, -1], drawdown, (day_running <= -run.daily_limit).any(axis=1),
                 drawdown >= run.total_limit)


def bootstrap(run: RunTrades, n: int, seed: int, chunk: int = 2000) -> Paths:
    """``n`` bootstrap paths of the run's trades from ``numpy.random.default_rng(seed)``
    (the same seed gives the same paths)."""
    if n < 1:
        raise MtbtError(f"--n {n}: expected 1 or more paths")
    rng = np.random.default_rng(seed)
    parts = []
    for lo in range(0, n, chunk):
        draws = rng.integers(0, len(run.pnl), size=(min(chunk, n - lo), len(run.pnl)))
        parts.append(measure(run.pnl[draws], run.days, run))
    return Paths(*(np.concatenate([getattr(p, f) for p in parts])
                   for f in ("total_pnl", "max_drawdown", "daily_hit", "total_hit")))


def new_seed() -> int:
    """A fresh seed to use and record when none is given."""
    return secrets.randbits(32)


def actual(run: RunTrades) -> Paths:
    """The run's own sequence of trades, measured the same way."""
    return measure(run.pnl[None, :], run.days, run)


def distribution(values: np.ndarray) -> dict[str, float]:
    """Mean and percentiles of ``values``, in dollars (2 decimals)."""
    stats = {"mean": float(values.mean())}
    stats |= {f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES}
    return {k: round(v, 2) for k, v in stats.items()}
