"""Shared machinery of the local fake HTTP servers: a thread, a request log, scripted faults.

A fake is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) answering in its own thread.
Every request is logged as a :class:`Seen`. Faults are scripted with :meth:`FakeServer.fail`:

- an ``int`` status (429, 500, 503, ...): that status with the service's error body
  (429 and 503 carry ``Retry-After: <retry_after>``);
- ``"slow"``: wait ``slow_seconds`` (cut short when the server stops), then answer normally;
- ``"drop"``: close the socket without sending anything.

A rule applies to the requests ``when`` matches (a predicate on :class:`Seen`, or None for
all), ``times`` times (None: forever). Use it as a context manager, or ``start``/``stop``.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

Fault = int | str


@dataclass
class Seen:
    """One request the server received."""

    number: int
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    chunk_start: dt.date | None = None     # the first date the request asks for, if known
    fault: Fault | None = None
    status: int | None = None


@dataclass
class _Rule:
    fault: Fault
    when: Callable[[Seen], bool] | None
    times: int | None
    hits: int = field(default=0)


class _Server(ThreadingHTTPServer):
    daemon_threads = False          # server_close() joins the handler threads
    block_on_close = True

    def handle_error(self, request, client_address) -> None:   # noqa: ANN001
        """A client that went away (timeouts, drops) is expected here: stay quiet."""


class FakeServer:
    """Base class; subclasses implement :meth:`route` and :meth:`error_body`."""

    retry_after = "0"
    slow_seconds = 5.0

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeServer:
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- scripting -------------------------------------------------------------------------
    def fail(self, fault: Fault, *, times: int | None = 1,
             when: Callable[[Seen], bool] | None = None) -> None:
        """Answer the matching requests with ``fault`` (see the module docstring)."""
        with self._lock:
            self._rules.append(_Rule(fault, when, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    # -- to implement ----------------------------------------------------------------------
    def route(self, seen: Seen) -> tuple[int, dict]:
        """The (status, JSON body) for a request that has no fault."""
        raise NotImplementedError

    def error_body(self, status: int, text: str) -> dict:
        raise NotImplementedError

    def chunk_start(self, path: str, query: dict[str, str]) -> dt.date | None:
        return None

    # -- plumbing --------------------------------------------------------------------------
    def _take_fault(self, seen: Seen) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                if rule.when is None or rule.when(seen):
                    rule.hits += 1
                    return rule.fault
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            seen = Seen(len(self.requests) + 1, parts.path, query, dict(handler.headers.items()))
            self.requests.append(seen)
        seen.chunk_start = self.chunk_start(parts.path, query)
        seen.fault = self._take_fault(seen)
        if seen.fault == "drop":
            handler.close_connection = True
            return
        if seen.fault == "slow":
            self._stopping.wait(self.slow_seconds)
        if isinstance(seen.fault, int):
            status, body = seen.fault, self.error_body(seen.fault, "injected fault")
        else:
            status, body = self.route(seen)
        seen.status = status
        self._send(handler, status, body)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            if status in (429, 503):
                handler.send_header("Retry-After", self.retry_after)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:          # the client gave up (timeout) and closed its socket
            handler.close_connection = True

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:   # noqa: N802 - http.server's naming
                fake._serve(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler
