"""The REST side: Alpaca's trading and stock-bar routes plus the sim-only ``/_sim`` routes, on
a ``ThreadingHTTPServer`` (127.0.0.1, ephemeral port) in a daemon thread.

Every request gets an answer (alpaca-py has no timeouts); every error body is
``{"code": int, "message": str}``. Alpaca routes need the APCA key headers; ``/_sim``
routes do not, and are not counted by the fault knobs.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pandas as pd

from mtbt.sim.exchange import OPEN_STATUSES, ApiError
from mtbt.sim.wire import asset_json, calendar_json, clock_json, error, iso, num, parse_time

if TYPE_CHECKING:
    from mtbt.sim.simulator import Simulator

__all__ = ["RestServer"]

log = logging.getLogger(__name__)

Reply = tuple[int, Any]
_UNAUTHORIZED = error(40110000, "request is not authorized")


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _time(query: dict[str, str], key: str) -> pd.Timestamp | None:
    text = query.get(key)
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise ApiError(422, 42210000, f"invalid {key}: {text}") from None


class RestServer:
    """Routes of one :class:`Simulator`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
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
            sim._count(f"{method} {path}")
            return 404, error(40410000, f"route not found: {method} {path}")
        template, fn, m = found
        sim._count(f"{method} {template}")
        internal = template.startswith("/_sim")
        if not internal and (headers.get("APCA-API-KEY-ID"),
                             headers.get("APCA-API-SECRET-KEY")) != sim.keys:
            return 401, _UNAUTHORIZED
        fault = None
        if not internal:
            fault = sim._rest_faults.next(method == "POST" and template == "/v2/orders")
            if fault.slow:
                sim._closing.wait(fault.slow)
            if fault.status is not None and not fault.after_create:
                sim._record_fault(method, template, fault.status, created=False)
                return fault.status, error(fault.status * 100000, "injected fault")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, error(40010000, "request body format is invalid")
        try:
            status, answer = fn(query=query, body=body, **m.groupdict())
        except ApiError as exc:
            status, answer = exc.status, exc.body()
        except Exception as exc:                       # noqa: BLE001 - answer, never hang
            log.exception("sim route %s %s failed", method, path)
            status, answer = 500, error(50010000, f"internal error: {exc}")
        if status >= 400:
            sim.rejections.append((status, answer))
        if fault is not None and fault.status is not None:      # after creating the order
            sim._record_fault(method, template, fault.status, created=status < 300)
            return fault.status, error(fault.status * 100000, "injected fault")
        return status, answer

    # -- trading ---------------------------------------------------------------------------
    def account(self, **_: Any) -> Reply:
        with self.sim._lock:
            return 200, self.sim.exchange.account_json(self.sim.account_id)

    def clock(self, **_: Any) -> Reply:
        with self.sim._lock:
            return 200, clock_json(self.sim.now, self.sim._book)

    def calendar(self, query: dict[str, str], **_: Any) -> Reply:
        today = pd.Timestamp(self.sim.now).tz_convert("America/New_York").date()
        try:
            start = pd.Timestamp(query["start"]).date() if query.get("start") else today
            end = pd.Timestamp(query["end"]).date() if query.get("end") else (
                start + pd.Timedelta(days=30))
        except ValueError:
            raise ApiError(422, 42210000, "invalid start or end") from None
        with self.sim._lock:
            return 200, calendar_json(self.sim._book.between(start, end))

    def submit(self, body: Any, **_: Any) -> Reply:
        with self.sim._lock:
            order, events = self.sim.exchange.submit(body)
            self.sim._publish(events)
            return 200, order.json()

    def orders(self, query: dict[str, str], **_: Any) -> Reply:
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise ApiError(422, 42210000, f"invalid status {status}")
        after, until = _time(query, "after"), _time(query, "until")
        try:
            limit = min(int(query.get("limit") or 50), 500)
        except ValueError:
            raise ApiError(422, 42210000, "invalid limit") from None
        direction = query.get("direction", "desc")
        nested = _flag(query.get("nested"))
        symbols = {s for s in (query.get("symbols") or "").split(",") if s}
        side = query.get("side")
        with self.sim._lock:
            found = []
            for order in self.sim.exchange.orders:
                parts = [order] if nested else [order, *order.legs]
                for part in parts:
                    if status == "open" and part.status not in OPEN_STATUSES:
                        continue
                    if status == "closed" and part.status in OPEN_STATUSES:
                        continue
                    if after is not None and not part.created_at > after:
                        continue
                    if until is not None and not part.created_at <= until:
                        continue
                    names = {part.symbol, *(leg.symbol for leg in part.legs)}
                    if symbols and not symbols & names:
                        continue
                    if side and part.side != side:
                        continue
                    found.append(part)
            if direction == "desc":
                found.reverse()
            return 200, [o.json(nested=nested) for o in found[:limit]]

    def by_client_id(self, query: dict[str, str], **_: Any) -> Reply:
        cid = query.get("client_order_id", "")
        with self.sim._lock:
            order = self.sim.exchange.by_client.get(cid)
            if order is None:
                raise ApiError(404, 40410000, f"order not found for client_order_id {cid}")
            return 200, order.json()

    def order(self, id: str, **_: Any) -> Reply:   # noqa: A002 - the route's name
        with self.sim._lock:
            return 200, self.sim.exchange.find(id).json()

    def cancel(self, id: str, **_: Any) -> Reply:   # noqa: A002
        with self.sim._lock:
            self.sim._publish(self.sim.exchange.cancel(id))
            return 204, None

    def replace(self, **_: Any) -> Reply:
        raise ApiError(422, 42210000, "order replacement is not supported by the simulator")

    def cancel_all(self, **_: Any) -> Reply:
        with self.sim._lock:
            items, events = self.sim.exchange.cancel_all()
            self.sim._publish(events)
            return 207, items

    def positions(self, **_: Any) -> Reply:
        with self.sim._lock:
            ex = self.sim.exchange
            return 200, [ex.position_json(p) for p in ex.positions.values()]

    def position(self, symbol: str, **_: Any) -> Reply:
        with self.sim._lock:
            pos = self.sim.exchange.positions.get(symbol)
            if pos is None:
                raise ApiError(404, 40410000, "position does not exist")
            return 200, self.sim.exchange.position_json(pos)

    def close_position(self, symbol: str, query: dict[str, str], **_: Any) -> Reply:
        try:
            qty = float(query["qty"]) if query.get("qty") else None
            pct = float(query["percentage"]) if query.get("percentage") else None
        except ValueError:
            raise ApiError(422, 42210000, "invalid qty or percentage") from None
        with self.sim._lock:
            order, events = self.sim.exchange.close_position(symbol, qty, pct)
            self.sim._publish(events)
            return 200, order.json()

    def close_all(self, query: dict[str, str], **_: Any) -> Reply:
        with self.sim._lock:
            ex = self.sim.exchange
            if _flag(query.get("cancel_orders")):
                self.sim._publish(ex.cancel_all()[1])
            out = []
            for symbol in list(ex.positions):
                try:
                    order, events = ex.close_position(symbol)
                    self.sim._publish(events)
                    out.append({"symbol": symbol, "status": 200, "order_id": order.id,
                                "body": order.json()})
                except ApiError as exc:
                    out.append({"symbol": symbol, "status": exc.status, "body": exc.body()})
            return 207, out

    def asset(self, symbol: str, **_: Any) -> Reply:
        sim = self.sim
        try:
            sim.exchange._check_symbol(symbol)
        except ApiError:
            raise ApiError(404, 40410000, f"asset not found for {symbol}") from None
        return 200, asset_json(symbol)

    # -- market data -----------------------------------------------------------------------
    def bars(self, query: dict[str, str], **_: Any) -> Reply:
        timeframe = query.get("timeframe", "")
        if timeframe != "1Min":
            raise ApiError(422, 42210000,
                           f"timeframe {timeframe!r} is not supported by the simulator (1Min)")
        symbols = [s for s in (query.get("symbols") or "").split(",") if s]
        if not symbols:
            raise ApiError(422, 42210000, "symbols is required")
        start, end = _time(query, "start"), _time(query, "end")
        try:
            limit = int(query.get("limit") or 1000)
            offset = int(base64.b64decode(query["page_token"]).decode()) if query.get(
                "page_token") else 0
        except ValueError:
            raise ApiError(422, 42210000, "invalid limit or page_token") from None
        if not 1 <= limit <= 10000:
            raise ApiError(422, 42210000, "limit must be between 1 and 10000")
        sim = self.sim
        if sim.symbol not in symbols:
            return 200, {"bars": {}, "next_page_token": None}
        with sim._lock:
            rows = sim._complete_rows(start, end)
        if query.get("sort") == "desc":
            rows = rows[::-1]
        page = rows[offset:offset + limit]
        more = offset + limit < len(rows)
        token = base64.b64encode(str(offset + limit).encode()).decode() if more else None
        bars = {sim.symbol: [sim._bar_json(i) for i in page]} if len(page) else {}
        return 200, {"bars": bars, "next_page_token": token}

    def latest_bars(self, query: dict[str, str], **_: Any) -> Reply:
        sim = self.sim
        symbols = [s for s in (query.get("symbols") or "").split(",") if s]
        with sim._lock:
            rows = sim._complete_rows(None, None)
        if sim.symbol not in symbols or not len(rows):
            return 200, {"bars": {}}
        return 200, {"bars": {sim.symbol: sim._bar_json(int(rows[-1]))}}

    # -- sim-only --------------------------------------------------------------------------
    def ready(self, body: Any, **_: Any) -> Reply:
        text = body.get("t") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise ApiError(422, 42210000, 'body must be {"t": "<ISO time>"}')
        try:
            t = pd.Timestamp(text)          # naive: New York wall-clock (backtrader's clock)
        except ValueError:
            raise ApiError(422, 42210000, f"invalid t: {text}") from None
        self.sim.ready(t)
        return 200, self.status()[1]

    def status(self, **_: Any) -> Reply:
        sim = self.sim
        nxt = sim.next_bar_start
        return 200, {"now": iso(sim.now), "next_bar": iso(nxt) if nxt is not None else None,
                     "finished": sim.finished.is_set(), "bars_left": sim.bars_left,
                     "cash": num(sim.exchange.cash)}


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

