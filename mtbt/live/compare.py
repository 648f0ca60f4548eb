"""``mtbt compare``: paper days against backtests of exactly the bars they traded on.

For each of the last ``days`` trading days in a paper log dir, the day's last session's
record (``mtbt.live.record``: its bars, VIX closes and run file; after a restart the last
session's trades file holds the whole day) is backtested with the session's own run,
trading only that day after the recorded warm-up sessions, as the paper trader did. The
paper trades and the backtest's are then paired trade by trade (``compare_trades``) and the
phase-3 figures put side by side (``compare_report``).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analyzers.report import report_files
from mtbt.errors import DataError
from mtbt.live.compare_report import (
    Figure,
    figure_lines,
    figures,
    trade_line,
    verdict_line,
    write_files,
)
from mtbt.live.compare_trades import compare_day
from mtbt.live.record import Recorded, read_record
from mtbt.runner import chain_model, run_backtest

log = logging.getLogger("mtbt")
PLANNED_DAYS = 10          # the readiness report's paper phase: two weeks
_SESSION = re.compile(r"PAPER_\d{8}_\d{6}")


@dataclass(frozen=True)
class PaperDay:
    """One traded day: its sessions (in order) and the last one's record."""

    day: dt.date
    sessions: tuple[str, ...]
    record: Recorded


@dataclass
class Comparison:
    """What ``compare`` found: the trade rows, the figures and the text it printed."""

    days: list[PaperDay]
    rows: pd.DataFrame
    figures: list[Figure]
    tolerance: float
    text: list[str] = field(default_factory=list)
    files: tuple[Path, ...] = ()


def paper_days(folder: str | Path, days: int | None = None) -> tuple[list[PaperDay], list[str]]:
    """The last ``days`` trading days of the sessions in ``folder`` (all with None), and
    notes on sessions left out. ``DataError`` (one line, naming the file) for a folder
    without sessions, or a day whose last session has no record."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    names = sorted({m.group(0) for pattern in ("paper_trading_PAPER_*.log",
                                               "record_PAPER_*.json")
                    for p in folder.glob(pattern) if (m := _SESSION.search(p.name))})
    if not names:
        raise DataError(f"{folder}: no paper sessions here (paper_trading_PAPER_*.log)")
    by_day: dict[dt.date, list[str]] = {}
    notes: list[str] = []
    for name in names:
        day, dry = _session_day(folder, name)
        if day is None:
            notes.append(f"session {name} never reached a bar: left out")
        elif dry:
            notes.append(f"session {name} ({day}) was a dry run: left out")
        else:
            by_day.setdefault(day, []).append(name)
    if not by_day:
        raise DataError(f"{folder}: no paper session here traded a bar "
                        f"({len(names)} session(s) found)")
    chosen = sorted(by_day)[-days:] if days else sorted(by_day)
    return [PaperDay(d, tuple(by_day[d]), read_record(folder, by_day[d][-1]))
            for d in chosen], notes


def _session_day(folder: Path, name: str) -> tuple[dt.date | None, bool]:
    """The day a session traded (its record, else its first balance row) and whether it
    was a dry run (recorded sessions only)."""
    record = folder / f"record_{name}.json"
    if record.is_file():
        try:
            manifest = json.loads(record.read_text(encoding="utf-8"))
            return dt.date.fromisoformat(manifest["day"]), bool(manifest.get("dry_run"))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{record}: not a session record ({exc})") from None
    balance = folder / f"balance_progression_{name}.csv"
    try:
        first = pd.read_csv(balance, nrows=1, usecols=["time"])
    except (OSError, ValueError):
        return None, False
    return (dt.date.fromisoformat(str(first["time"].iloc[0])[:10]) if len(first) else None,
            False)


def paper_trades(paper: PaperDay) -> pd.DataFrame:
    """The day's paper trades: the last session's trades file."""
    rec = paper.record
    path = rec.bars.with_name(f"trades_{rec.session}.csv")
    if not path.is_file():
        raise DataError(f"{path}: not found (the trades of session {rec.session})")
    try:
        return pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable trades file "
                        f"({' '.join(str(exc).split())[:120]})") from None


def backtest_day(paper: PaperDay, out: Path) -> pd.DataFrame:
    """Backtest the recorded bars of ``paper``'s last session with its run, trading only
    its day; the reports go to ``out``; its trades."""
    rec, m = paper.record, paper.record.manifest
    day = paper.day.isoformat()
    overrides = [f"data.bars={json.dumps(str(rec.bars))}",
                 f"data.vix={json.dumps(str(rec.vix))}", 'data.bar_label="start"',
                 f"data.start={day}", f"data.end={day}",
                 f"data.warmup_sessions={int(m['sessions_before'])}"]
    cfg = rec.run(overrides)
    out.mkdir(parents=True, exist_ok=True)
    for old in report_files(out):           # an earlier compare's backtest of the day
        old.unlink()
    run_backtest(cfg, out_dir=out, tearsheet=False)
    return pd.read_csv(out / "trades.csv")


def compare(folder: str | Path, *, days: int | None = PLANNED_DAYS, out: str | Path | None = None,
            tolerance: float | None = None) -> Comparison:
    """Compare the last ``days`` paper days in ``folder`` with their backtests, write
    compare.md and compare.csv into ``out`` (default: ``folder``) and return it all.
    ``tolerance``: default the last session's run's ``[benchmark] tolerance``."""
    found, notes = paper_days(folder, days)
    out = Path(out) if out is not None else Path(folder)
    last_run = found[-1].record.run()
    tol = last_run.benchmark.tolerance if tolerance is None else tolerance
    source = "[benchmark] tolerance" if tolerance is None else "--tolerance"
    rows, paper_all, bt_all, text = [], [], [], []
    for paper in found:
        paper_rows = paper_trades(paper)
        bt_rows = backtest_day(paper, out / f"backtest_{paper.day}")
        multiplier = chain_model(paper.record.run()).multiplier
        day_rows = compare_day(paper.day, paper_rows, bt_rows, multiplier)
        rows.append(day_rows)
        paper_all.append(paper_rows.assign(day=paper.day))
        bt_all.append(bt_rows.assign(day=paper.day))
        text += _day_text(paper, day_rows, out / f"backtest_{paper.day}")
    table = pd.concat(rows, ignore_index=True)
    figs = figures(pd.concat(paper_all), pd.concat(bt_all), len(found), tol)
    head = [f"# Paper vs backtest: {len(found)} day(s) of {Path(folder)}", "",
            f"{len(found)} of the {PLANNED_DAYS} paper days the readiness report plans "
            f"({found[0].day} to {found[-1].day}); run {last_run.name} ({last_run.run_id}); "
            "slippage is paper minus backtest, positive = worse for paper.", ""]
    head += [f"- {note}" for note in notes] + ([""] if notes else [])
    text = head + text + ["## Phase-3 figures", ""] + figure_lines(figs, tol, source) + \
        ["", verdict_line(figs, tol)]
    files = write_files(out, table, text)
    return Comparison(found, table, figs, tol, text, files)


def _day_text(paper: PaperDay, rows: pd.DataFrame, folder: Path) -> list[str]:
    """A day's heading, its notes and one line per exit fill."""
    m = paper.record.manifest
    lines = [f"## {paper.day}: session {paper.record.session} ({m['stopped_by']}), "
             f"backtest in {folder}", ""]
    if len(paper.sessions) > 1:
        lines.append(f"- restarted: sessions {', '.join(paper.sessions)}; compared on the "
                     "last one's record (its trades file holds the whole day)")
    if not m.get("complete", True):
        lines.append(f"- the session stopped before the close (last bar {m['last_bar']}): "
                     "the backtest ran on the bars up to then; exits paper made when it "
                     "stopped have no counterpart")
    resumed = m.get("resumed") or {}
    if resumed and not resumed.get("same_day") and (
            resumed.get("paused") or resumed.get("tripped") or resumed.get("edge_samples")):
        lines.append("- the session resumed the run's counters from an earlier day (breaker "
                     f"paused {resumed.get('paused')}, {resumed.get('edge_samples')} edge "
                     "samples); the backtest starts the day afresh, so it may enter where "
                     "paper could not, or choose otherwise")
    counts = rows["status"].value_counts()
    same = int(((rows["status"] == "matched") &
                (rows[["entry_slip", "exit_slip", "entry_delay_s", "exit_delay_s",
                       "pnl_diff"]].abs().sum(axis=1) == 0)).sum())
    lines.append(f"- {len(rows)} exit fill(s): {counts.get('matched', 0)} matched "
                 f"({same} identical), {counts.get('missed', 0)} missed (backtest only), "
                 f"{counts.get('extra', 0)} extra (paper only); slippage "
                 f"{rows['slip_pnl'].fillna(0).sum() + 0.0:+,.2f} $, PnL difference "
                 f"{rows['pnl_diff'].sum():+,.2f} $")
    lines += ["", "```"] + [trade_line(r) for _, r in rows.iterrows()] + ["```", ""]
    return lines
