"""Write a finished run's reports into its folder (each file complete or absent)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from analyzers.daily import daily_table
from analyzers.journal import TRADE_COLUMNS
from analyzers.summary import daily_returns, summarize
from analyzers.tearsheet import buy_and_hold, write_tearsheet


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a crash leaves no half file."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def write_reports(out: Path, strat, market, cfg, *, tearsheet: bool, version: str) -> dict:
    """trades.csv, equity.csv, daily.csv, regime.csv, summary.json, config.json and the
    tearsheet; returns the summary."""
    start_equity = cfg.risk_management.account_size
    trades = strat.analyzers.journal.get_frame()
    equity = strat.analyzers.equity.get_frame()
    if market.trade_from is not None:
        equity = equity[equity.index.tz_localize(None).normalize()
                        >= pd.Timestamp(market.trade_from)]
    regimes = strat.analyzers.regime.get_frame()

    atomic_write(out / "trades.csv", trades[list(TRADE_COLUMNS)].to_csv(index=False))
    atomic_write(out / "equity.csv", _iso_index(equity).to_csv())
    atomic_write(out / "daily.csv",
                 daily_table(equity, trades, regimes, start_equity).to_csv(index=False))
    atomic_write(out / "regime.csv", regimes.to_csv(index=False))
    summary = summarize(trades, equity, start_equity, data=market.label,
                        data_sha256=market.sha256, version=version)
    atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    config = {"run_id": cfg.run_id, "name": cfg.name, "source": cfg.source, **cfg.as_dict()}
    atomic_write(out / "config.json", json.dumps(config, indent=2) + "\n")
    if tearsheet and len(equity):
        _tearsheet(out, equity, market, cfg, start_equity)
    return summary


def _iso_index(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.index = [ts.isoformat() for ts in frame.index]
    out.index.name = "timestamp"
    return out


def _tearsheet(out: Path, equity: pd.DataFrame, market, cfg, start_equity: float) -> None:
    returns = daily_returns(equity, start_equity)
    symbol = cfg.strategy.symbol
    bench = buy_and_hold(market.bars["close"], returns.index)
    what = "SYNTHETIC DATA" if market.synthetic else Path(market.label).name
    tmp = out / ".tearsheet.html.part"
    write_tearsheet(returns, bench, tmp, title=f"mtbt {cfg.name}: {symbol} ({what})",
                    benchmark_title=f"{symbol} buy & hold", strategy_title=cfg.name)
    os.replace(tmp, out / "tearsheet.html")
