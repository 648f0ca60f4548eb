"""A local stand-in for Polygon's aggregates and options-contracts endpoints (polygon_wire.md).

``GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`` answers from the
bars given to :meth:`PolygonServer.add_bars` (dicts with ``t`` epoch ms and ``o, h, l, c`` and
optionally ``v, vw, n``), filtered to ``from..to`` (``YYYY-MM-DD`` dates are whole New York
days; integers are epoch ms, inclusive). Pages hold ``page_size`` bars; every page but the last
carries ``next_url`` (on the real host, with a ``cursor``; the client keeps only path and
query), and the last page leaves the key out, as Polygon does.

``GET /v3/reference/options/contracts`` answers from the contracts given to
:meth:`PolygonServer.add_contracts` (wire dicts, see :func:`option_contract`; an optional
``listed`` date is the fake's own and never sent). Filters: ``underlying_ticker``,
``contract_type``, ``expiration_date`` and ``strike_price`` with ``.gt/.gte/.lt/.lte``,
``as_of`` and ``expired``, as Polygon's knowledge base describes them: ``as_of`` (default
today) gives the chain as it stood that day (listed by then, expiring on or after it);
``expired=true`` gives the contracts expired by today instead. Sorted by ticker; pages hold
``min(limit, contracts_page_size)`` contracts (``limit`` default 10, at most 1000); every page
but the last carries ``next_url`` with an opaque ``cursor`` that holds the query (the client
sends nothing else), and the last page leaves the key out.

Auth: ``Authorization: Bearer <key>`` (or ``?apiKey=``). A key in ``keys`` is served; a key
in ``forbidden`` gets 403 ``NOT_AUTHORIZED``; any other key 401 ``Unknown API Key``. A
ticker with no bars gets 200 with ``resultsCount: 0`` and no ``results``; a ticker in
``not_found`` gets 404. Faults and the request log come from :class:`~tests.fakes._base.FakeServer`.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid

import pandas as pd

from tests.fakes._base import FakeServer, Seen

NY = "America/New_York"
_PATH = re.compile(r"^/v2/aggs/ticker/(?P<ticker>[^/]+)/range/(?P<mult>\d+)/(?P<span>[a-z]+)/"
                   r"(?P<frm>[^/]+)/(?P<to>[^/]+)$")
_CONTRACTS = "/v3/reference/options/contracts"
_OPS = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b, None: lambda a, b: a == b}


def option_contract(underlying: str, expiry: dt.date, right: str, strike: float, *,
                    shares: int = 100, listed: dt.date | None = None) -> dict:
    """One contract as Polygon sends it (``listed``: the fake's own, for ``as_of``)."""
    ticker = f"O:{underlying}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"
    wire = {"cfi": "OCASPS" if right == "C" else "OPASPS",
            "contract_type": "call" if right == "C" else "put",
            "exercise_style": "american", "expiration_date": expiry.isoformat(),
            "primary_exchange": "BATO", "shares_per_contract": shares,
            "strike_price": int(strike) if float(strike).is_integer() else strike,
            "ticker": ticker, "underlying_ticker": underlying}
    if listed is not None:
        wire["listed"] = listed.isoformat()
    return wire


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
        self.contracts: list[dict] = []
        self.contracts_page_size = 1000
        self.today = dt.date.today()

    def add_contracts(self, contracts: list[dict]) -> None:
        self.contracts = sorted([*self.contracts, *contracts], key=lambda c: c["ticker"])

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
        if path == _CONTRACTS:
            query = _cursor_query(query)
            return dt.date.fromisoformat(query["as_of"]) if "as_of" in query else None
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
        if seen.path == _CONTRACTS:
            return self._contracts(_cursor_query(seen.query))
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

    def _contracts(self, q: dict[str, str]) -> tuple[int, dict]:
        try:
            as_of = dt.date.fromisoformat(q.get("as_of") or self.today.isoformat())
            limit = min(int(q.get("limit", "10")), 1000)
            rows = [c for c in self.contracts if self._matches(c, q, as_of)]
        except ValueError as exc:
            return 400, self.error_body(400, f"Could not parse a query parameter: {exc}")
        offset = int(q.get("offset", "0"))
        size = min(limit, self.contracts_page_size)
        page = [{k: v for k, v in c.items() if k != "listed"}
                for c in rows[offset: offset + size]]
        body = {"results": page, "status": "OK", "request_id": uuid.uuid4().hex}
        if offset + size < len(rows):
            cursor = base64.urlsafe_b64encode(json.dumps(
                {**{k: v for k, v in q.items() if k != "offset"}, "offset": str(offset + size)}
            ).encode()).decode()
            body["next_url"] = f"https://api.polygon.io{_CONTRACTS}?cursor={cursor}"
        return 200, body

    def _matches(self, c: dict, q: dict[str, str], as_of: dt.date) -> bool:
        if q.get("underlying_ticker") not in (None, c["underlying_ticker"]):
            return False
        if q.get("contract_type") not in (None, c["contract_type"]):
            return False
        expiry = dt.date.fromisoformat(c["expiration_date"])
        listed = dt.date.fromisoformat(c.get("listed", "1990-01-01"))
        if q.get("expired", "false") == "true":
            if not (expiry < self.today and listed <= as_of):
                return False
        elif not listed <= as_of <= expiry:
            return False
        for key, value in q.items():
            field, _, op = key.partition(".")
            if field == "expiration_date" and op in _OPS or key == "expiration_date":
                if not _OPS[op or None](expiry, dt.date.fromisoformat(value)):
                    return False
            if field == "strike_price" and op in _OPS or key == "strike_price":
                if not _OPS[op or None](float(c["strike_price"]), float(value)):
                    return False
        return True


def _cursor_query(query: dict[str, str]) -> dict[str, str]:
    """The query a contracts request stands for: its own, or the one its cursor holds."""
    if "cursor" not in query:
        return query
    return json.loads(base64.urlsafe_b64decode(query["cursor"]))
