"""``status_<SESSION>.json``: where a paper session stands, rewritten after every live bar.

``SessionStatus`` writes the file at the session's start (``state`` "starting"), after every
live bar once that bar's orders are sent (``BarLoop``: "running") and at the end ("ended",
with why, or "failed" with the one-line error). Each write goes through a temporary file
and a rename (``analyzers.report.atomic_write``), so a reader (``mtbt dashboard``) never sees
half a file. It holds:

- ``bar_time``: the close of the last handled bar (ISO 8601 New York, with its offset);
- ``account``: equity, cash, the day's and the run's realised PnL; ``risk``: the day's halt,
  the drawdown breaker, the drawdown;
- ``open_trades``: each lot's side, size, stage, entry, stop and target (on the underlying
  for the scaling exits, on the premium per share for a condor's credit rules);
- ``working_orders``: the client ids of the orders still working at Alpaca;
- ``regime``: the regime with its VIX and ATR%;
- ``streams``: per stream (``bars``, ``trades``) connected or not, down since when, connects;
- ``latency_ms``: bar arrival to order sent, and to the bar handled, so far (n, p50, p99, max);
- at the end ``stopped_by`` and a few figures of the summary.

Nothing in it is a key: every field is built here from numbers and labels.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from analyzers.report import atomic_write
from mtbt import exits
from mtbt.exits import Lot
from mtbt.sessions import NY

_TZ = ZoneInfo(NY)

log = logging.getLogger("mtbt.live")
FORMAT = 1


def status_path(folder: str | Path, session: str) -> Path:
    """The status file of ``session`` in ``folder``."""
    return Path(folder) / f"status_{session}.json"


def latency_ms(seconds: list[float]) -> dict:
    """n, p50, p99 and max of durations, in milliseconds."""
    if not seconds:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    ms = np.asarray(seconds, dtype="float64") * 1000      # (written after every bar: numpy,
    p50, p99 = np.percentile(ms, [50, 99])                 # pandas' quantile took 5 ms)
    return {"n": len(ms), "p50": round(float(p50), 3), "p99": round(float(p99), 3),
            "max": round(float(ms.max()), 3)}


def _now() -> str:
    return dt.datetime.now(_TZ).isoformat(timespec="seconds")


def _num(value, digits: int = 2) -> float | None:
    """A finite float rounded, or None (NaN, None, infinities)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return round(value, digits) if math.isfinite(value) else None


class StreamWatch:
    """Connected or not, down since when, and how many connects, of one alpaca-py stream
    (``mtbt.alpaca.store``'s ``on_connect``/``on_disconnect`` hooks, called from the
    stream's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connects = 0
        self.connected = False
        self.down_since: str | None = None
        self.since: str | None = None        # the last change, either way

    def attach(self, stream) -> None:
        stream.on_connect.append(self.up)
        stream.on_disconnect.append(self.down)

    def up(self) -> None:
        with self._lock:
            self.connects += 1
            self.connected, self.down_since, self.since = True, None, _now()

    def down(self) -> None:
        with self._lock:
            if self.connected:
                self.connected, self.down_since = False, _now()
                self.since = self.down_since

    def as_dict(self) -> dict:
        with self._lock:
            state = ("connected" if self.connected else
                     "down" if self.down_since else "connecting")
            return {"state": state, "connected": self.connected,
                    "down_since": self.down_since, "since": self.since,
                    "connects": self.connects}


def lot_view(strat, lot: Lot, close: float | None) -> dict:
    """One open trade as the dashboard shows it: stage, entry, stop and target."""
    structure = lot.structure
    view = {"trade_id": lot.trade_id, "side": "long" if lot.side > 0 else "short",
            "instrument": getattr(structure, "name", None) or "shares",
            "label": getattr(structure, "label", None) or "",
            "qty": lot.qty, "remaining": lot.remaining,
            "stage": lot.stage.value, "entry_price": _num(lot.entry_price),
            "entry_time": (pd.Timestamp(lot.entry_time).tz_localize(NY).isoformat()
                           if lot.entry_time is not None else None),
            "premium": _num(lot.premium), "levels_on": "underlying", "stop": None,
            "stop_reason": None, "target": None, "target_reason": None,
            "last": _num(close), "mark": None}
    p = strat.p
    credit_rules = (structure is not None and hasattr(p, "profit_target")
                    and hasattr(p, "stop_loss"))
    if credit_rules and math.isfinite(lot.premium) and lot.premium < 0:
        # the condor's rules on the premium per share (fees aside): closing costs the
        # credit less profit_target of it, or stop_loss times the credit more
        view |= {"levels_on": "premium", "stop": _num(lot.premium * (1 + p.stop_loss)),
                 "stop_reason": "stop_loss",
                 "target": _num(lot.premium * (1 - p.profit_target)),
                 "target_reason": "profit_target"}
    elif lot.stage.value in ("open", "scaled"):
        for order in exits.exit_orders(strat.rules, lot):
            key = "stop" if order.kind == "stop" else "target"
            view |= {key: _num(order.price), f"{key}_reason": order.reason}
    if structure is not None:
        view["mark"] = _num(getattr(lot.position, "mark", None))
    return view


def regime_view(strat) -> dict:
    """The strategy's regime on the last bar, with its VIX and ATR%."""
    indicator = getattr(strat, "regime", None)
    if indicator is None:
        return {"name": None, "vix": None, "atr_pct": None}
    return {"name": strat.regime_name(), "vix": _num(indicator.vix[0]),
            "atr_pct": _num(indicator.atr_pct[0], 3)}


class SessionStatus:
    """Writer of one session's status file (see the module docstring)."""

    def __init__(self, folder: str | Path, session: str, *, symbol: str, run: str,
                 run_id: str, dry_run: bool = False) -> None:
        self.path = status_path(folder, session)
        self.streams = {"bars": StreamWatch(), "trades": StreamWatch()}
        self._body: dict = {"format": FORMAT, "session": session, "symbol": symbol,
                            "run": run, "run_id": run_id, "dry_run": dry_run,
                            "state": "starting", "started": _now(), "updated": None,
                            "bar_time": None, "bars": 0}
        self._failed_write = False
        self._write()

    def watch(self, store) -> None:
        """Follow the store's two streams (call before they start)."""
        self.streams["bars"].attach(store.data_stream)
        self.streams["trades"].attach(store.trade_stream)

    def bar(self, when: dt.datetime, strat, broker, data, bar_seconds: list[float]) -> None:
        """After a live bar's orders are sent: the whole picture at ``when`` (the bar's
        close, naive New York time)."""
        risk = strat.risk
        close = _num(data.close[0])
        self._body |= {
            "state": "running", "bar_time": pd.Timestamp(when).tz_localize(NY).isoformat(),
            "bars": self._body["bars"] + 1,
            "account": {"equity": _num(broker.getvalue()), "cash": _num(broker.getcash()),
                        "day_pnl": _num(risk.day_pnl), "realized_pnl": _num(risk.realized)},
            "risk": {"halted_today": bool(risk.halted_today), "paused": bool(risk.paused),
                     "breaker_tripped": bool(risk.tripped), "breaker_trips": int(risk.trips),
                     "drawdown": _num(risk.drawdown)},
            "last_price": close,
            "open_trades": [lot_view(strat, lot, close) for lot in strat.open_lots()],
            "working_orders": list(broker.working_orders()),
            "regime": regime_view(strat),
            "bars_streamed": int(data.bars_live), "bars_recovered": int(data.bars_recovered),
            "latency_ms": self._latency(broker, bar_seconds)}
        self._write()

    def finish(self, stopped_by: str, summary: dict, strat, broker,
               bar_seconds: list[float]) -> None:
        """The session's end: why, its figures and what stayed open."""
        self._body |= {
            "state": "ended", "stopped_by": stopped_by,
            "open_trades": [lot_view(strat, lot, self._body.get("last_price"))
                            for lot in strat.open_lots()],
            "working_orders": list(broker.working_orders()),
            "latency_ms": self._latency(broker, bar_seconds),
            "summary": {key: summary.get(key) for key in
                        ("trades", "wins", "win_rate", "total_pnl", "max_drawdown",
                         "final_equity", "orders_sent", "open_trades")}}
        self._write()

    def fail(self, exc: BaseException) -> None:
        """The session ended on an error (its one-line text)."""
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self._body |= {"state": "failed", "stopped_by": f"{type(exc).__name__}: {text}"}
        self._write()

    @staticmethod
    def _latency(broker, bar_seconds: list[float]) -> dict:
        return {"bar_to_order": latency_ms([s for _, s in broker.order_latency]),
                "bar_handled": latency_ms(bar_seconds)}

    def _write(self) -> None:
        self._body["updated"] = _now()
        self._body["streams"] = {name: w.as_dict() for name, w in self.streams.items()}
        try:
            atomic_write(self.path, json.dumps(self._body, indent=1) + "\n")
        except OSError as exc:           # the dashboard's file never stops the trading
            if not self._failed_write:
                log.warning("status file %s not written: %s", self.path, exc)
            self._failed_write = True
