"""The Simulator: one local Alpaca (paper trading REST, trade_updates stream, stock bars REST,
the bar stream and option quotes REST) replaying a DataFrame of 1-minute bars, bar by bar.

Its public API is what the servers use: the methods named after alpaca-py's
``TradingClient`` (``get_account``, ``submit_order``, ``replace_order``, ...) answer with the
JSON the REST route sends (or raise :class:`~mtbt.sim.errors.ApiError`), and deliver the
trade_updates events the change causes.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import msgpack
import numpy as np
import pandas as pd

from mtbt.options.chain import ChainModel
from mtbt.sessions import NY
from mtbt.sim.account import Execution
from mtbt.sim.calendar import SessionBook
from mtbt.sim.errors import ApiError
from mtbt.sim.exchange import Exchange
from mtbt.sim.faults import Faults
from mtbt.sim.market import BarRow
from mtbt.sim.orders import SimOrder
from mtbt.sim.quotes import OptionQuoteBook
from mtbt.sim.rest import RestServer
from mtbt.sim.streams import StreamServer
from mtbt.sim.wire import asset_json, calendar_json, clock_json, order_json

__all__ = ["Simulator"]

_COLUMNS = ("open", "high", "low", "close", "volume", "vix")
_MINUTE_NS = 60_000_000_000


def _aware(t: Any) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize(NY) if ts.tz is None else ts.tz_convert(NY)


class Simulator:
    """A local Alpaca paper account fed by ``bars`` (see ``docs`` in the package).

    Parameters
    ----------
    bars : tz-aware (America/New_York) start-labelled 1-minute bars with float columns
        open, high, low, close, volume and vix (the prior session's VIX close).
    start : the first streamed bar's start; earlier bars are history (REST only). Naive
        values are New York time.
    symbol : the underlying; orders may trade it and its OCC options.
    cash : starting cash.
    slippage : fixed per-share slippage of equity fills (backtrader's rules, 0 = none).
    chain_model : the synthetic option chain's settings (fills and marks).
    faults : :class:`Faults` to inject (all off by default).
    keys : the (key id, secret) every client must present.
    option_bars : recorded 1-minute option bars of the replayed day (a frame of the options
        store's contract, ``feeds/options_store.py``): the option quotes route serves quotes
        made from them instead of the synthetic chain's (:mod:`mtbt.sim.quotes`), and option
        orders fill on them by the backtest's ``prices = "recorded"`` rules
        (:meth:`~mtbt.sim.market.OptionMarket.use_recorded`).
    half_spread_pct : the half spread put around a recorded price (default: the chain's).
    option_stale_minutes : a recorded close prices a contract for the bars of this many whole
        minutes before the moment (``[options] stale_minutes``).
    """

    def __init__(self, bars: pd.DataFrame, start: Any, symbol: str = "SPY",
                 cash: float = 25_000.0, slippage: float = 0.0,
                 chain_model: ChainModel | None = None, faults: Faults | None = None,
                 keys: tuple[str, str] = ("replay-key", "replay-secret"),
                 option_bars: pd.DataFrame | None = None, half_spread_pct: float | None = None,
                 option_stale_minutes: float = 5.0) -> None:
        missing = [c for c in _COLUMNS if c not in bars.columns]
        if missing:
            raise ValueError(f"bars lack columns {missing}")
        index = pd.DatetimeIndex(bars.index)
        if index.tz is None:
            raise ValueError("bars need a tz-aware DatetimeIndex")
        if len(index) == 0 or not index.is_monotonic_increasing or not index.is_unique:
            raise ValueError("bars must be non-empty, sorted and unique in time")
        self.symbol, self.keys = symbol, (str(keys[0]), str(keys[1]))
        self.faults = faults or Faults()
        self.chain_model = chain_model or ChainModel()
        self._index = index.tz_convert(NY)
        self._ns = index.as_unit("ns").asi8
        self._values = {c: bars[c].to_numpy(dtype="float64") for c in _COLUMNS}
        self._start = _aware(start)
        self._k = int(np.searchsorted(self._ns, self._start.as_unit("ns").value, "left"))
        self.first_live = self._k
        first, last = self._index[0].date(), self._index[-1].date()
        self._sessions = SessionBook(first - dt.timedelta(days=10),
                                     last + dt.timedelta(days=40))
        self.exchange = Exchange(symbol, cash, slippage, self.chain_model, self._sessions,
                                 self._start, self.faults)
        if self._k > 0:
            self.exchange.last_bar = self._row(self._k - 1)
        self.option_quotes = OptionQuoteBook(self.exchange.options, symbol, option_bars,
                                             half_spread_pct, option_stale_minutes)
        if option_bars is not None:
            stale = float(option_stale_minutes)
            if not (stale >= 1 and stale.is_integer()):
                raise ValueError("option_stale_minutes must be a whole number >= 1 with "
                                 f"option_bars, got {option_stale_minutes}")
            self.exchange.options.use_recorded(
                option_bars, int(stale), self.option_quotes.spread_model.half_spread_pct)
        self.account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mtbt-sim:{self.keys[0]}"))
        self.requests: Counter[str] = Counter()
        self.rejections: list[tuple[int, dict]] = []
        self._held: list[dict] = []      # events held back for the next ones (faults)
        self.injected: list[dict[str, Any]] = []     # error_every faults: route, status, ...
        self.trade_events: list[dict] = []           # every trade_updates data dict sent
        self.held: list[tuple[str, str, Any]] = []   # requests kept from the venue (``hold``)
        self._hold: Callable[[str, str, Any], bool] | None = None
        self._unhold = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.RLock()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._ack: pd.Timestamp | None = None
        self._last_emitted: pd.Timestamp | None = None
        self._rest = RestServer(self)
        self._streams = StreamServer(self.keys, self.faults.drop_streams_every,
                                     on_change=self._notify)
        self._started = self._closed = False
        self.trading_url = self.data_url = self.trade_stream_url = self.data_stream_url = ""
        if self._k >= len(self._ns):
            self.finished.set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind both servers on 127.0.0.1 and serve (in daemon threads)."""
        if self._started:
            return self
        self._started = True
        port = self._rest.start()
        self._streams.start()
        self.trading_url = self.data_url = f"http://127.0.0.1:{port}"
        ws = f"ws://127.0.0.1:{self._streams.port}"
        self.trade_stream_url, self.data_stream_url = f"{ws}/stream", f"{ws}/v2/iex"
        return self

    def close(self) -> None:
        """Stop everything (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._notify()
        if self._started:
            self._rest.close()
            self._streams.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state -----------------------------------------------------------------------------
    @property
    def now(self) -> pd.Timestamp:
        """The simulated time (New York): ``start``, then the end of the last emitted bar."""
        return self.exchange.now

    @property
    def bars_left(self) -> int:
        return len(self._ns) - self._k

    @property
    def next_bar_start(self) -> pd.Timestamp | None:
        return self._index[self._k] if self._k < len(self._ns) else None

    @property
    def orders(self) -> list[SimOrder]:
        """All accepted orders (top level; legs in ``.legs``), in order of acceptance."""
        return list(self.exchange.book.orders)

    @property
    def executions(self) -> list[Execution]:
        return list(self.exchange.account.executions)

    @property
    def settlements(self) -> list[dict[str, Any]]:
        return list(self.exchange.account.settlements)

    @property
    def cash(self) -> float:
        return self.exchange.account.cash

    def positions(self) -> dict[str, float]:
        """{symbol: signed qty}."""
        with self._lock:
            return {s: p.qty for s, p in self.exchange.account.positions.items()}

    @property
    def bar_subscribers(self) -> int:
        return self._streams.bar_subscribers(self.symbol)

    @property
    def trade_listeners(self) -> int:
        return self._streams.trade_listeners()

    @property
    def stream_connections(self) -> int:
        """Websocket connections accepted so far (both streams)."""
        return self._streams.connections

    # -- stepping --------------------------------------------------------------------------
    def step(self) -> bool:
        """Emit the next bar: advance the clock to its end, fill working orders against it,
        send their trade_updates, then send the bar. False when no bars remain."""
        with self._lock:
            if self._k >= len(self._ns):
                self.finished.set()
                return False
            i = self._k
            bar = self._row(i)
            events = self.exchange.process_bar(bar)
            self._k += 1
            self._last_emitted = bar.start
            self._publish(events, step=True)
            if self._k - self.first_live > self.faults.unstreamed_bars:
                self._streams.publish_bar(self.symbol, self._bar_msg(i))
            if self.faults.drop_streams_at and self._k - self.first_live == \
                    self.faults.drop_streams_at:
                self._streams.drop_all()             # the fault: once, after this bar
            if self._k >= len(self._ns):
                self.finished.set()
        return True

    def run(self, speed: float = 0.0, lockstep: bool = True,
            stop: threading.Event | None = None) -> None:
        """Step through all bars (blocking). ``speed`` N > 0 waits 60/N s between bars;
        ``lockstep`` holds each bar until :meth:`may_emit` (a client ack and a subscriber)."""
        first = True
        while self.bars_left and not self._closing.is_set():
            if stop is not None and stop.is_set():
                return
            if speed > 0 and not first and self._sleep(60.0 / speed, stop):
                return
            if lockstep:
                with self._cond:
                    while not self.may_emit():
                        if self._closing.is_set() or (stop is not None and stop.is_set()):
                            return
                        self._cond.wait(0.05)
            first = False
            self.step()
        if not self.bars_left:
            self.finished.set()

    def _sleep(self, seconds: float, stop: threading.Event | None) -> bool:
        """Sleep; True if stopped or closed meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._closing.wait(min(left, 0.05)) or (stop is not None and stop.is_set()):
                return True
        return False

    # -- lockstep --------------------------------------------------------------------------
    def ready(self, t: Any) -> None:
        """A client's ack: it has processed everything up to the bar starting at ``t``."""
        ts = _aware(t)
        with self._cond:
            if self._ack is None or ts > self._ack:
                self._ack = ts
            self._cond.notify_all()

    def may_emit(self) -> bool:
        """Lockstep's condition: an ack for the last emitted bar (any ack before the first)
        and at least one client subscribed to the symbol's bars."""
        if self._ack is None:
            return False
        if self._last_emitted is not None and self._ack < self._last_emitted:
            return False
        return self.bar_subscribers > 0

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Wait until :meth:`may_emit`; False on timeout."""
        return self._wait(self.may_emit, timeout)

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        """Wait until a data-stream client is subscribed to the symbol's bars."""
        return self._wait(lambda: self.bar_subscribers > 0, timeout)

    def wait_listening(self, timeout: float = 5.0) -> bool:
        """Wait until a trade_updates client is listening."""
        return self._wait(lambda: self.trade_listeners > 0, timeout)

    def _wait(self, predicate: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0 or self._closing.is_set():
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- Alpaca's trading API, in process: each answers what its REST route sends --------------
    def get_account(self) -> dict[str, Any]:
        """``GET /v2/account``: the TradeAccount."""
        with self._lock:
            return self.exchange.account_json(self.account_id)

    def get_clock(self) -> dict[str, Any]:
        """``GET /v2/clock``: the Clock at :attr:`now`."""
        with self._lock:
            return clock_json(self.now, self._sessions)

    def get_calendar(self, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        """``GET /v2/calendar``: the XNYS sessions dated ``start`` to ``end`` inclusive."""
        with self._lock:
            return calendar_json(self._sessions.between(start, end))

    def get_asset(self, symbol: str) -> dict[str, Any]:
        """``GET /v2/assets/{symbol}``: the underlying or a live option on it (else 404)."""
        with self._lock:
            self.exchange.check_asset(symbol)
        return asset_json(symbol)

    def submit_order(self, body: Any) -> dict[str, Any]:
        """``POST /v2/orders``: accept the order ``body`` asks for and send its ``new``
        event; the order."""
        with self._lock:
            order, events = self.exchange.submit(body)
            self._publish(events)
            return order_json(order)

    def replace_order(self, order_id: str, body: Any) -> dict[str, Any]:
        """``PATCH /v2/orders/{order_id}``: replace an open order (or a leg of an open oco
        pair) with ``body``'s changes; send ``replaced`` (the old order) and ``new`` (the new
        one); the **new** order."""
        with self._lock:
            order, events = self.exchange.replace(order_id, body)
            self._publish(events)
            return order_json(order)

    def get_orders(self, status: str = "open", after: pd.Timestamp | None = None,
                   until: pd.Timestamp | None = None, limit: int = 50,
                   direction: str = "desc", nested: bool = False,
                   symbols: Iterable[str] = (), side: str | None = None
                   ) -> list[dict[str, Any]]:
        """``GET /v2/orders``: up to ``limit`` orders (``status`` open, closed or all;
        created in (after, until]; touching ``symbols``; on ``side``), newest first unless
        ``direction`` is ``asc``; top-level ones with their legs when ``nested``."""
        with self._lock:
            found = self.exchange.book.select(status, after, until, nested, set(symbols),
                                              side)
            if direction == "desc":
                found.reverse()
            return [order_json(o, nested=nested) for o in found[:limit]]

    def get_order(self, order_id: str) -> dict[str, Any]:
        """``GET /v2/orders/{order_id}``: an order or leg (404 if unknown)."""
        with self._lock:
            return order_json(self.exchange.book.find(order_id))

    def get_order_by_client_id(self, client_order_id: str) -> dict[str, Any]:
        """``GET /v2/orders:by_client_order_id``: the order (404 if unknown)."""
        with self._lock:
            return order_json(self.exchange.book.find_client(client_order_id))

    def cancel_order(self, order_id: str) -> None:
        """``DELETE /v2/orders/{order_id}``: cancel an open order (the whole oco pair or
        mleg) and send its events; 422 if it is no longer open."""
        with self._lock:
            self._publish(self.exchange.fill_before_cancel(order_id))
            self._publish(self.exchange.cancel(order_id))

    def cancel_orders(self) -> list[dict[str, Any]]:
        """``DELETE /v2/orders``: cancel every open order; ``{"id", "status"}`` per order."""
        with self._lock:
            items, events = self.exchange.cancel_all()
            self._publish(events)
            return items

    def get_positions(self) -> list[dict[str, Any]]:
        """``GET /v2/positions``: every open Position."""
        with self._lock:
            return self.exchange.positions_json()

    def get_position(self, symbol: str) -> dict[str, Any]:
        """``GET /v2/positions/{symbol}``: the Position (404 if flat)."""
        with self._lock:
            return self.exchange.position_json(symbol)

    def close_position(self, symbol: str, qty: float | None = None,
                       percentage: float | None = None) -> dict[str, Any]:
        """``DELETE /v2/positions/{symbol}``: a market order closing ``qty`` (or
        ``percentage``, or all) of the position; the order."""
        with self._lock:
            order, events = self.exchange.close_position(symbol, qty, percentage)
            self._publish(events)
            return order_json(order)

    def close_all_positions(self, cancel_orders: bool = False) -> list[dict[str, Any]]:
        """``DELETE /v2/positions``: close every position (after cancelling every open order
        when ``cancel_orders``); ``{"symbol", "status", "order_id"?, "body"}`` per position."""
        with self._lock:
            if cancel_orders:
                self._publish(self.exchange.cancel_all()[1])
            out = []
            for symbol in list(self.exchange.account.positions):
                try:
                    order, events = self.exchange.close_position(symbol)
                except ApiError as exc:
                    out.append({"symbol": symbol, "status": exc.status, "body": exc.body()})
                    continue
                self._publish(events)
                out.append({"symbol": symbol, "status": 200, "order_id": order.id,
                            "body": order_json(order)})
            return out

    # -- market data -----------------------------------------------------------------------
    def get_bars(self, start: pd.Timestamp | None, end: pd.Timestamp | None,
                 offset: int = 0, limit: int = 10_000, descending: bool = False
                 ) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v2/stocks/bars`` for :attr:`symbol`: the bars complete at :attr:`now` that
        start in [start, end], oldest first (or newest first), from ``offset`` on, at most
        ``limit`` of them; and whether more follow."""
        with self._lock:
            rows = self._complete_rows(start, end)
        if descending:
            rows = rows[::-1]
        page = rows[offset:offset + limit]
        return [self._bar_json(int(i)) for i in page], offset + limit < len(rows)

    def get_latest_bar(self) -> dict[str, Any] | None:
        """``GET /v2/stocks/bars/latest`` for :attr:`symbol`: the last complete bar, if any."""
        with self._lock:
            rows = self._complete_rows(None, None)
        return self._bar_json(int(rows[-1])) if len(rows) else None

    def get_option_quotes(self, symbols: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``GET /v1beta1/options/quotes/latest``: ``{symbol: Quote}`` at :attr:`now` for
        the symbols that have a quote (the chain's or the recorded bars', see
        :mod:`mtbt.sim.quotes`); the others are left out."""
        with self._lock:
            return self.option_quotes.latest(symbols, self.now, self.exchange.last_bar)

    # -- what the REST server reports --------------------------------------------------------
    def count_request(self, route: str) -> None:
        """Count one request to ``route`` (``"METHOD /template"``) in :attr:`requests`."""
        with self._cond:
            self.requests[route] += 1

    def record_fault(self, route: str, status: int, created: bool) -> None:
        """Note an injected REST error (``error_every``) in :attr:`injected`; ``created``:
        the order was created before the error was answered."""
        with self._cond:
            self.injected.append({"route": route, "status": status, "created": created})

    def record_rejection(self, status: int, body: dict[str, Any]) -> None:
        """Note an error answer (status >= 400) in :attr:`rejections`."""
        with self._cond:
            self.rejections.append((status, body))

    def hold(self, match: Callable[[str, str, Any], bool] | None) -> None:
        """Keep every REST request ``match(method, route, body)`` accepts from the venue:
        it is noted in :attr:`held` and left unanswered, and it is never applied (tests: a
        trader killed after deciding to send and before its request arrived).
        ``hold(None)`` lets the requests held so far go (answered 503) and stops holding."""
        with self._cond:
            self._hold = match
            if match is None:
                self._unhold.set()
            else:
                self._unhold.clear()

    def holds(self, method: str, route: str, body: Any) -> bool:
        """Whether this request is one to hold (``hold``); if so, once it is let go."""
        with self._cond:
            match, unhold = self._hold, self._unhold
            if match is None or not match(method, route, body):
                return False
            self.held.append((method, route, body))
        while not (unhold.wait(0.05) or self._closing.is_set()):
            pass
        return True

    def force_fills(self, match: Callable[[str], bool] | None) -> None:
        """Fill every working equity order whose client id ``match`` accepts on each of the
        next steps, at the bar's open, its own price reached or not (tests: an exit that
        fills while the trader is down); ``force_fills(None)`` stops."""
        with self._lock:
            self.exchange.matcher.forced = match

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (a slow request), or less if the simulator is closing."""
        self._closing.wait(seconds)

    # -- internals -------------------------------------------------------------------------
    def _row(self, i: int) -> BarRow:
        v = self._values
        return BarRow(self._index[i], float(v["open"][i]), float(v["high"][i]),
                      float(v["low"][i]), float(v["close"][i]), float(v["volume"][i]),
                      float(v["vix"][i]))

    def _fields(self, i: int) -> dict[str, Any]:
        v = self._values
        o, h, lo, c = (float(v[k][i]) for k in ("open", "high", "low", "close"))
        volume = float(v["volume"][i])
        return {"o": o, "h": h, "l": lo, "c": c,
                "v": int(round(volume)) if np.isfinite(volume) else 0,
                "n": max(1, int(volume // 100)) if np.isfinite(volume) else 1,
                "vw": round((h + lo + c) / 3.0, 4)}

    def _bar_json(self, i: int) -> dict[str, Any]:
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(self._ns[i]) // 1_000_000_000))
        return {"t": t, **self._fields(i)}

    def _bar_msg(self, i: int) -> dict[str, Any]:
        ns = int(self._ns[i])
        stamp = msgpack.Timestamp(ns // 1_000_000_000, ns % 1_000_000_000)
        return {"T": "b", "S": self.symbol, "t": stamp, **self._fields(i)}

    def _complete_rows(self, start: pd.Timestamp | None, end: pd.Timestamp | None
                       ) -> np.ndarray:
        """Indices of bars complete at ``now`` (end <= now) with start <= t <= end."""
        now_ns = self.now.as_unit("ns").value
        hi = int(np.searchsorted(self._ns, now_ns - _MINUTE_NS, "right"))
        if end is not None:
            hi = min(hi, int(np.searchsorted(self._ns, end.as_unit("ns").value, "right")))
        lo = 0 if start is None else int(np.searchsorted(self._ns, start.as_unit("ns").value,
                                                         "left"))
        return np.arange(lo, max(lo, hi))

    def _publish(self, events: list[dict], step: bool = False) -> None:
        held, self._held = self._held, []
        if step and self.faults.late_oco_cancels:       # sent with the next events
            self._held = [e for e in events if e["event"] == "canceled"
                          and e["order"]["order_class"] == "oco"]
            events = [e for e in events if not any(e is h for h in self._held)]
        events = held + events
        if not events:
            return
        out = list(reversed(events)) if step and self.faults.reorder_fills else list(events)
        if self.faults.duplicate_fills:
            out = [e for event in out
                   for e in ([event, event] if event["event"] in ("fill", "partial_fill")
                             else [event])]
        self.trade_events.extend(out)
        self._streams.publish_trade(out)
