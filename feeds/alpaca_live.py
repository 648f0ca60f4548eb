"""``AlpacaData``: 1-minute bars of one symbol from Alpaca, history first, then live.

The feed has the same lines as ``feeds.arrays.BarFeed`` (OHLCV and ``vix``, the prior
session's VIX close) and the same clock (naive New York time of the bar's start), so every
indicator and strategy runs on it unchanged. It:

1. backfills the regular-session bars from ``history_start`` through Alpaca's bar REST API and
   reports ``DELAYED`` while the strategy replays them (a strategy does not trade then);
2. streams bars from Alpaca's bar websocket and reports ``LIVE``;
3. on a dropped stream reports ``CONNBROKEN``; after the reconnect, or after any gap or
   silence, it fetches the missing minutes over REST (``DELAYED``) before going ``LIVE``
   again. Each bar reaches the strategy once, in time order.

It ends after the last bar of its session (or when ``stop`` is set). It only delivers bars:
the session acts on each one after the strategy has (``mtbt.live.loop.BarLoop``), on every
bar ``handled_bar_due`` names.
"""
from __future__ import annotations

import datetime as dt
import heapq
import logging
import queue
import threading
import time
import warnings
from zoneinfo import ZoneInfo

import backtrader as bt
import pandas as pd

from feeds.vix import vix_asof
from mtbt.sessions import NY

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

log = logging.getLogger("mtbt.live")
_MINUTE = dt.timedelta(minutes=1)
_NY = ZoneInfo(NY)
_Bar = tuple  # (naive NY start, open, high, low, close, volume, stream arrival or None)


def _naive_ny(when) -> dt.datetime:
    """An aware time as naive New York wall-clock time (backtrader's clock)."""
    if type(when) is dt.datetime and when.tzinfo is not None:   # alpaca-py's: fast
        return when.astimezone(_NY).replace(tzinfo=None)
    return pd.Timestamp(when).tz_convert(NY).tz_localize(None).to_pydatetime()


class AlpacaData(bt.feed.DataBase):
    """Alpaca bars for backtrader (see the module docstring).

    Params:
      - ``store``: the ``AlpacaStore``
      - ``symbol``: the ticker
      - ``session``: the ``Session`` to trade (the feed ends after its last bar)
      - ``sessions``: ``{date: Session}`` from ``history_start`` on (regular hours)
      - ``history_start``: the first date to backfill
      - ``vix``: daily VIX closes (``feeds.parquet.read_daily`` form)
      - ``stall``: seconds without a bar, once one is due, before asking REST for it
      - ``stop``: a ``threading.Event`` that ends the feed
    """

    lines = ("vix",)
    params = (("store", None), ("symbol", "SPY"), ("session", None), ("sessions", None),
              ("history_start", None), ("vix", None), ("stall", 90.0), ("stop", None))

    def islive(self) -> bool:
        return True

    @property
    def live(self) -> bool:
        """Whether the first streamed bar has been delivered."""
        return self._went_live

    def handled_bar_due(self) -> bool:
        """Whether the session acts on the bar just delivered: the last bar of the history,
        and every bar after it, streamed or fetched over REST (the first bar after the
        history may come over REST when the stream drops as it starts)."""
        if self._went_live or self._ready_sent:
            return True
        if self._history or self._pending:
            return False
        self._ready_sent = True
        return True

    def start(self) -> None:
        super().start()
        self._queue: queue.Queue = queue.Queue()
        self._pending: dict[dt.datetime, _Bar] = {}     # by start; ``_starts``: their heap
        self._starts: list[dt.datetime] = []
        self._last_bar: dt.datetime | None = None
        self._history = True
        self._went_live = self._ready_sent = False
        self._resync = threading.Event()
        self._broken = threading.Event()
        self._vix_cache: dict[dt.date, float] = {}
        self._stop = self.p.stop or threading.Event()
        self._end = self.p.session.close - _MINUTE       # start of the session's last bar
        self._waiting_since = time.monotonic()
        self.bars_live = self.bars_recovered = 0   # streamed; fetched over REST after a gap
        self.last_arrival: float | None = None   # monotonic arrival of the bar being handled
        stream = self.p.store.data_stream
        stream.subscribe_bars(self._on_bar, self.p.symbol)
        stream.on_connect.append(self._resync.set)
        stream.on_disconnect.append(self._broken.set)
        self.p.store.start_stream(stream)
        self.put_notification(self.DELAYED)

    async def _on_bar(self, bar) -> None:
        self._queue.put((bar.timestamp, bar.open, bar.high, bar.low, bar.close, bar.volume,
                         time.monotonic()))

    # -- backtrader's pull -----------------------------------------------------------------
    def _load(self) -> bool:
        if self._history:
            self._backfill(dt.datetime.combine(self.p.history_start, dt.time(0)))
            self._history = False
        while not self._stop.is_set():
            if self._last_bar is not None and self._last_bar >= self._end:
                return False
            bar = self._next_bar()
            if bar is not None:
                self._deliver(bar)
                return True
        return False

    def _next_bar(self) -> _Bar | None:
        """The next bar in time order, after a short wait; None when none is there yet."""
        self._drain(timeout=0.05 if not self._pending else 0)
        if self._broken.is_set():
            self._broken.clear()
            self.put_notification(self.CONNBROKEN)
            log.warning("bar stream dropped after %s", self._last_bar)
        if self._resync.is_set():
            self._resync.clear()
            if self._last_bar is not None and self._went_live:
                self._backfill(self._last_bar + _MINUTE)
        if self._pending:
            first = self._starts[0]
            if self._last_bar is not None and self._went_live and self._gap(first):
                self._backfill(self._last_bar + _MINUTE, first)
            return self._pending.pop(heapq.heappop(self._starts))
        due = time.monotonic() - self._waiting_since > self.p.stall
        if due and self._last_bar is not None:
            log.warning("no bar for %.0f s after %s: asking REST", self.p.stall, self._last_bar)
            self._waiting_since = time.monotonic()
            self._backfill(self._last_bar + _MINUTE)
        return None

    def _gap(self, first: dt.datetime) -> bool:
        """Whether minutes are missing between the last bar and ``first`` (same session)."""
        return first - self._last_bar > _MINUTE and first.date() == self._last_bar.date()

    def _drain(self, timeout: float) -> None:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            start = _naive_ny(item[0])
            if self._wanted(start):
                self._add((start, *map(float, item[1:6]), item[6]))
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return

    def _add(self, bar: _Bar) -> None:
        """Hold ``bar`` until its turn (a streamed one replaces a fetched one)."""
        if bar[0] not in self._pending:
            heapq.heappush(self._starts, bar[0])
        self._pending[bar[0]] = bar

    def _wanted(self, start: dt.datetime) -> bool:
        if self._last_bar is not None and start <= self._last_bar:
            return False                                  # already delivered: once only
        session = self.p.sessions.get(start.date())
        return session is not None and session.open <= start < session.close

    def _deliver(self, bar: _Bar) -> None:
        start, o, h, low, c, v, arrival = bar
        streamed = arrival is not None
        self.last_arrival = arrival
        if streamed and self._laststatus != self.LIVE:
            self._went_live = True
            self.put_notification(self.LIVE)
        elif not streamed and self._laststatus == self.LIVE:
            self.put_notification(self.DELAYED)
        lines = self.lines
        lines.datetime[0] = bt.date2num(start)
        lines.open[0], lines.high[0], lines.low[0], lines.close[0] = o, h, low, c
        lines.volume[0], lines.openinterest[0] = v, 0.0
        lines.vix[0] = self._vix(start.date())
        self._last_bar = start
        self._waiting_since = time.monotonic()
        if self._laststatus == self.LIVE:
            self.bars_live += 1

    def _vix(self, day: dt.date) -> float:
        if day not in self._vix_cache:
            index = pd.DatetimeIndex([pd.Timestamp(day).tz_localize(NY)])
            self._vix_cache[day] = float(vix_asof(index, self.p.vix)[0])
        return self._vix_cache[day]

    # -- REST ------------------------------------------------------------------------------
    def _backfill(self, start: dt.datetime, end: dt.datetime | None = None) -> None:
        """Fetch the bars from ``start`` (naive NY) up to ``end`` (or now) over REST."""
        request = StockBarsRequest(symbol_or_symbols=self.p.symbol, timeframe=TimeFrame.Minute,
                                   start=pd.Timestamp(start).tz_localize(NY).to_pydatetime(),
                                   end=None if end is None else
                                   pd.Timestamp(end).tz_localize(NY).to_pydatetime())
        bars = self.p.store.data_client.get_stock_bars(request).data.get(self.p.symbol, [])
        added = 0
        for bar in bars:
            begin = _naive_ny(bar.timestamp)
            if (end is None or begin < end) and self._wanted(begin) and begin not in \
                    self._pending:
                self._add((begin, float(bar.open), float(bar.high), float(bar.low),
                           float(bar.close), float(bar.volume), None))
                added += 1
        if added and not self._history:
            self.bars_recovered += added
            log.info("backfilled %d bar(s) from %s", added, start)
