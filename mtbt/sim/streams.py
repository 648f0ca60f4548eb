"""The two websocket endpoints: trade_updates (``/stream``, JSON) and market data
(``/v2/iex`` or ``/v2/sip``, msgpack), on one ``websockets`` server in its own thread.

Every connection has a queue and a writer task, so its messages go out in the order they
were published; publishing from other threads is thread-safe and never blocks.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["StreamServer"]

log = logging.getLogger(__name__)

DATA_PATHS = ("/v2/iex", "/v2/sip", "/v2/test")
TRADE_PATH = "/stream"
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds",
            "orderbooks", "news")


class _Conn:
    def __init__(self, ws: ServerConnection, kind: str) -> None:
        self.ws, self.kind = ws, kind
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.authed = False
        self.listening = False
        self.subs: dict[str, set[str]] = {c: set() for c in CHANNELS}

    def wants_bar(self, symbol: str) -> bool:
        bars = self.subs["bars"]
        return self.authed and (symbol in bars or "*" in bars)


class StreamServer:
    """Both streams on 127.0.0.1:``port``; ``on_change`` is called (from the server thread)
    whenever the set of listeners/subscribers changes."""

    def __init__(self, keys: tuple[str, str], drop_every: float = 0.0,
                 on_change: Callable[[], None] | None = None) -> None:
        self.keys = keys
        self.drop_every = drop_every
        self.on_change = on_change or (lambda: None)
        self.port = 0
        self.connections = 0                 # connections accepted, ever
        self.drops = 0                       # connections closed by the drop fault
        self._conns: set[_Conn] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mtbt-sim-streams", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or not self.port:
            raise RuntimeError(f"stream server did not start: {self._error!r}")

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:          # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0, max_size=2**22) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            dropper = (asyncio.create_task(self._dropper()) if self.drop_every > 0 else None)
            await self._stop
            if dropper is not None:
                dropper.cancel()

    # -- publishing (any thread) -----------------------------------------------------------
    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def publish_trade(self, events: list[dict]) -> None:
        """Send trade_updates ``data`` dicts, in order, to every listening client."""
        frames = [json.dumps({"stream": "trade_updates", "data": e}).encode() for e in events]
        self._call(self._put_trade, frames)

    def publish_bar(self, symbol: str, message: dict) -> None:
        """Send one bar message (one per frame) to clients subscribed to ``symbol``'s bars."""
        self._call(self._put_bar, symbol, msgpack.packb([message]))

    def _put_trade(self, frames: list[bytes]) -> None:
        for conn in self._conns:
            if conn.kind == "trade" and conn.listening:
                for frame in frames:
                    conn.queue.put_nowait(frame)

    def _put_bar(self, symbol: str, frame: bytes) -> None:
        for conn in self._conns:
            if conn.kind == "data" and conn.wants_bar(symbol):
                conn.queue.put_nowait(frame)

    # -- state (read from any thread) ------------------------------------------------------
    def bar_subscribers(self, symbol: str) -> int:
        return sum(1 for c in list(self._conns) if c.kind == "data" and c.wants_bar(symbol))

    def trade_listeners(self) -> int:
        return sum(1 for c in list(self._conns) if c.kind == "trade" and c.listening)

    # -- connections -----------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path.split("?", 1)[0].rstrip("/")
        if path == TRADE_PATH:
            kind = "trade"
        elif path in DATA_PATHS:
            kind = "data"
        else:
            await ws.close(1008, f"unknown path {path}")
            return
        conn = _Conn(ws, kind)
        self._conns.add(conn)
        self.connections += 1
        writer = asyncio.create_task(self._writer(conn))
        try:
            if kind == "trade":
                await self._trade(conn)
            else:
                await self._data(conn)
        except ConnectionClosed:
            pass
        finally:
            self._conns.discard(conn)
            conn.queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await asyncio.wait_for(writer, 2)
            self.on_change()

    async def _writer(self, conn: _Conn) -> None:
        while True:
            frame = await conn.queue.get()
            if frame is None:
                return
            try:
                await conn.ws.send(frame)
            except ConnectionClosed:
                return

    async def _dropper(self) -> None:
        while True:
            await asyncio.sleep(self.drop_every)
            self._drop_now()

    def drop_all(self) -> None:
        """Close every connection now (any thread): the drop fault, once."""
        self._call(self._drop_now)

    def _drop_now(self) -> None:
        for conn in list(self._conns):
            self.drops += 1
            asyncio.create_task(conn.ws.close(1012, "mtbt sim: dropped (fault)"))

    async def _trade(self, conn: _Conn) -> None:
        async for raw in conn.ws:
            try:
                msg = json.loads(raw)
                action, data = msg.get("action"), msg.get("data") or {}
            except (ValueError, AttributeError):
                continue
            if action == "authenticate":
                conn.authed = (data.get("key_id"), data.get("secret_key")) == self.keys
                reply = {"stream": "authorization",
                         "data": {"status": "authorized" if conn.authed else "unauthorized",
                                  "action": "authenticate"}}
                if not conn.authed:
                    reply["data"]["message"] = "access key verification failed"
                conn.queue.put_nowait(json.dumps(reply).encode())
                if not conn.authed:
                    await asyncio.sleep(0.05)
                    await conn.ws.close(1008, "unauthorized")
                    return
            elif action == "listen" and conn.authed:
                streams = [s for s in data.get("streams") or [] if s == "trade_updates"]
                conn.listening = bool(streams)
                conn.queue.put_nowait(json.dumps(
                    {"stream": "listening", "data": {"streams": streams}}).encode())
                self.on_change()

    async def _data(self, conn: _Conn) -> None:
        conn.queue.put_nowait(msgpack.packb([{"T": "success", "msg": "connected"}]))
        async for raw in conn.ws:
            try:
                msg = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
                action = msg.get("action")
            except (ValueError, AttributeError, msgpack.UnpackException):
                conn.queue.put_nowait(msgpack.packb([{"T": "error", "code": 400,
                                                      "msg": "invalid syntax"}]))
                continue
            if action == "auth":
                if conn.authed:
                    reply = {"T": "error", "code": 403, "msg": "already authenticated"}
                elif (msg.get("key"), msg.get("secret")) == self.keys:
                    conn.authed = True
                    reply = {"T": "success", "msg": "authenticated"}
                else:
                    conn.queue.put_nowait(msgpack.packb([{"T": "error", "code": 402,
                                                          "msg": "auth failed"}]))
                    await asyncio.sleep(0.05)
                    await conn.ws.close(1008, "auth failed")
                    return
                conn.queue.put_nowait(msgpack.packb([reply]))
            elif action in ("subscribe", "unsubscribe"):
                if not conn.authed:
                    conn.queue.put_nowait(msgpack.packb([{"T": "error", "code": 401,
                                                          "msg": "not authenticated"}]))
                    continue
                for channel in CHANNELS:
                    symbols = msg.get(channel) or []
                    if action == "subscribe":
                        conn.subs[channel].update(symbols)
                    else:
                        conn.subs[channel].difference_update(symbols)
                reply = {"T": "subscription"}
                reply.update({c: sorted(conn.subs[c]) for c in CHANNELS})
                conn.queue.put_nowait(msgpack.packb([reply]))
                self.on_change()
