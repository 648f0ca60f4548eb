"""Alerts of one paper session: ``events_<SESSION>.jsonl`` and the webhook.

``AlertHub`` turns what happens in a session into events (``EVENTS``, the names are a
contract: ``mtbt dashboard`` reads the file). Every event, whether ``[alerts] events``
selects it or not, is appended and flushed as one JSON line when it happens::

    {"time": "2024-08-01T10:22:00-04:00", "event": "breaker_trip", "text": "...", ...}

``time`` is ISO 8601 New York time with its offset: the bar's time for the risk alerts, the
wall clock otherwise. The selected events also go to ``MTBT_ALERT_WEBHOOK``
(``alert_webhook.Webhook``: a queue and a worker thread, so nothing here waits on the
network). Where the events come from:

- ``breaker_trip`` / ``daily_limit``: the RiskManager's alerts (``strat.alerts``, with the
  bar's time), read after each bar by an analyzer and classified by their text;
- ``orphan_closed`` / ``order_rejected``: the broker's ``on_orphan`` / ``on_refused``
  callbacks (``mtbt.alpaca.reconcile`` and ``books``; ``AlpacaBroker._refuse``);
- ``stream_down`` / ``reconnect``: the store's stream hooks (``on_connect`` /
  ``on_disconnect``): a stream down ``[alerts] stream_down_seconds`` after it was up, and
  back after a drop;
- ``session_start`` / ``session_summary``: ``run_paper``.

No key is in any text: each one passes the session's secrets (the keys and the webhook URL)
through the same scrub as the log (``mtbt.live.logs.Redact``).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import backtrader as bt

from mtbt.config import ALERT_EVENTS, Alerts
from mtbt.live.alert_webhook import Webhook

EVENTS = ALERT_EVENTS
_TZ = ZoneInfo("America/New_York")
_RISK = (("max drawdown:", "breaker_trip"), ("daily loss limit:", "daily_limit"))
STREAMS = {"data_stream": "bars", "trade_stream": "trades"}

log = logging.getLogger("mtbt.live")


def events_path(folder: str | Path, session: str) -> Path:
    """The events file of ``session`` in ``folder``."""
    return Path(folder) / f"events_{session}.jsonl"


def risk_event(text: str) -> str | None:
    """The event of a RiskManager alert text (``mtbt.risk``), or None."""
    return next((event for prefix, event in _RISK if text.startswith(prefix)), None)


class AlertHub:
    """The events of one session (see the module docstring).

    Parameters
    ----------
    folder, session : where ``events_<SESSION>.jsonl`` goes.
    settings : ``[alerts]``: the events the webhook gets, ``stream_down_seconds``.
    symbol : named in each webhook text.
    secrets : texts never to write or send (the keys).
    webhook : the URL (``alert_webhook.webhook_url``), or None for the file only.
    """

    def __init__(self, folder: str | Path, session: str, settings: Alerts, *,
                 symbol: str = "", secrets: tuple[str, ...] = (),
                 webhook: str | None = None) -> None:
        self.path = events_path(folder, session)
        self.session, self.symbol, self.settings = session, symbol, settings
        self.secrets = tuple(s for s in (*secrets, webhook or "") if s)
        self.webhook = Webhook(webhook) if webhook else None
        self.emitted: list[dict] = []
        self.emit_seconds: list[float] = []     # time each ``emit`` took (never the network)
        self._lock = threading.Lock()
        self._file = None
        self._closed = False
        self._timers: dict[str, threading.Timer] = {}
        self._down: dict[str, float] = {}       # stream -> monotonic time it went down
        self._up: set[str] = set()              # streams connected at least once
        self._risk_seen: int | None = None      # strat.alerts already made events
        if self.webhook:
            host = urlsplit(webhook).hostname
            log.info("alerts: %s to the webhook at %s (MTBT_ALERT_WEBHOOK)",
                     ", ".join(settings.events) or "no event", host)
        else:
            log.info("alerts: no webhook (MTBT_ALERT_WEBHOOK unset): events go to %s only",
                     self.path.name)

    # -- events ----------------------------------------------------------------------------
    def emit(self, event: str, text: str, when: dt.datetime | None = None,
             **fields) -> dict:
        """Write one event (and queue it for the webhook when selected); the line written.
        ``when``: the bar's time (naive New York), default the wall clock."""
        started = time.monotonic()
        if event not in EVENTS:
            raise ValueError(f"unknown alert event {event!r}")
        stamp = (when.replace(tzinfo=_TZ) if when is not None and when.tzinfo is None
                 else (when or dt.datetime.now(_TZ)).astimezone(_TZ))
        line = {"time": stamp.isoformat(timespec="seconds"), "event": event,
                "text": self._scrub(" ".join(str(text).split()))}
        line |= {k: self._scrub(v) if isinstance(v, str) else v for k, v in fields.items()}
        with self._lock:
            try:
                if self._file is None:
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.write(json.dumps(line, default=str) + "\n")
                self._file.flush()
            except OSError as exc:           # a full disk never stops the session
                log.error("alerts: cannot write %s: %s", self.path, exc.strerror or exc)
            self.emitted.append(line)
            if self.webhook and event in self.settings.events and not self._closed:
                self.webhook.send(event, self._scrub(
                    f"mtbt {self.symbol} {stamp:%H:%M} {event}: {line['text']}"))
        self.emit_seconds.append(time.monotonic() - started)
        return line

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def started(self, cfg, day: dt.date, dry_run: bool = False) -> None:
        """``session_start``."""
        self.emit("session_start", f"session {self.session} started: {cfg.strategy.symbol} "
                  f"{day}, run {cfg.name} ({cfg.run_id}){', DRY RUN' if dry_run else ''}",
                  session=self.session, symbol=cfg.strategy.symbol, day=day.isoformat(),
                  run=cfg.name, run_id=cfg.run_id, dry_run=dry_run)

    def summary(self, summary: dict) -> None:
        """``session_summary`` from the session's summary.json figures."""
        pnl, rate = summary.get("total_pnl") or 0.0, summary.get("win_rate")
        risk = summary.get("risk") or {}
        text = (f"session {self.session} ended ({summary.get('stopped_by')}): "
                f"{summary.get('trades', 0)} trade(s), pnl {pnl:+,.2f}"
                + (f", win rate {rate:.0%}" if rate is not None else "")
                + f", {summary.get('orders_sent', 0)} order(s) sent"
                + (", breaker tripped" if risk.get("breaker_tripped") else "")
                + (", daily limit reached" if risk.get("halted_today") else "")
                + (f", {len(summary['orphans'])} orphan(s)" if summary.get("orphans") else "")
                + (f", {summary['open_trades']} trade(s) left open"
                   if summary.get("open_trades") else ""))
        self.emit("session_summary", text, session=self.session,
                  stopped_by=summary.get("stopped_by"), trades=summary.get("trades"),
                  total_pnl=summary.get("total_pnl"), win_rate=rate,
                  orders_sent=summary.get("orders_sent"),
                  open_trades=summary.get("open_trades"),
                  breaker_tripped=risk.get("breaker_tripped"),
                  halted_today=risk.get("halted_today"))

    def finish(self, strat, summary: dict) -> None:
        """The end: risk alerts the shutdown's fills raised, then ``session_summary``."""
        self.risk(strat)
        self.summary(summary)

    def risk(self, strat) -> None:
        """The strategy's new risk alerts (``strat.alerts``) as events with their bar's
        time; alerts a resumed checkpoint brought, older than the first trading bar, are
        not new."""
        if not strat.trading:
            return
        alerts = strat.alerts
        if self._risk_seen is None:          # the first trading bar
            now = strat.data.datetime.datetime(0)
            self._risk_seen = sum(1 for when, _ in alerts if when < now)
        for when, text in alerts[self._risk_seen:]:
            event = risk_event(text)
            if event is not None:
                self.emit(event, text, when)
        self._risk_seen = len(alerts)

    def failed(self, exc: BaseException) -> None:
        """``session_summary`` of a session an error ended (the error's one line)."""
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.emit("session_summary", f"session {self.session} ended by an error: {why}",
                  session=self.session, stopped_by=f"error: {why}")

    # -- sources ---------------------------------------------------------------------------
    def attach(self, cerebro: bt.Cerebro) -> None:
        """Read the strategy's risk alerts after each bar (add before the bar loop's
        analyzer, so the bar's time to order includes it)."""
        cerebro.addanalyzer(_RiskAlerts, _name="alerts", hub=self)

    def watch_broker(self, broker) -> None:
        """Order refusals and orphan legs, as the broker meets them."""
        broker.on_refused.append(self.refused)
        broker.on_orphan.append(self.orphan)

    def refused(self, client_order_id: str, why: str) -> None:
        self.emit("order_rejected", f"order {client_order_id} refused: {why}",
                  client_order_id=client_order_id)

    def orphan(self, symbol: str, what: str) -> None:
        self.emit("orphan_closed", f"orphan option leg {symbol}: {what}", symbol=symbol)

    def watch(self, store) -> None:
        """Both streams of ``store``: drops, outages, reconnects."""
        for attr, name in STREAMS.items():
            stream = getattr(store, attr)
            stream.on_connect.append(lambda name=name: self._connected(name))
            stream.on_disconnect.append(lambda name=name: self._disconnected(name))

    def _connected(self, name: str) -> None:
        with self._lock:
            if self._closed:
                return
            timer = self._timers.pop(name, None)
            went = self._down.pop(name, None)
            self._up.add(name)
        if timer is not None:
            timer.cancel()
        if went is not None:
            down = time.monotonic() - went
            self.emit("reconnect", f"{name} stream back after {down:.1f} s down",
                      stream=name, down_seconds=round(down, 1))

    def _disconnected(self, name: str) -> None:
        with self._lock:
            if self._closed or name not in self._up or name in self._down:
                return
            self._down[name] = time.monotonic()
            since = dt.datetime.now(_TZ)
            timer = threading.Timer(self.settings.stream_down_seconds, self._still_down,
                                    args=(name, self._down[name], since))
            timer.daemon = True
            self._timers[name] = timer
        timer.start()

    def _still_down(self, name: str, went: float, since: dt.datetime) -> None:
        with self._lock:
            if self._closed or self._down.get(name) != went:
                return
            self._timers.pop(name, None)
        self.emit("stream_down", f"{name} stream down for {time.monotonic() - went:.0f} s "
                  f"(since {since:%H:%M:%S})", stream=name,
                  down_since=since.isoformat(timespec="seconds"))

    # -- the end ---------------------------------------------------------------------------
    def close(self) -> list[str]:
        """Stop watching (the streams' own shutdown is no outage), let the webhook send what
        is queued (bounded), close the file; the events not sent."""
        with self._lock:
            self._closed = True
            timers = list(self._timers.values())
            self._timers.clear()
        for timer in timers:
            timer.cancel()
        unsent = self.webhook.close() if self.webhook else []
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        return unsent


class _RiskAlerts(bt.Analyzer):
    """After each bar: the strategy's new risk alerts as events (``AlertHub.risk``)."""

    params = (("hub", None),)

    def prenext(self) -> None:
        self.next()

    def next(self) -> None:
        self.p.hub.risk(self.strategy)
