"""AlpacaStore: the alpaca-py clients of one paper-trading session (backtrader's store role).

It owns ``TradingClient(paper=True)``, the ``trade_updates`` stream, the stock and option
data clients and the stock bar stream, and hands out the broker (``getbroker``) and the data
feed (``getdata``). It refuses to start unless every endpoint passes the paper-only guard
(``endpoints``). Keys are never printed or logged. Every REST call gets a timeout and
retries (``mtbt.http``).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable

import msgpack

from feeds.alpaca_live import AlpacaData
from mtbt.alpaca.broker import AlpacaBroker
from mtbt.alpaca.endpoints import Endpoints, keys_from_env
from mtbt.errors import ConfigError
from mtbt.http import ResilientSession, harden
from mtbt.sessions import Session

with warnings.catch_warnings():     # alpaca-py 0.44 imports websockets.legacy
    warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
    from alpaca.data.historical import OptionHistoricalDataClient, StockHistoricalDataClient
    from alpaca.data.live import StockDataStream
    from alpaca.data.live.websocket import _CHANNEL_TYPES, _is_market_data
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import GetCalendarRequest
    from alpaca.trading.stream import TradingStream

log = logging.getLogger("mtbt.live")
_STOP_CHECK = 0.2     # s: how often a quiet stream looks for a stop (alpaca-py: 5 s)


class _Hooks:
    """What the two stream subclasses share: connection callbacks and the stop check."""

    def _hook_init(self) -> None:
        self.on_connect: list[Callable[[], None]] = []
        self.on_disconnect: list[Callable[[], None]] = []
        self.connects = 0

    async def _stopped(self) -> bool:
        """Whether a stop was asked (the connection is then closed): both ``_consume``."""
        if self._stop_stream_queue.empty():
            return False
        self._stop_stream_queue.get(timeout=1)
        await self.close()
        return True

    def _connected(self) -> None:
        self.connects += 1
        for callback in self.on_connect:
            callback()

    async def close(self) -> None:
        was = getattr(self, "_ws", None) is not None
        await super().close()
        if was:
            for callback in self.on_disconnect:
                callback()


class _TradeStream(_Hooks, TradingStream):
    """``TradingStream`` that says when it has (re)connected and listens again."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._hook_init()

    async def _start_ws(self) -> None:
        await super()._start_ws()
        self._connected()

    async def _consume(self) -> None:
        """alpaca-py 0.44's, but a quiet connection is checked for a stop every
        ``_STOP_CHECK`` s, not every 5 s: stopping took up to 5 s, at the end of every
        session (cancelling ``recv`` loses no message)."""
        while not await self._stopped():
            try:
                raw = await asyncio.wait_for(self._ws.recv(), _STOP_CHECK)
            except TimeoutError:
                continue
            msg = json.loads(raw)
            if msg.get("stream") == "trade_updates":
                self._data_received = True
            await self._dispatch(msg)


class _BarStream(_Hooks, StockDataStream):
    """``StockDataStream`` that says when it has (re)connected and subscribed again."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._hook_init()

    async def _send_subscribe_msg(self) -> None:
        await super()._send_subscribe_msg()
        self._connected()

    async def _consume(self) -> bool:
        """alpaca-py 0.44's (True: the stream went stale, reconnect; False: stopped), but a
        quiet connection is checked for a stop every ``_STOP_CHECK`` s, not every 5 s."""
        loop = asyncio.get_running_loop()
        last_data_time = loop.time()
        self._data_received = False
        while not await self._stopped():
            receive_timeout = _STOP_CHECK
            if self._data_timeout is not None:
                elapsed = loop.time() - last_data_time
                if elapsed >= self._data_timeout:
                    log.warning("no data received on %s stream for %.1fs, reconnecting",
                                self._name, self._data_timeout)
                    await self.close()
                    return True
                receive_timeout = min(receive_timeout, self._data_timeout - elapsed)
            try:
                raw = await asyncio.wait_for(self._ws.recv(), receive_timeout)
            except TimeoutError:
                continue
            for msg in msgpack.unpackb(raw):
                market_data = _is_market_data(msg)
                if msg.get("T") in _CHANNEL_TYPES and not market_data:
                    continue          # control frames do not reset the staleness clock
                if market_data:
                    self._data_received = True
                await self._dispatch(msg)
                if market_data:
                    last_data_time = loop.time()
        return False


class AlpacaStore:
    """The clients of one paper session (see the module docstring).

    Parameters
    ----------
    keys : (key id, secret); default from the environment.
    endpoints : default from the environment (``Endpoints.from_env``).
    timeout : (connect, read) seconds for every REST call.
    ready_url : the local simulator's pacing route (replay only): told after each bar;
        with local endpoints it defaults to ``MTBT_SIM_READY_URL``.
    pace : instead, a callable told after each bar (a simulator in this process: its
        ``ready``, no HTTP round trip per bar).
    """

    def __init__(self, keys: tuple[str, str] | None = None,
                 endpoints: Endpoints | None = None, *, paper_mode: bool = True,
                 timeout: tuple[float, float] = (5.0, 10.0), ready_url: str | None = None,
                 pace: Callable[[dt.datetime], object] | None = None):
        if not paper_mode:
            raise ConfigError("[deployment] paper_mode is false: mtbt trades paper accounts "
                              "only")
        self.endpoints = endpoints or Endpoints.from_env()
        self.endpoints.check()
        self._keys = keys or keys_from_env()
        key, secret = self._keys
        self.http = ResilientSession(timeout)
        self.trading = TradingClient(key, secret, paper=True,
                                     url_override=self.endpoints.trading)
        self.data_client = StockHistoricalDataClient(key, secret,
                                                     url_override=self.endpoints.data)
        for client in (self.trading, self.data_client):
            harden(client, self.http)
        self._option_client: OptionHistoricalDataClient | None = None
        self.trade_stream = _TradeStream(key, secret, paper=True,
                                         url_override=self.endpoints.trade_stream)
        self.data_stream = _BarStream(key, secret, url_override=self.endpoints.data_stream)
        if ready_url is None and self.endpoints.local:
            ready_url = os.environ.get("MTBT_SIM_READY_URL") or None
        self.ready_url, self.pace = ready_url, pace
        self.broker = None
        self.data = None
        self._threads: list[threading.Thread] = []

    @property
    def option_client(self) -> OptionHistoricalDataClient:
        """The option data client (created on first use)."""
        if self._option_client is None:
            key, secret = self._keys
            self._option_client = OptionHistoricalDataClient(
                key, secret, url_override=self.endpoints.data)
            harden(self._option_client, self.http)
        return self._option_client

    def secrets(self) -> tuple[str, ...]:
        """The keys, for scrubbing text that might echo them."""
        return self._keys

    # -- the trio --------------------------------------------------------------------------
    def getbroker(self, **kwargs):
        """The ``AlpacaBroker`` of this store (one per store)."""
        if self.broker is None:
            self.broker = AlpacaBroker(store=self, **kwargs)
        return self.broker

    def getdata(self, **kwargs):
        """The ``AlpacaData`` feed of this store (one per store)."""
        if self.data is None:
            self.data = AlpacaData(store=self, **kwargs)
        return self.data

    # -- session times from Alpaca ---------------------------------------------------------
    def now(self) -> dt.datetime:
        """Alpaca's clock (tz-aware)."""
        return self.trading.get_clock().timestamp

    def sessions(self, start: dt.date, end: dt.date) -> dict[dt.date, Session]:
        """Alpaca's calendar from ``start`` to ``end``: ``{date: Session}`` (naive NY)."""
        days = self.trading.get_calendar(GetCalendarRequest(start=start, end=end))
        return {d.date: Session(d.date, d.open, d.close) for d in days}

    # -- streams ---------------------------------------------------------------------------
    def start_stream(self, stream) -> None:
        """Run a stream in a daemon thread (subscribe its handler first)."""
        thread = threading.Thread(target=_run_quietly, args=(stream,), daemon=True,
                                  name=type(stream).__name__)
        thread.start()
        self._threads.append(thread)

    def ready(self, last_bar: dt.datetime) -> None:
        """The session has handled ``last_bar`` (replay: the simulator may go on)."""
        if self.pace is not None:
            self.pace(last_bar)
        elif self.ready_url:
            self.http.post(self.ready_url, json={"t": last_bar.isoformat()})

    def stop(self) -> None:
        """Stop the streams (idempotent)."""
        for stream in (self.trade_stream, self.data_stream):
            loop = getattr(stream, "_loop", None)
            if loop is not None and loop.is_running():
                try:
                    stream.stop()
                except Exception as exc:   # noqa: BLE001 - shutting down anyway
                    log.debug("stream stop: %s", type(exc).__name__)
        for thread in self._threads:
            thread.join(timeout=5)
        self.http.close()


def _run_quietly(stream) -> None:
    with warnings.catch_warnings():     # websockets.legacy, inside alpaca-py
        warnings.simplefilter("ignore", DeprecationWarning)
        stream.run()
