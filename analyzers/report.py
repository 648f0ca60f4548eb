"""Write a finished run's reports into its folder (each file complete or absent)."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd

from analyzers.allocator import allocator_counts, allocator_table
from analyzers.daily import daily_table
from analyzers.journal import TRADE_COLUMNS, iso_ny
from analyzers.report_process import ReportProcess
from analyzers.summary import daily_returns, summarize
from analyzers.tearsheet import buy_and_hold, options_priced
from mtbt.datenums import isoformat_array

log = logging.getLogger("mtbt")


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a crash leaves no half file."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


# every file a backtest's report folder may hold (``--force`` removes only these)
REPORT_FILES = ("trades.csv", "legs.csv", "equity.csv", "daily.csv", "regime.csv",
                "allocator.csv", "summary.json", "config.json", "run.log", "tearsheet.html",
                ".tearsheet.html.part", "payoff_*.png", ".payoff_*.png.part", "montecarlo.md",
                "montecarlo.json", "montecarlo.png")


def report_files(out: Path) -> list[Path]:
    """The files of ``out`` that a backtest (or a Monte Carlo of it) writes."""
    return sorted({p for pattern in REPORT_FILES for p in out.glob(pattern) if p.is_file()})


def write_reports(out: Path, strat, market, cfg, *, tearsheet: bool, version: str,
                  process: ReportProcess) -> tuple[dict, list[str], pd.DataFrame]:
    """trades.csv, equity.csv, daily.csv, regime.csv, summary.json, config.json and, for
    options runs, allocator.csv; the tearsheet and the payoff charts by ``process``; returns
    the summary, notes for the user (also logged to run.log) and the daily table."""
    start_equity = cfg.risk_management.account_size
    trades = strat.analyzers.journal.get_frame()
    equity = strat.analyzers.equity.get_frame()
    if market.trade_from is not None:
        equity = equity[equity.index.tz_localize(None).normalize()
                        >= pd.Timestamp(market.trade_from)]
    regimes = strat.analyzers.regime.get_frame()
    option_prices = _option_prices(strat)
    sheet, skipped = _tearsheet_arguments(equity, market, cfg, start_equity, option_prices) \
        if tearsheet and len(equity) else (None, [])
    process_notes = process.finish(sheet)

    atomic_write(out / "trades.csv", trades[list(TRADE_COLUMNS)].to_csv(index=False))
    journal = strat.analyzers.journal
    if journal.legs:
        atomic_write(out / "legs.csv", journal.get_legs().to_csv(index=False))
    atomic_write(out / "equity.csv", _iso_index(equity).to_csv())
    trips = list(getattr(strat, "breaker_trips", []))
    daily = daily_table(equity, trades, regimes, start_equity, trips)
    atomic_write(out / "daily.csv", daily.to_csv(index=False))
    atomic_write(out / "regime.csv", regimes.to_csv(index=False))
    counts = None
    if strat.p.instrument == "options" and strat.chooses_structures:
        decisions = allocator_table(strat.allocations, trades)
        atomic_write(out / "allocator.csv", decisions.to_csv(index=False))
        counts = allocator_counts(decisions)
    summary = summarize(trades, equity, start_equity, data=market.label,
                        data_sha256=market.sha256, version=version,
                        max_dd_action=cfg.risk_management.max_dd_action,
                        breaker_trips=[iso_ny(t) for t in trips], allocator=counts,
                        option_prices=option_prices)
    atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    config = {"run_id": cfg.run_id, **cfg.as_dict()}
    atomic_write(out / "config.json", json.dumps(config, indent=2) + "\n")
    notes = []
    states = set(regimes["regime"])
    if "TRADE_NORMAL" not in states:
        why = " (the daily ATR(14) needs 15 sessions first)" if states <= {"WARMUP"} else ""
        notes.append(f"the regime never allowed trading in these "
                     f"{len(equity.index.normalize().unique())} sessions{why}; see regime.csv")
    if getattr(strat, "open_at_end", None):
        notes.append(f"{len(strat.open_at_end)} lot(s) still open when the data ended: marked "
                     "in equity.csv and summary.json, absent from trades.csv (see run.log)")
    notes += skipped + process_notes()
    for note in notes:
        log.warning("NOTE %s", note)
    return summary, notes, daily


def _option_prices(strat) -> dict | None:
    """summary.json's ``option_prices`` for an options run (None for shares)."""
    counts = getattr(strat.broker, "price_counts", None)
    return counts.as_dict() if counts is not None and strat.p.instrument == "options" else None


def _iso_index(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.index = isoformat_array(frame.index)
    out.index.name = "timestamp"
    return out


def _tearsheet_arguments(equity: pd.DataFrame, market, cfg, start_equity: float,
                         option_prices: dict | None) -> tuple[dict | None, list[str]]:
    """``write_tearsheet``'s arguments for this run (None, with a note, when there is
    nothing to show)."""
    returns = daily_returns(equity, start_equity)
    if not returns.any():
        return None, ["tearsheet skipped: the account never changed (no trades)"]
    symbol = cfg.strategy.symbol
    what = "SYNTHETIC DATA" if market.synthetic else Path(market.label).name
    title = f"mtbt {cfg.name}: {symbol} ({what})" + options_priced(option_prices, ", ")
    return dict(returns=returns, benchmark=buy_and_hold(market.bars["close"], returns.index),
                title=title, benchmark_title=f"{symbol} buy & hold",
                strategy_title=cfg.name), []
