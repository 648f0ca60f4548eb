"""One backtest of a sweep or walk-forward: what a Ray worker runs (plain Python, no Ray here).

The worker gets the bars from Ray's object store (a :class:`~feeds.loader.MarketData` put
there once by the driver), runs :func:`mtbt.runner.run_backtest` on them into a temporary
folder and sends back the summary figures, and for a walk-forward test window its trades
and equity curve as well. Any exception becomes an ``error`` in the result, so one failed
combination never stops the others.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from feeds.loader import MarketData
from mtbt.config import RunConfig
from mtbt.research.metrics import pick
from mtbt.research.windows import cut


@dataclass(frozen=True)
class Task:
    """A backtest of ``cfg`` (on ``first`` to ``last`` when given, else on all the bars).

    ``key`` identifies its result (the same settings on the same bytes and sessions give the
    same key); ``label`` and ``params`` say what it is; ``detail`` asks for trades and equity.
    """

    key: str
    label: str
    params: dict[str, Any]
    cfg: RunConfig
    first: dt.date | None = None
    last: dt.date | None = None
    detail: bool = False


def task_key(cfg: RunConfig, market: MarketData, first: dt.date | None = None,
             last: dt.date | None = None) -> str:
    """A hash of the run's settings, the data's bytes and the sessions traded."""
    text = json.dumps([cfg.run_id, market.sha256, str(first), str(last)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_task(task: Task, market: MarketData) -> dict[str, Any]:
    """Run ``task`` on ``market``; returns ``metrics`` and ``seconds`` (plus ``trades`` and
    ``equity`` frames when ``task.detail``), or ``error`` (one line) when it failed."""
    import mtbt  # noqa: F401  (applies the backtrader fixes in a fresh worker)
    from mtbt.runner import run_backtest

    started = time.perf_counter()
    try:
        if task.first is not None:
            market = cut(market, task.first, task.last, task.cfg.data.warmup_sessions)
        with tempfile.TemporaryDirectory(prefix="mtbt-task-") as tmp:
            result = run_backtest(task.cfg, out_dir=Path(tmp), tearsheet=False, market=market)
            out: dict[str, Any] = {"metrics": pick(result.summary)}
            if task.detail:
                out["trades"] = pd.read_csv(Path(tmp) / "trades.csv")
                out["equity"] = pd.read_csv(Path(tmp) / "equity.csv", index_col="timestamp")
    except Exception as exc:    # reported with the task's parameters; the others go on
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0],
                "seconds": round(time.perf_counter() - started, 2)}
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out
