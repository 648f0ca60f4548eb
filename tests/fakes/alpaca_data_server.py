"""A local stand-in for Alpaca's historical bars and option contracts (alpaca_wire.md, 2.1 and 5).

``GET /v2/stocks/bars?symbols=A,B&timeframe=1Min&start=...&end=...&limit=N[&page_token=T]``
answers ``{"bars": {symbol: [bar, ...]}, "next_page_token": token-or-null}`` from the bars
given to :meth:`AlpacaDataServer.add_bars` (dicts with ``t`` epoch ms and ``o, h, l, c, v``;
they are sent with ``t`` as an RFC 3339 string and ``n``/``vw`` present, as the SDK's ``Bar``
model requires). ``start``/``end`` are inclusive RFC 3339 times; a page holds at most
``min(limit, page_size)`` bars counted over all symbols; symbols without bars are left out of
``bars`` (``{}`` when none has any).

``GET /v1beta1/options/bars`` has the same query and answer shape, from the bars given to
:meth:`AlpacaDataServer.add_option_bars` (OCC symbols); more than 100 symbols get 400.

``GET /v2/options/contracts`` (a trading-host route: point the trading URL here too) answers
``{"option_contracts": [...], "next_page_token": token-or-null}`` from the contracts given to
:meth:`AlpacaDataServer.add_contracts` (wire dicts, see :func:`option_contract`; ``strike_price``
and ``size`` are strings, as Alpaca sends them). Filters: ``underlying_symbols`` (comma list),
``status`` (default ``active``; a contract is ``inactive`` once its expiry is before
``today``), ``type``, ``root_symbol``, ``expiration_date``, ``expiration_date_gte/lte``,
``strike_price_gte/lte``. A page holds ``min(limit, contracts_page_size)`` contracts (``limit``
default 100, at most 10000); sorted by expiry, then symbol.

Auth: ``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY`` must match a pair in ``keys`` (else 401);
a key id in ``forbidden`` gets 403. Error bodies are ``{"code": ..., "message": ...}``.
Faults and the request log come from :class:`~tests.fakes._base.FakeServer`.
"""
from __future__ import annotations

import base64
import datetime as dt
import uuid

import pandas as pd

from tests.fakes._base import FakeServer, Seen

NY = "America/New_York"
_TIMEFRAMES = {"1Min": "minute", "1Hour": "hour", "1Day": "day"}
_MESSAGES = {401: "request is not authorized", 403: "subscription does not permit querying "
             "recent SIP data", 404: "not found", 429: "too many requests",
             500: "internal server error"}


_CONTRACTS = "/v2/options/contracts"
_BARS = {"/v2/stocks/bars": "stocks", "/v1beta1/options/bars": "options"}


def _ms(text: str) -> int:
    return int(pd.Timestamp(text).timestamp() * 1000)


def option_contract(underlying: str, expiry: dt.date, right: str, strike: float, *,
                    size: str = "100") -> dict:
    """One contract as Alpaca's ``/v2/options/contracts`` sends it (``status`` is set when
    served)."""
    symbol = f"{underlying}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"
    kind = "call" if right == "C" else "put"
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, symbol)), "symbol": symbol,
            "name": f"{underlying} {expiry:%b %d %Y} {strike:g} {kind.capitalize()}",
            "status": "active", "tradable": True, "expiration_date": expiry.isoformat(),
            "root_symbol": underlying, "underlying_symbol": underlying,
            "underlying_asset_id": "b28f4066-5c6d-479b-a2af-85dc1a8f16fb", "type": kind,
            "style": "american", "strike_price": f"{strike:g}", "multiplier": "100",
            "size": size, "open_interest": "1200", "open_interest_date": None,
            "close_price": None, "close_price_date": None}


class AlpacaDataServer(FakeServer):
    """Fake Alpaca market-data REST API; see the module docstring."""

    def __init__(self, *, keys: dict[str, str] | None = None,
                 forbidden: tuple[str, ...] = (), page_size: int = 10000) -> None:
        super().__init__()
        self.keys = {"test-key": "test-secret"} if keys is None else dict(keys)
        self.forbidden, self.page_size = set(forbidden), page_size
        self.bars: dict[tuple[str, str], list[dict]] = {}
        self.option_bars: dict[tuple[str, str], list[dict]] = {}
        self.contracts: list[dict] = []
        self.contracts_page_size = 10000
        self.today = dt.date.today()

    def add_bars(self, symbol: str, timespan: str, bars: list[dict]) -> None:
        self.bars[(symbol, timespan)] = sorted(bars, key=lambda b: b["t"])

    def add_option_bars(self, symbol: str, bars: list[dict]) -> None:
        """1-minute bars of one option contract (OCC symbol)."""
        self.option_bars[(symbol, "minute")] = sorted(bars, key=lambda b: b["t"])

    def add_contracts(self, contracts: list[dict]) -> None:
        self.contracts = sorted([*self.contracts, *contracts],
                                key=lambda c: (c["expiration_date"], c["symbol"]))

    def error_body(self, status: int, text: str) -> dict:
        return {"code": status * 100000 + 10000, "message": _MESSAGES.get(status, text)}

    def chunk_start(self, path: str, query: dict[str, str]) -> dt.date | None:
        if path == _CONTRACTS and "expiration_date_gte" in query:
            return dt.date.fromisoformat(query["expiration_date_gte"])
        if "start" not in query:
            return None
        return pd.Timestamp(query["start"]).tz_convert(NY).date()

    def route(self, seen: Seen) -> tuple[int, dict]:
        key = seen.headers.get("APCA-API-KEY-ID", "")
        if key in self.forbidden:
            return 403, self.error_body(403, "")
        if key not in self.keys or self.keys[key] != seen.headers.get("APCA-API-SECRET-KEY"):
            return 401, self.error_body(401, "")
        if seen.path == _CONTRACTS:
            return self._contracts(seen.query)
        if seen.path not in _BARS:
            return 404, self.error_body(404, "")
        q = seen.query
        span = _TIMEFRAMES.get(q.get("timeframe", ""))
        if span is None or "symbols" not in q:
            return 400, {"code": 40010001, "message": "invalid timeframe or symbols"}
        symbols = q["symbols"].split(",")
        store = self.bars if _BARS[seen.path] == "stocks" else self.option_bars
        if store is self.option_bars and len(symbols) > 100:
            return 400, {"code": 40010001, "message": "too many symbols (at most 100)"}
        lo = _ms(q["start"]) if "start" in q else 0
        hi = _ms(q["end"]) if "end" in q else 2**62
        rows = [(sym, b) for sym in symbols
                for b in store.get((sym, span), []) if lo <= b["t"] <= hi]
        offset = int(base64.b64decode(q["page_token"])) if q.get("page_token") else 0
        size = min(int(q.get("limit", 10000)), self.page_size)
        out: dict[str, list[dict]] = {}
        for sym, b in rows[offset: offset + size]:
            out.setdefault(sym, []).append(_wire(b))
        more = offset + size < len(rows)
        token = base64.b64encode(str(offset + size).encode()).decode() if more else None
        return 200, {"bars": out, "next_page_token": token}

    def _contracts(self, q: dict[str, str]) -> tuple[int, dict]:
        try:
            rows = [self._served(c) for c in self.contracts]
            rows = [c for c in rows if _contract_matches(c, q)]
            size = min(int(q.get("limit", "100")), 10000, self.contracts_page_size)
        except ValueError as exc:
            return 422, {"code": 42210000, "message": f"invalid query: {exc}"}
        offset = int(base64.b64decode(q["page_token"])) if q.get("page_token") else 0
        more = offset + size < len(rows)
        token = base64.b64encode(str(offset + size).encode()).decode() if more else None
        return 200, {"option_contracts": rows[offset: offset + size],
                     "next_page_token": token}

    def _served(self, contract: dict) -> dict:
        expired = dt.date.fromisoformat(contract["expiration_date"]) < self.today
        return {**contract, "status": "inactive" if expired else "active",
                "tradable": not expired}


def _contract_matches(c: dict, q: dict[str, str]) -> bool:
    if "underlying_symbols" in q and c["underlying_symbol"] not in \
            q["underlying_symbols"].split(","):
        return False
    for key, field in (("status", "status"), ("type", "type"), ("root_symbol", "root_symbol"),
                       ("expiration_date", "expiration_date")):
        if q.get(key, "active" if key == "status" else None) not in (None, c[field]):
            return False
    expiry = dt.date.fromisoformat(c["expiration_date"])
    strike = float(c["strike_price"])
    checks = (("expiration_date_gte", lambda v: expiry >= dt.date.fromisoformat(v)),
              ("expiration_date_lte", lambda v: expiry <= dt.date.fromisoformat(v)),
              ("strike_price_gte", lambda v: strike >= float(v)),
              ("strike_price_lte", lambda v: strike <= float(v)))
    return all(check(q[key]) for key, check in checks if key in q)


def _wire(bar: dict) -> dict:
    t = pd.Timestamp(bar["t"], unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"t": t, "o": bar["o"], "h": bar["h"], "l": bar["l"], "c": bar["c"],
            "v": bar.get("v", 0), "n": bar.get("n"), "vw": bar.get("vw")}
