"""Walk-forward: choose on each train window, trade the next test window, stitch the tests.

For each window every combination of the grid is backtested on the train sessions; the best
by the chosen metric (on those train results alone) is then backtested on the following test
sessions. The test window's backtest loads ``data.warmup_sessions`` earlier sessions (which
are train sessions) for its indicators only and trades inside the test window only; its
result never reaches any choice. The test windows' equity curves and trades, chained in
dollars, make one out-of-sample run with its own summary and tearsheet.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analyzers.summary import summarize
from feeds.loader import load_market_data
from mtbt._version import __version__
from mtbt.config import load_run
from mtbt.research.grid import Combination, combinations, load_grid
from mtbt.research.metrics import best
from mtbt.research.pool import Progress, RayPool
from mtbt.research.sweep import out_folder
from mtbt.research.tasks import Task, task_key
from mtbt.research.walkforward_report import write_report
from mtbt.research.windows import Window, make_windows, session_dates
from mtbt.sessions import NY


@dataclass(frozen=True)
class WindowResult:
    """One window: the combination chosen on its train sessions and both sets of figures."""

    window: Window
    chosen: Combination | None
    in_sample: dict[str, Any] | None
    out_of_sample: dict[str, Any] | None
    note: str = ""


@dataclass(frozen=True)
class WalkForwardResult:
    """The report folder, each window, and the stitched out-of-sample summary."""

    out: Path
    windows: list[WindowResult]
    summary: dict[str, Any]
    failed: list[str]


def choose(combos: Sequence[Combination], train: Sequence[dict], metric: str
           ) -> tuple[Combination | None, dict | None, str]:
    """The best combination by ``metric`` on its train results (``train[i]`` is
    ``combos[i]``'s); failed runs are left out, and when no run has a value of the metric
    the first that finished is taken. Returns (combination, its figures, a note)."""
    finished = [i for i, r in enumerate(train) if "metrics" in r]
    if not finished:
        return None, None, "every train run failed"
    pick = best([train[i]["metrics"].get(metric) for i in finished], metric)
    note = "" if pick is not None else f"no train run had a {metric}; took the first"
    i = finished[pick or 0]
    return combos[i], train[i]["metrics"], note


def run_walkforward(run: str | Path | None, grid_path: str | Path, *, train: int, test: int,
                    overrides: Sequence[str] = (), out: str | Path | None = None,
                    workers: int | None = None, address: str | None = None,
                    metric: str = "total_pnl", tearsheet: bool = True,
                    progress: Progress | None = None) -> WalkForwardResult:
    """Run the walk-forward and write its report into ``out`` (see the module docstring)."""
    combos = combinations(load_grid(grid_path), run, overrides)
    base = load_run(run, overrides)
    pool = RayPool(workers, address)
    market = load_market_data(base.data)
    windows = make_windows(session_dates(market), train, test)
    folder = out_folder("walkforward", base, out)
    trains = {(w.number, c.number): Task(
        task_key(c.cfg, market, w.train_first, w.train_last),
        f"window {w.number} train, combination {c.number} ({c.label})", c.params, c.cfg,
        w.train_first, w.train_last) for w in windows for c in combos}
    try:
        with pool:
            trained = pool.run(trains.values(), market, journal=folder / "train.jsonl",
                               progress=progress, phase="train windows")
            picks = {w.number: choose(combos, [trained.results[trains[w.number, c.number].key]
                                               for c in combos], metric) for w in windows}
            tests = oos_tasks(windows, picks, market)
            tested = pool.run(tests.values(), market, progress=progress, phase="test windows")
    except KeyboardInterrupt:
        print(f"walkforward: interrupted; finished train runs are kept in {folder}/train.jsonl"
              ", rerun the same command to go on", file=sys.stderr)
        raise
    records = {n: tested.results[t.key] for n, t in tests.items()}
    results = [_result(w, picks[w.number], records.get(w.number, {})) for w in windows]
    account = base.risk_management.account_size
    equity, trades = stitch(list(records.values()), account)
    summary = summarize(trades, equity, account, data=market.label, data_sha256=market.sha256,
                        version=__version__)
    settings = {"train": train, "test": test, "metric": metric, "combinations": len(combos)}
    write_report(folder, base, market, results, equity, trades, summary, settings,
                 tearsheet=tearsheet)
    return WalkForwardResult(folder, results, summary, trained.failed + tested.failed)


def oos_tasks(windows: Sequence[Window], picks: dict[int, tuple], market) -> dict[int, Task]:
    """Each window's test backtest with the combination chosen on its train window."""
    return {w.number: Task(task_key(chosen.cfg, market, w.test_first, w.test_last),
                           f"window {w.number} test ({chosen.label})", chosen.params,
                           chosen.cfg, w.test_first, w.test_last, detail=True)
            for w in windows if (chosen := picks[w.number][0]) is not None}


def _result(window: Window, pick: tuple, record: dict) -> WindowResult:
    chosen, in_sample, note = pick
    note = "; ".join(filter(None, [note, record.get("error", "")]))
    return WindowResult(window, chosen, in_sample, record.get("metrics"), note)


def stitch(records: Sequence[dict], start_equity: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Chain the test windows (in order) into one curve and one trade list: each window
    restarts at ``start_equity``, so its curve is shifted by the PnL of the windows before it;
    trade ids are renumbered to stay unique."""
    curves, trade_lists, offset, ids = [], [], 0.0, 0
    for record in records:
        if "equity" not in record:
            continue
        curve = record["equity"].copy()
        curve.index = pd.to_datetime(curve.index, utc=True).tz_convert(NY)
        curves.append(curve[["cash", "equity"]] + offset)
        if len(curve):
            offset += float(curve["equity"].iloc[-1]) - start_equity
        trades = record["trades"].copy()
        trades["trade_id"] += ids
        ids = int(trades["trade_id"].max()) if len(trades) else ids
        trade_lists.append(trades)
    equity = pd.concat(curves) if curves else pd.DataFrame(
        {"cash": [], "equity": []}, index=pd.DatetimeIndex([], tz=NY, name="timestamp"))
    equity.index.name = "timestamp"
    trades = pd.concat(trade_lists, ignore_index=True) if trade_lists else pd.DataFrame()
    return equity, trades
