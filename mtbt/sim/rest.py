"""The REST side: Alpaca's trading and stock-bar routes plus the sim-only ``/_sim`` routes, on
a ``ThreadingHTTPServer`` (127.0.0.1, ephemeral port) in a daemon thread.

Every request gets an answer (alpaca-py has no timeouts); every error body is
``{"code": int, "message": str}``. Alpaca routes need the APCA key headers; ``/_sim``
routes do not, and are not counted by the fault knobs. The routes only parse requests and
call the simulator's public API (:class:`Venue`), which answers with the JSON to send.

Routes: ``GET /v2/account``, ``/v2/clock``, ``/v2/calendar``; ``POST /v2/orders``;
``GET``/``DELETE /v2/orders``; ``GET /v2/orders:by_client_order_id``; ``GET``/``DELETE
/v2/orders/{id}``; ``PATCH /v2/orders/{id}`` (replace an order: answers the new order, sends
``replaced`` for the old one and ``new`` for the new one); ``GET``/``DELETE /v2/positions``
and ``/v2/positions/{symbol}``; ``GET /v2/assets/{symbol}``; ``GET /v2/stocks/bars`` and
``/v2/stocks/bars/latest``; ``GET /v1beta1/options/quotes/latest`` (``symbols``: at most
100 OCC symbols, ``feed`` indicative or opra, both served alike; answers ``{"quotes":
{symbol: Quote}}`` without the symbols that have no quote, see :mod:`mtbt.sim.quotes`);
``POST /_sim/ready``, ``GET /_sim/status``.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import pandas as pd

from mtbt.sim.errors import ApiError, unprocessable
from mtbt.sim.faults import Faults, RestFaults
from mtbt.sim.wire import error, iso, num, parse_time

__all__ = ["RestServer", "Venue"]

log = logging.getLogger(__name__)

Reply = tuple[int, Any]
JSON = dict[str, Any]
_UNAUTHORIZED = error(40110000, "request is not authorized")
#: symbols one option latest-quote request may name (Alpaca's documented limit)
OPTION_SYMBOLS_MAX = 100


class Venue(Protocol):
    """The part of :class:`mtbt.sim.Simulator`'s public API the REST server calls."""

    keys: tuple[str, str]
    faults: Faults
    symbol: str
    finished: threading.Event

    @property
    def now(self) -> pd.Timestamp: ...
    @property
    def cash(self) -> float: ...
    @property
    def bars_left(self) -> int: ...
    @property
    def next_bar_start(self) -> pd.Timestamp | None: ...
    def get_account(self) -> JSON: ...
    def get_clock(self) -> JSON: ...
    def get_calendar(self, start: dt.date, end: dt.date) -> list[JSON]: ...
    def get_asset(self, symbol: str) -> JSON: ...
    def submit_order(self, body: Any) -> JSON: ...
    def replace_order(self, order_id: str, body: Any) -> JSON: ...
    def get_orders(self, status: str = ..., after: pd.Timestamp | None = ...,
                   until: pd.Timestamp | None = ..., limit: int = ..., direction: str = ...,
                   nested: bool = ..., symbols: Iterable[str] = ...,
                   side: str | None = ...) -> list[JSON]: ...
    def get_order(self, order_id: str) -> JSON: ...
    def get_order_by_client_id(self, client_order_id: str) -> JSON: ...
    def cancel_order(self, order_id: str) -> None: ...
    def cancel_orders(self) -> list[JSON]: ...
    def get_positions(self) -> list[JSON]: ...
    def get_position(self, symbol: str) -> JSON: ...
    def close_position(self, symbol: str, qty: float | None = ...,
                       percentage: float | None = ...) -> JSON: ...
    def close_all_positions(self, cancel_orders: bool = ...) -> list[JSON]: ...
    def get_bars(self, start: pd.Timestamp | None, end: pd.Timestamp | None, offset: int = ...,
                 limit: int = ..., descending: bool = ...) -> tuple[list[JSON], bool]: ...
    def get_latest_bar(self) -> JSON | None: ...
    def get_option_quotes(self, symbols: Iterable[str]) -> dict[str, JSON]: ...
    def ready(self, t: Any) -> None: ...
    def count_request(self, route: str) -> None: ...
    def record_fault(self, route: str, status: int, created: bool) -> None: ...
    def record_rejection(self, status: int, body: JSON) -> None: ...
    def pause(self, seconds: float) -> None: ...
    def holds(self, method: str, route: str, body: Any) -> bool: ...


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _time(query: dict[str, str], key: str) -> pd.Timestamp | None:
    text = query.get(key)
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise unprocessable(f"invalid {key}: {text}") from None


class RestServer:
    """Routes of one simulator (:class:`Venue`)."""

    def __init__(self, sim: Venue) -> None:
        self.sim = sim
        self._faults = RestFaults(sim.faults)
        self._routes: list[tuple[str, str, re.Pattern, Callable[..., Reply]]] = []
        for method, template, fn in [
            ("GET", "/v2/account", self.account), ("GET", "/v2/clock", self.clock),
            ("GET", "/v2/calendar", self.calendar),
            ("POST", "/v2/orders", self.submit), ("GET", "/v2/orders", self.orders),
            ("DELETE", "/v2/orders", self.cancel_all),
            ("GET", "/v2/orders:by_client_order_id", self.by_client_id),
            ("GET", "/v2/orders/{id}", self.order), ("DELETE", "/v2/orders/{id}", self.cancel),
            ("PATCH", "/v2/orders/{id}", self.replace),
            ("GET", "/v2/positions", self.positions),
            ("DELETE", "/v2/positions", self.close_all),
            ("GET", "/v2/positions/{symbol}", self.position),
            ("DELETE", "/v2/positions/{symbol}", self.close_position),
            ("GET", "/v2/assets/{symbol}", self.asset),
            ("GET", "/v2/stocks/bars", self.bars),
            ("GET", "/v2/stocks/bars/latest", self.latest_bars),
            ("GET", "/v1beta1/options/quotes/latest", self.option_quotes),
            ("POST", "/_sim/ready", self.ready), ("GET", "/_sim/status", self.status),
        ]:
            pattern = re.escape(template).replace(r"\{id\}", "(?P<id>[^/]+)")
            pattern = pattern.replace(r"\{symbol\}", "(?P<symbol>[^/]+)")
            self._routes.append((method, template, re.compile(f"^{pattern}$"), fn))
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> int:
        handler = _handler_class(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="mtbt-sim-rest", daemon=True)
        self._thread.start()
        return self._httpd.server_address[1]

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Any, raw: bytes) -> Reply:
        """The (status, JSON body or None) for one request."""
        parts = urlsplit(target)
        path = unquote(parts.path).rstrip("/") or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        sim = self.sim
        found = next(((template, fn, m) for verb, template, pattern, fn in self._routes
                      if verb == method and (m := pattern.match(path))), None)
        if found is None:
            sim.count_request(f"{method} {path}")
            return 404, error(40410000, f"route not found: {method} {path}")
        template, fn, m = found
        route = f"{method} {template}"
        sim.count_request(route)
        internal = template.startswith("/_sim")
        if not internal and (headers.get("APCA-API-KEY-ID"),
                             headers.get("APCA-API-SECRET-KEY")) != sim.keys:
            return 401, _UNAUTHORIZED
        fault = None
        if not internal:
            fault = self._faults.next(method == "POST" and template == "/v2/orders")
            if fault.slow:
                sim.pause(fault.slow)
            if fault.status is not None and not fault.after_create:
                sim.record_fault(route, fault.status, created=False)
                return fault.status, error(fault.status * 100000, "injected fault")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, error(40010000, "request body format is invalid")
        if not internal and sim.holds(method, template, body):      # never arrived: not
            return 503, error(50300000, "held by the simulator, never applied")  # refused
        if route == "POST /v2/orders" and self._faults.refuses(body):
            sim.record_fault(route, 403, created=False)
            return 403, error(40310000, "insufficient buying power")
        try:
            status, answer = fn(query=query, body=body, **m.groupdict())
        except ApiError as exc:
            status, answer = exc.status, exc.body()
        except Exception as exc:                       # noqa: BLE001 - answer, never hang
            log.exception("sim route %s %s failed", method, path)
            status, answer = 500, error(50010000, f"internal error: {exc}")
        if status >= 400:
            sim.record_rejection(status, answer)
        if fault is not None and fault.status is not None:      # after creating the order
            sim.record_fault(route, fault.status, created=status < 300)
            return fault.status, error(fault.status * 100000, "injected fault")
        return status, answer

    # -- trading ---------------------------------------------------------------------------
    def account(self, **_: Any) -> Reply:
        return 200, self.sim.get_account()

    def clock(self, **_: Any) -> Reply:
        return 200, self.sim.get_clock()

    def calendar(self, query: dict[str, str], **_: Any) -> Reply:
        today = pd.Timestamp(self.sim.now).tz_convert("America/New_York").date()
        try:
            start = pd.Timestamp(query["start"]).date() if query.get("start") else today
            end = pd.Timestamp(query["end"]).date() if query.get("end") else (
                start + pd.Timedelta(days=30))
        except ValueError:
            raise unprocessable("invalid start or end") from None
        return 200, self.sim.get_calendar(start, end)

    def submit(self, body: Any, **_: Any) -> Reply:
        return 200, self.sim.submit_order(body)

    def orders(self, query: dict[str, str], **_: Any) -> Reply:
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise unprocessable(f"invalid status {status}")
        try:
            limit = min(int(query.get("limit") or 50), 500)
        except ValueError:
            raise unprocessable("invalid limit") from None
        symbols = {s for s in (query.get("symbols") or "").split(",") if s}
        return 200, self.sim.get_orders(
            status=status, after=_time(query, "after"), until=_time(query, "until"),
            limit=limit, direction=query.get("direction", "desc"),
            nested=_flag(query.get("nested")), symbols=symbols, side=query.get("side"))

    def by_client_id(self, query: dict[str, str], **_: Any) -> Reply:
        return 200, self.sim.get_order_by_client_id(query.get("client_order_id", ""))

    def order(self, id: str, **_: Any) -> Reply:   # noqa: A002 - the route's name
        return 200, self.sim.get_order(id)

    def cancel(self, id: str, **_: Any) -> Reply:   # noqa: A002
        self.sim.cancel_order(id)
        return 204, None

    def replace(self, id: str, body: Any, **_: Any) -> Reply:   # noqa: A002
        return 200, self.sim.replace_order(id, body)

    def cancel_all(self, **_: Any) -> Reply:
        return 207, self.sim.cancel_orders()

    def positions(self, **_: Any) -> Reply:
        return 200, self.sim.get_positions()

    def position(self, symbol: str, **_: Any) -> Reply:
        return 200, self.sim.get_position(symbol)

    def close_position(self, symbol: str, query: dict[str, str], **_: Any) -> Reply:
        try:
            qty = float(query["qty"]) if query.get("qty") else None
            pct = float(query["percentage"]) if query.get("percentage") else None
        except ValueError:
            raise unprocessable("invalid qty or percentage") from None
        return 200, self.sim.close_position(symbol, qty, pct)

    def close_all(self, query: dict[str, str], **_: Any) -> Reply:
        return 207, self.sim.close_all_positions(_flag(query.get("cancel_orders")))

    def asset(self, symbol: str, **_: Any) -> Reply:
        return 200, self.sim.get_asset(symbol)

    # -- market data -----------------------------------------------------------------------
    def bars(self, query: dict[str, str], **_: Any) -> Reply:
        timeframe = query.get("timeframe", "")
        if timeframe != "1Min":
            raise unprocessable(
                f"timeframe {timeframe!r} is not supported by the simulator (1Min)")
        symbols = [s for s in (query.get("symbols") or "").split(",") if s]
        if not symbols:
            raise unprocessable("symbols is required")
        start, end = _time(query, "start"), _time(query, "end")
        try:
            limit = int(query.get("limit") or 1000)
            offset = int(base64.b64decode(query["page_token"]).decode()) if query.get(
                "page_token") else 0
        except ValueError:
            raise unprocessable("invalid limit or page_token") from None
        if not 1 <= limit <= 10000:
            raise unprocessable("limit must be between 1 and 10000")
        sim = self.sim
        if sim.symbol not in symbols:
            return 200, {"bars": {}, "next_page_token": None}
        page, more = sim.get_bars(start, end, offset, limit, query.get("sort") == "desc")
        token = base64.b64encode(str(offset + limit).encode()).decode() if more else None
        return 200, {"bars": {sim.symbol: page} if page else {}, "next_page_token": token}

    def latest_bars(self, query: dict[str, str], **_: Any) -> Reply:
        sim = self.sim
        symbols = [s for s in (query.get("symbols") or "").split(",") if s]
        bar = sim.get_latest_bar() if sim.symbol in symbols else None
        return 200, {"bars": {sim.symbol: bar} if bar is not None else {}}

    def option_quotes(self, query: dict[str, str], **_: Any) -> Reply:
        symbols = list(dict.fromkeys(s for s in (query.get("symbols") or "").split(",") if s))
        if not symbols:
            raise ApiError(400, 40010001, "symbols is required")
        if len(symbols) > OPTION_SYMBOLS_MAX:
            raise ApiError(400, 40010001, f"too many symbols: {len(symbols)} (at most "
                                          f"{OPTION_SYMBOLS_MAX})")
        feed = query.get("feed") or "indicative"
        if feed not in ("indicative", "opra"):
            raise ApiError(400, 40010001, f"invalid feed: {feed}")
        return 200, {"quotes": self.sim.get_option_quotes(symbols)}

    # -- sim-only --------------------------------------------------------------------------
    def ready(self, body: Any, **_: Any) -> Reply:
        text = body.get("t") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise unprocessable('body must be {"t": "<ISO time>"}')
        try:
            t = pd.Timestamp(text)          # naive: New York wall-clock (backtrader's clock)
        except ValueError:
            raise unprocessable(f"invalid t: {text}") from None
        self.sim.ready(t)
        return 200, self.status()[1]

    def status(self, **_: Any) -> Reply:
        sim = self.sim
        nxt = sim.next_bar_start
        return 200, {"now": iso(sim.now), "next_bar": iso(nxt) if nxt is not None else None,
                     "finished": sim.finished.is_set(), "bars_left": sim.bars_left,
                     "cash": num(sim.cash)}


def _handler_class(server: RestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True   # headers and body are separate writes: no 40 ms stall

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                status, body = server.handle(self.command, self.path, self.headers, raw)
            except Exception as exc:                   # noqa: BLE001 - never hang
                log.exception("sim request failed")
                status, body = 500, error(50010000, f"internal error: {exc}")
            data = b"" if body is None else json.dumps(body).encode()
            try:
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True

        do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve   # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler

