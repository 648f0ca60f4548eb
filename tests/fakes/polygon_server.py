"""A local stand-in for Polygon's aggregates endpoint (wire format of polygon_wire.md).

``GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`` answers from the
bars given to :meth:`PolygonServer.add_bars` (dicts with ``t`` epoch ms and ``o, h, l, c`` and
optionally ``v, vw, n``), filtered to ``from..to`` (``YYYY-MM-DD`` dates are whole New York
days; integers are epoch ms, inclusive). Pages hold ``page_size`` bars; every page but the last
carries ``next_url`` (on the real host, with a ``cursor``; the client keeps only path and
query), and the last page leaves the key out, as Polygon does.

Auth: ``Authorization: Bearer <key>`` (or ``?apiKey=``). A key in ``keys`` is served; a key
in ``forbidden`` gets 403 ``NOT_AUTHORIZED``; any other key 401 ``Unknown API Key``. A
ticker with no bars gets 200 with ``resultsCount: 0`` and no ``results``; a ticker in
``not_found`` gets 404. Faults and the request log come from :class:`~tests.fakes._base.FakeServer`.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pandas as pd

from tests.fakes._base import FakeServer, Seen

NY = "America/New_York"
_PATH = re.compile(r"^/v2/aggs/ticker/(?P<ticker>[^/]+)/range/(?P<mult>\d+)/(?P<span>[a-z]+)/"
                   r"(?P<frm>[^/]+)/(?P<to>[^/]+)$")


def _ms(value: str, *, end: bool) -> int:
    """A path bound as epoch ms: an int as is, a date as the start or end of its NY day."""
    if value.isdigit():
        return int(value)
    day = pd.Timestamp(dt.date.fromisoformat(value), tz=NY)
    if end:
        day += pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
    return int(day.timestamp() * 1000)


class PolygonServer(FakeServer):
    """Fake Polygon REST API; see the module docstring."""

    def __init__(self, *, keys: tuple[str, ...] = ("test-key",),
                 forbidden: tuple[str, ...] = (), page_size: int = 5000) -> None:
        super().__init__()
        self.keys, self.forbidden, self.page_size = set(keys), set(forbidden), page_size
        self.bars: dict[tuple[str, str], list[dict]] = {}
        self.not_found: set[str] = set()

    def add_bars(self, ticker: str, timespan: str, bars: list[dict]) -> None:
        self.bars[(ticker, timespan)] = sorted(bars, key=lambda b: b["t"])

    def error_body(self, status: int, text: str) -> dict:
        rid = uuid.uuid4().hex
        if status == 403:
            return {"status": "NOT_AUTHORIZED", "request_id": rid,
                    "message": "You are not entitled to this data. Please upgrade your plan."}
        if status == 429:
            text = "You've exceeded the maximum requests per minute, please wait or upgrade."
        return {"status": "ERROR", "request_id": rid, "error": text}

    def chunk_start(self, path: str, query: dict[str, str]) -> dt.date | None:
        m = _PATH.match(path)
        if not m:
            return None
        return pd.Timestamp(_ms(m["frm"], end=False), unit="ms", tz="UTC").tz_convert(NY).date()

    def route(self, seen: Seen) -> tuple[int, dict]:
        auth = seen.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else \
            seen.query.get("apiKey", "")
        if key in self.forbidden:
            return 403, self.error_body(403, "")
        if key not in self.keys:
            return 401, self.error_body(401, "Unknown API Key")
        m = _PATH.match(seen.path)
        if not m:
            return 404, self.error_body(404, "Not found")
        return self._aggs(m["ticker"], m["span"], m["frm"], m["to"], seen.path,
                          int(seen.query.get("cursor", "0")))

    def _aggs(self, ticker: str, span: str, frm: str, to: str, path: str,
              offset: int) -> tuple[int, dict]:
        if ticker in self.not_found:
            return 404, self.error_body(404, f"Ticker {ticker} not found")
        lo, hi = _ms(frm, end=False), _ms(to, end=True)
        rows = [b for b in self.bars.get((ticker, span), []) if lo <= b["t"] <= hi]
        body = {"ticker": ticker, "queryCount": len(rows), "adjusted": True, "status": "OK",
                "request_id": uuid.uuid4().hex}
        page = rows[offset: offset + self.page_size]
        if not page:
            return 200, {**body, "resultsCount": 0}
        body.update(resultsCount=len(page), count=len(page), results=page)
        if offset + self.page_size < len(rows):
            base = path.rsplit("/", 2)[0]
            body["next_url"] = (f"https://api.polygon.io{base}/{lo}/{hi}"
                                f"?cursor={offset + self.page_size}")
        return 200, body
