"""Write a finished run's reports into its folder (each file complete or absent)."""
from __future__ import annotations

import gc
import json
import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from analyzers.allocator import allocator_counts, allocator_table
from analyzers.daily import daily_table
from analyzers.journal import TRADE_COLUMNS, iso_ny
from analyzers.payoff import payoff_chart
from analyzers.summary import daily_returns, summarize
from analyzers.tearsheet import (
    buy_and_hold,
    draw_charts,
    options_priced,
    quantstats,
    tearsheet_result,
    write_tearsheet,
)
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
                ".tearsheet.html.part", "payoff_*.png", "montecarlo.md", "montecarlo.json",
                "montecarlo.png")


def report_files(out: Path) -> list[Path]:
    """The files of ``out`` that a backtest (or a Monte Carlo of it) writes."""
    return sorted({p for pattern in REPORT_FILES for p in out.glob(pattern) if p.is_file()})


def write_reports(out: Path, strat, market, cfg, *, tearsheet: bool,
                  version: str) -> tuple[dict, list[str], pd.DataFrame]:
    """trades.csv, equity.csv, daily.csv, regime.csv, summary.json, config.json, the
    tearsheet and, for options runs, allocator.csv; returns the summary, notes for the
    user (also logged to run.log) and the daily table."""
    start_equity = cfg.risk_management.account_size
    trades = strat.analyzers.journal.get_frame()
    equity = strat.analyzers.equity.get_frame()
    if market.trade_from is not None:
        equity = equity[equity.index.tz_localize(None).normalize()
                        >= pd.Timestamp(market.trade_from)]
    regimes = strat.analyzers.regime.get_frame()
    option_prices = _option_prices(strat)
    tearsheet_notes = _tearsheet_started(out, equity, market, cfg, start_equity,
                                         option_prices) if tearsheet and len(equity) else list

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
    _payoff_charts(out, journal, strat)
    notes += tearsheet_notes()
    for note in notes:
        log.warning("NOTE %s", note)
    return summary, notes, daily


def _option_prices(strat) -> dict | None:
    """summary.json's ``option_prices`` for an options run (None for shares)."""
    counts = getattr(strat.broker, "price_counts", None)
    return counts.as_dict() if counts is not None and strat.p.instrument == "options" else None


def _payoff_charts(out: Path, journal, strat) -> None:
    """payoff_<structure>.png for each structure type the run traded."""
    model = strat.broker.p.chain_model
    for name, first in journal.structures.items():
        payoff_chart(out / f"payoff_{name}.png", name, model=model, **first)


def _iso_index(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.index = isoformat_array(frame.index)
    out.index.name = "timestamp"
    return out


def _tearsheet_started(out: Path, equity: pd.DataFrame, market, cfg, start_equity: float,
                       option_prices: dict | None) -> Callable[[], list[str]]:
    """Start writing tearsheet.html in a forked process (quantstats' charts take a second or
    more of one core; the other reports are written meanwhile, on the other); the call
    returned draws some of its charts (``draw_charts``: this process is free by then), waits
    for it and gives its notes. In this process where forking is unsafe (other threads
    running) or unavailable."""
    args = (out, equity, market, cfg, start_equity, option_prices)
    if threading.active_count() > 1 or "fork" not in mp.get_all_start_methods():
        notes = _tearsheet(*args)
        return lambda: notes
    quantstats()                # imported once here, not again in every child
    context = mp.get_context("fork")
    ours, theirs = context.Pipe()
    child = context.Process(target=_tearsheet_child, args=(theirs, *args), daemon=True,
                            name="mtbt-tearsheet")
    gc.freeze()     # the child's collections leave the objects of this process alone (fewer
    child.start()   # pages copied on write)
    gc.unfreeze()
    theirs.close()

    def wait() -> list[str]:
        try:
            notes = draw_charts(ours)
        except EOFError:            # the process died before answering
            (out / ".tearsheet.html.part").unlink(missing_ok=True)
            notes = [f"tearsheet failed (its process exited with {child.exitcode}); the "
                     "other reports are fine"]
        child.join()
        ours.close()
        return notes
    return wait


def _tearsheet_child(helper, *args) -> None:
    tearsheet_result(helper, _tearsheet(*args, helper=helper))
    helper.close()


def _tearsheet(out: Path, equity: pd.DataFrame, market, cfg, start_equity: float,
               option_prices: dict | None = None, helper=None) -> list[str]:
    """Write tearsheet.html; a failure of quantstats costs the tearsheet, not the run."""
    returns = daily_returns(equity, start_equity)
    if not returns.any():
        return ["tearsheet skipped: the account never changed (no trades)"]
    symbol = cfg.strategy.symbol
    bench = buy_and_hold(market.bars["close"], returns.index)
    what = "SYNTHETIC DATA" if market.synthetic else Path(market.label).name
    tmp = out / ".tearsheet.html.part"
    try:
        title = f"mtbt {cfg.name}: {symbol} ({what})" + options_priced(option_prices, ", ")
        write_tearsheet(returns, bench, tmp, title=title,
                        benchmark_title=f"{symbol} buy & hold", strategy_title=cfg.name,
                        helper=helper)
    except Exception as exc:   # quantstats fails on some degenerate series
        tmp.unlink(missing_ok=True)
        log.exception("tearsheet failed")
        return [f"tearsheet failed ({type(exc).__name__}: {exc}); the other reports are fine"]
    os.replace(tmp, out / "tearsheet.html")
    return []
