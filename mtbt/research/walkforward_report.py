"""The walk-forward's report: the stitched out-of-sample run (trades.csv, equity.csv,
summary.json, config.json, tearsheet.html), windows.csv, walkforward.json and walkforward.md
with the in-sample and out-of-sample figures side by side."""
from __future__ import annotations

import json
import logging
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analyzers.journal import TRADE_COLUMNS
from analyzers.report import atomic_write
from analyzers.summary import daily_returns
from analyzers.tearsheet import buy_and_hold, write_tearsheet
from feeds.loader import MarketData
from mtbt._config_errors import fmt
from mtbt.config import RunConfig
from mtbt.research.metrics import show

log = logging.getLogger("mtbt")
SHOWN = ("trades", "win_rate", "total_pnl", "max_drawdown", "sharpe", "profit_factor")
HONESTY = ("In-sample figures are optimistic: each is the best of {n} combinations on the very "
           "sessions it was chosen on. Only the out-of-sample figures are evidence: each test "
           "window is traded with the combination chosen on the train window before it, and "
           "no test result ever influences a choice.")
RESTART = ("Each test window is its own backtest: the account restarts at {account} and the "
           "daily and drawdown limits reset at every window; the {warmup} sessions before a "
           "test window warm the indicators up and are never traded. The stitched curve "
           "chains the windows' dollar PnL.")


def write_report(folder: Path, cfg: RunConfig, market: MarketData, results: Sequence,
                 equity: pd.DataFrame, trades: pd.DataFrame, summary: dict,
                 settings: dict[str, Any], *, tearsheet: bool) -> None:
    """Write every file of the walk-forward report into ``folder``; ``settings`` holds
    ``train`` and ``test`` (sessions), ``metric`` and ``combinations`` (per window)."""
    table = window_table(results)
    atomic_write(folder / "windows.csv", table.to_csv(index=False))
    stamped = equity.copy()
    stamped.index = [ts.isoformat() for ts in equity.index]
    stamped.index.name = "timestamp"
    atomic_write(folder / "equity.csv", stamped.to_csv())
    atomic_write(folder / "trades.csv",
                 trades.reindex(columns=list(TRADE_COLUMNS)).to_csv(index=False))
    atomic_write(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    config = {"run_id": cfg.run_id, **cfg.as_dict()}
    atomic_write(folder / "config.json", json.dumps(config, indent=2) + "\n")
    notes = [HONESTY.format(n=settings["combinations"]),
             RESTART.format(account=show(cfg.risk_management.account_size, "final_equity"),
                            warmup=cfg.data.warmup_sessions)]
    notes += [f"window {r.window.number}: {r.note}" for r in results if r.note]
    if tearsheet:
        notes += _tearsheet(folder / "tearsheet.html", equity, market, cfg)
    compare = side_by_side(results)
    facts = {**settings, "data": market.label, "windows": table.to_dict(orient="records"),
             "side_by_side": compare, "out_of_sample": summary, "notes": notes}
    atomic_write(folder / "walkforward.json", json.dumps(facts, indent=2, default=str) + "\n")
    atomic_write(folder / "walkforward.md",
                 markdown(cfg, market, table, compare, summary, notes, settings))


def window_table(results: Sequence) -> pd.DataFrame:
    """One row per window: its sessions, the chosen values, in- and out-of-sample figures."""
    rows = []
    for r in results:
        w = r.window
        row: dict[str, Any] = {
            "window": w.number, "train_first": w.train_first, "train_last": w.train_last,
            "train_sessions": w.train_sessions, "test_first": w.test_first,
            "test_last": w.test_last, "test_sessions": w.test_sessions,
            "combination": r.chosen.number if r.chosen else None}
        row |= {k: fmt(v) for k, v in (r.chosen.params if r.chosen else {}).items()}
        for prefix, figures in (("is", r.in_sample), ("oos", r.out_of_sample)):
            row |= {f"{prefix}_{m}": (figures or {}).get(m) for m in SHOWN}
        rows.append(row | {"note": r.note})
    return pd.DataFrame(rows)


def side_by_side(results: Sequence) -> dict[str, dict[str, Any]]:
    """The same figures of the in-sample and the out-of-sample runs, over the windows that
    have both: per session (windows differ in length), pooled, and per window."""
    both = [r for r in results if r.in_sample and r.out_of_sample]
    out = {}
    for side, sessions in (("in_sample", "train_sessions"), ("out_of_sample", "test_sessions")):
        figures = [getattr(r, side) for r in both]
        days = sum(getattr(r.window, sessions) for r in both)
        trades = sum(f["trades"] for f in figures)
        sharpes = [f["sharpe"] for f in figures if f["sharpe"] is not None]
        out[side] = {
            "windows": len(figures), "sessions": days,
            "pnl_per_session": round(sum(f["total_pnl"] for f in figures) / days, 2)
            if days else None,
            "trades_per_session": round(trades / days, 3) if days else None,
            "win_rate": round(sum(f["wins"] for f in figures) / trades, 4) if trades else None,
            "mean_sharpe": round(statistics.fmean(sharpes), 2) if sharpes else None,
            "worst_max_drawdown": max((f["max_drawdown"] for f in figures), default=None),
            "profitable_windows": sum(f["total_pnl"] > 0 for f in figures)}
    return out


def markdown(cfg: RunConfig, market: MarketData, table: pd.DataFrame, compare: dict,
             summary: dict, notes: Sequence[str], settings: dict[str, Any]) -> str:
    """walkforward.md: the settings, the side-by-side table, the windows and the notes."""
    data = "SYNTHETIC sample (not market data)" if market.synthetic else market.label
    lines = [f"# mtbt walk-forward: {cfg.name}", "", f"- data: {data}",
             f"- {len(table)} windows: {settings['train']} train sessions, then "
             f"{settings['test']} test sessions (the last window's may be fewer); "
             f"{settings['combinations']} combinations backtested on each train window, the "
             f"best by {settings['metric']} traded on its test window",
             "", "## In-sample vs out-of-sample", "",
             "| figure | in-sample (optimistic) | out-of-sample |", "|---|---|---|"]
    ins, oos = compare["in_sample"], compare["out_of_sample"]
    for name, key, kind in (("PnL per session", "pnl_per_session", "total_pnl"),
                            ("trades per session", "trades_per_session", "ratio"),
                            ("win rate (pooled)", "win_rate", "win_rate"),
                            ("Sharpe (mean of windows)", "mean_sharpe", "sharpe"),
                            ("worst window max drawdown", "worst_max_drawdown", "max_drawdown")):
        lines.append(f"| {name} | {show(ins[key], kind)} | {show(oos[key], kind)} |")
    lines.append(f"| profitable windows | {ins['profitable_windows']} of {ins['windows']} | "
                 f"{oos['profitable_windows']} of {oos['windows']} |")
    lines += ["", "Stitched out-of-sample run (summary.json, equity.csv, trades.csv, "
              f"tearsheet.html): {summary['trades']} trades, win rate "
              f"{show(summary['win_rate'], 'win_rate')}, total PnL "
              f"{show(summary['total_pnl'], 'total_pnl')}, max drawdown "
              f"{show(summary['max_drawdown'], 'max_drawdown')}, Sharpe "
              f"{show(summary['sharpe'], 'sharpe')}.", "", "## Windows", "",
              _windows_markdown(table), "", "## Notes", ""]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _windows_markdown(table: pd.DataFrame) -> str:
    rows = ["| window | train | test | chosen | in-sample PnL / trades | "
            "out-of-sample PnL / trades |", "|---|---|---|---|---|---|"]
    fixed = {"window", "train_first", "train_last", "train_sessions", "test_first",
             "test_last", "test_sessions", "combination", "note"}
    params = [c for c in table.columns if c not in fixed and not c.startswith(("is_", "oos_"))]
    for _, r in table.iterrows():
        chosen = ", ".join(f"{p.split('.')[-1]}={r[p]}" for p in params if pd.notna(r[p]))
        rows.append(
            f"| {r['window']} | {r['train_first']} to {r['train_last']} | {r['test_first']} "
            f"to {r['test_last']} ({r['test_sessions']}) | {chosen or '-'} | "
            f"{show(r['is_total_pnl'], 'total_pnl')} / {show(r['is_trades'], 'trades')} | "
            f"{show(r['oos_total_pnl'], 'total_pnl')} / {show(r['oos_trades'], 'trades')} |")
    return "\n".join(rows)


def _tearsheet(path: Path, equity: pd.DataFrame, market: MarketData,
               cfg: RunConfig) -> list[str]:
    """tearsheet.html of the stitched curve; a quantstats failure costs only the tearsheet."""
    returns = daily_returns(equity, cfg.risk_management.account_size) if len(equity) else None
    if returns is None or not returns.any():
        return ["tearsheet skipped: the out-of-sample account never changed (no trades)"]
    symbol = cfg.strategy.symbol
    what = "SYNTHETIC DATA" if market.synthetic else Path(market.label).name
    tmp = path.with_name(f".{path.name}.part")
    try:
        write_tearsheet(returns, buy_and_hold(market.bars["close"], returns.index), tmp,
                        title=f"mtbt walk-forward {cfg.name}, out-of-sample: {symbol} ({what})",
                        benchmark_title=f"{symbol} buy & hold", strategy_title="out-of-sample")
    except Exception as exc:   # quantstats fails on some degenerate series
        tmp.unlink(missing_ok=True)
        log.exception("tearsheet failed")
        return [f"tearsheet failed ({type(exc).__name__}: {exc})"]
    os.replace(tmp, path)
    return []
