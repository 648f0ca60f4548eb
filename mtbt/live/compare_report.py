"""The readiness report's phase-3 figures, paper against backtest, with a verdict each, and
the text of ``mtbt compare`` (console, ``compare.md``, ``compare.csv``).

The figures (win rate, average PnL per trade, signals per week: trades entered per five
sessions) are compared as a relative difference ``(paper - backtest) / |backtest|``
against the tolerance. A band of 10% on a handful of trades is narrower than one trade:
``one_trade`` is how much a single trade moves the backtest's figure (a win turned into a
loss: ``1 / wins``; one trade more or less: ``1 / trades``; one trade's PnL off by a typical
trade's size: ``mean |pnl| / |total pnl|``). Where that is more than the tolerance the
verdict is **TOO FEW TRADES** whatever the difference, since no difference could be told
from one trade's luck; otherwise **MATCH** (within the tolerance) or **DIFFERS**.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analyzers.report import atomic_write
from mtbt.live.compare_trades import COLUMNS

MATCH, DIFFERS, TOO_FEW = "MATCH", "DIFFERS", "TOO FEW TRADES"
WEEK = 5             # sessions


@dataclass(frozen=True)
class Figure:
    """One phase-3 figure of both venues, its relative difference and verdict."""

    name: str
    paper: float
    backtest: float
    rel: float           # (paper - backtest) / |backtest|; inf where the backtest's is 0
    one_trade: float     # relative move of the backtest's figure by one trade
    verdict: str


def per_trade(trades: pd.DataFrame) -> pd.Series:
    """Net PnL per trade (a trade: one day's ``trade_id``; ``trades`` needs ``day``)."""
    if trades.empty:
        return pd.Series(dtype=float)
    return trades.groupby(["day", "trade_id"])["pnl"].sum().astype(float)


def figures(paper: pd.DataFrame, backtest: pd.DataFrame, days: int,
            tolerance: float) -> list[Figure]:
    """Win rate, average PnL per trade and signals per week of both venues' trades over
    ``days`` sessions (each frame: trades.csv rows plus ``day``)."""
    p, b = per_trade(paper), per_trade(backtest)
    wins_b, total_b = int((b > 0).sum()), float(b.sum())
    one = {
        "win rate": 1 / wins_b if wins_b else math.inf,
        "avg PnL per trade": (float(b.abs().mean()) / abs(total_b)) if total_b else math.inf,
        "signals per week": 1 / len(b) if len(b) else math.inf,
    }
    values = {name: (_value(name, p, days), _value(name, b, days)) for name in one}
    return [Figure(name, pv, bv, _rel(pv, bv), one[name],
                   verdict(_rel(pv, bv), one[name], tolerance))
            for name, (pv, bv) in values.items()]


def _value(name: str, pnl: pd.Series, days: int) -> float:
    if name == "signals per week":
        return len(pnl) / days * WEEK if days else 0.0
    if not len(pnl):
        return 0.0
    return float((pnl > 0).mean()) if name == "win rate" else float(pnl.mean())


def _rel(paper: float, backtest: float) -> float:
    if backtest == 0:
        return 0.0 if paper == 0 else math.inf
    return (paper - backtest) / abs(backtest)


def verdict(rel: float, one_trade: float, tolerance: float) -> str:
    """MATCH, DIFFERS or TOO FEW TRADES (module docstring)."""
    if one_trade > tolerance:
        return TOO_FEW
    return MATCH if abs(rel) <= tolerance + 1e-12 else DIFFERS


def overall(figs: list[Figure]) -> str:
    """DIFFERS if any figure differs, MATCH if all match, else TOO FEW TRADES."""
    verdicts = {f.verdict for f in figs}
    return DIFFERS if DIFFERS in verdicts else (MATCH if verdicts == {MATCH} else TOO_FEW)


# -- text ------------------------------------------------------------------------------------

def _pct(x: float, sign: bool = True) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:+.1%}" if sign else f"{x:.1%}"


def _show(name: str, x: float) -> str:
    if name == "win rate":
        return f"{x:.1%}"
    if name == "avg PnL per trade":
        return f"${x:,.2f}"
    return f"{x:.1f}"


def figure_lines(figs: list[Figure], tolerance: float, source: str) -> list[str]:
    """The figures as a markdown table (also readable on a console)."""
    lines = [f"| figure | paper | backtest | difference | one trade | verdict (±{tolerance:.0%}"
             f", {source}) |", "|---|---|---|---|---|---|"]
    for f in figs:
        lines.append(f"| {f.name} | {_show(f.name, f.paper)} | {_show(f.name, f.backtest)} | "
                     f"{_pct(f.rel)} | ±{_pct(f.one_trade, False)} | {f.verdict} |")
    return lines


def verdict_line(figs: list[Figure], tolerance: float) -> str:
    """One sentence: the overall verdict and why."""
    word = overall(figs)
    if word == MATCH:
        return f"verdict: MATCH: all three figures within ±{tolerance:.0%} of the backtest"
    if word == DIFFERS:
        names = ", ".join(f.name for f in figs if f.verdict == DIFFERS)
        return (f"verdict: DIFFERS: {names} outside ±{tolerance:.0%}; see the trades above "
                "for where paper and the backtest part")
    coarse = ", ".join(f"{f.name} ±{_pct(f.one_trade, False)}" for f in figs
                       if f.verdict == TOO_FEW)
    return (f"verdict: TOO FEW TRADES: one trade moves {coarse}, more than the ±"
            f"{tolerance:.0%} band, so the figures cannot be judged yet; judge the paper days "
            "by the trade table (every difference is listed) until there are more trades")


def trade_line(row: pd.Series) -> str:
    """A compare.csv row as one console line."""
    def t(x) -> str:
        return str(x)[11:16] if isinstance(x, str) else "--:--"

    tid = f"#{_id(row['paper_trade'])}/#{_id(row['backtest_trade'])}"
    head = f"  {row['status']:<7} {tid:<9} {row['side']:<5} {row['instrument']:<15}"
    if row["status"] != "matched":
        venue = "paper" if row["status"] == "extra" else "backtest"
        return (f"{head} {row[f'{venue}_exit_reason']:<9} {venue} only: entry "
                f"{t(row[f'{venue}_entry_time'])} {row[f'{venue}_entry_price']}, exit "
                f"{t(row[f'{venue}_exit_time'])} {row[f'{venue}_exit_price']}, qty "
                f"{row[f'{venue}_qty']}, pnl {row[f'{venue}_pnl']:+.2f}")
    reason = row["paper_exit_reason"]
    if reason != row["backtest_exit_reason"]:
        reason = f"{reason}/{row['backtest_exit_reason']}"
    return (f"{head} {reason:<9} entry {_fill(row, 'entry')}; exit {_fill(row, 'exit')}; "
            f"qty {row['paper_qty']}/{row['backtest_qty']}; slippage {row['slip_pnl']:+.2f} $, "
            f"pnl {row['paper_pnl']:+.2f} vs {row['backtest_pnl']:+.2f} "
            f"({row['pnl_diff']:+.2f})")


def _id(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else str(int(x))


def _fill(row: pd.Series, leg: str) -> str:
    p, b = row[f"paper_{leg}_time"], row[f"backtest_{leg}_time"]
    delay = row[f"{leg}_delay_s"]
    when = str(b)[11:16] + (f" ({delay:+.0f} s)" if delay else "")
    return (f"{when} {row[f'paper_{leg}_price']} vs {row[f'backtest_{leg}_price']} "
            f"({row[f'{leg}_slip']:+.4f} $, {row[f'{leg}_slip_bps']:+.1f} bps)"
            if p is not None else when)


def write_files(out: Path, rows: pd.DataFrame, text: list[str]) -> tuple[Path, Path]:
    """compare.csv (the trade rows) and compare.md (``text``), each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / "compare.csv", out / "compare.md"
    atomic_write(csv, rows.reindex(columns=list(COLUMNS)).to_csv(index=False))
    atomic_write(md, "\n".join(text) + "\n")
    return csv, md
