"""A local stand-in for Alpaca's historical stock bars (wire format of alpaca_wire.md, section 5).

``GET /v2/stocks/bars?symbols=A,B&timeframe=1Min&start=...&end=...&limit=N[&page_token=T]``
answers ``{"bars": {symbol: [bar, ...]}, "next_page_token": token-or-null}`` from the bars
given to :meth:`AlpacaDataServer.add_bars` (dicts with ``t`` epoch ms and ``o, h, l, c, v``;
they are sent with ``t`` as an RFC 3339 string and ``n``/``vw`` present, as the SDK's ``Bar``
model requires). ``start``/``end`` are inclusive RFC 3339 times; a page holds at most
``min(limit, page_size)`` bars counted over all symbols; symbols without bars are left out of
``bars`` (``{}`` when none has any).

Auth: ``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY`` must match a pair in ``keys`` (else 401);
a key id in ``forbidden`` gets 403. Error bodies are ``{"code": ..., "message": ...}``.
Faults and the request log come from :class:`~tests.fakes._base.FakeServer`.
"""
from __future__ import annotations

import base64
import datetime as dt

import pandas as pd

from tests.fakes._base import FakeServer, Seen

NY = "America/New_York"
_TIMEFRAMES = {"1Min": "minute", "1Hour": "hour", "1Day": "day"}
_MESSAGES = {401: "request is not authorized", 403: "subscription does not permit querying "
             "recent SIP data", 404: "not found", 429: "too many requests",
             500: "internal server error"}


def _ms(text: str) -> int:
    return int(pd.Timestamp(text).timestamp() * 1000)


class AlpacaDataServer(FakeServer):
    """Fake Alpaca market-data REST API; see the module docstring."""

    def __init__(self, *, keys: dict[str, str] | None = None,
                 forbidden: tuple[str, ...] = (), page_size: int = 10000) -> None:
        super().__init__()
        self.keys = {"test-key": "test-secret"} if keys is None else dict(keys)
        self.forbidden, self.page_size = set(forbidden), page_size
        self.bars: dict[tuple[str, str], list[dict]] = {}

    def add_bars(self, symbol: str, timespan: str, bars: list[dict]) -> None:
        self.bars[(symbol, timespan)] = sorted(bars, key=lambda b: b["t"])

    def error_body(self, status: int, text: str) -> dict:
        return {"code": status * 100000 + 10000, "message": _MESSAGES.get(status, text)}

    def chunk_start(self, path: str, query: dict[str, str]) -> dt.date | None:
        if "start" not in query:
            return None
        return pd.Timestamp(query["start"]).tz_convert(NY).date()

    def route(self, seen: Seen) -> tuple[int, dict]:
        key = seen.headers.get("APCA-API-KEY-ID", "")
        if key in self.forbidden:
            return 403, self.error_body(403, "")
        if key not in self.keys or self.keys[key] != seen.headers.get("APCA-API-SECRET-KEY"):
            return 401, self.error_body(401, "")
        if seen.path != "/v2/stocks/bars":
            return 404, self.error_body(404, "")
        q = seen.query
        span = _TIMEFRAMES.get(q.get("timeframe", ""))
        if span is None or "symbols" not in q:
            return 400, {"code": 40010001, "message": "invalid timeframe or symbols"}
        lo = _ms(q["start"]) if "start" in q else 0
        hi = _ms(q["end"]) if "end" in q else 2**62
        rows = [(sym, b) for sym in q["symbols"].split(",")
                for b in self.bars.get((sym, span), []) if lo <= b["t"] <= hi]
        offset = int(base64.b64decode(q["page_token"])) if q.get("page_token") else 0
        size = min(int(q.get("limit", 10000)), self.page_size)
        out: dict[str, list[dict]] = {}
        for sym, b in rows[offset: offset + size]:
            out.setdefault(sym, []).append(_wire(b))
        more = offset + size < len(rows)
        token = base64.b64encode(str(offset + size).encode()).decode() if more else None
        return 200, {"bars": out, "next_page_token": token}


def _wire(bar: dict) -> dict:
    t = pd.Timestamp(bar["t"], unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"t": t, "o": bar["o"], "h": bar["h"], "l": bar["l"], "c": bar["c"],
            "v": bar.get("v", 0), "n": bar.get("n"), "vw": bar.get("vw")}
