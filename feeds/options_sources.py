"""Option contracts and option minute bars from Polygon or Alpaca, one request at a time.

The adapters extend the bar downloaders' (:class:`feeds.polygon.PolygonBars`,
:class:`feeds.alpaca_bars.AlpacaBars`), so they inherit their timeouts on every request and
their mapping of failures to one-line :class:`~feeds._fetch.FetchError` s (retryable: 429,
5xx, timeouts, dropped connections). :mod:`feeds.options_fetch` retries each call.

- **Polygon.** ``list_options_contracts`` with ``as_of`` = the session: the chain as it stood
  that day, which includes contracts that have expired since (Polygon's ``expired=true``
  lists contracts expired *by today* and is not sent: with ``as_of`` it is not needed).
  ``list_aggs`` on the ``O:`` tickers, one contract per request, ``next_url`` pages followed.
  Contracts with a deliverable other than 100 shares (adjusted after corporate actions) are
  left out.
- **Alpaca.** ``TradingClient.get_option_contracts`` on the trading host (contract listing
  lives there, not on the data host), ``status=inactive`` for expiries before today and
  ``active`` for the rest, ``page_token`` pages followed here (the SDK does not).
  ``OptionHistoricalDataClient.get_option_bars`` on up to 100 symbols a request (the API's
  limit), pages followed by the SDK.

The underlying's open is its first regular-session minute bar's open (a bar in the first
15 minutes), else its daily bar's open.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from urllib3.exceptions import HTTPError

from feeds._fetch import FetchError, status_error
from feeds.alpaca_bars import AlpacaBars
from feeds.polygon import PolygonBars, _message
from mtbt.http import ResilientSession, harden
from mtbt.options.occ import parse_occ
from mtbt.sessions import NY, Session

__all__ = ["BAR_COLUMNS", "AlpacaOptions", "Contract", "OptionSource", "PolygonOptions"]

BAR_COLUMNS = ("contract", "timestamp", "open", "high", "low", "close", "volume", "vwap",
               "trades")
_OPENING = pd.Timedelta(minutes=15)     # the window searched for the underlying's first bar


@dataclass(frozen=True, order=True)
class Contract:
    """One option contract: its OCC symbol (no ``O:``) and what the symbol says."""

    symbol: str
    expiry: dt.date
    right: str
    strike: float


class OptionSource(Protocol):
    """What :mod:`feeds.options_fetch` needs from a source (every call one retryable unit)."""

    name: str
    batch: int          # contracts per ``bars`` call

    def underlying_open(self, symbol: str, session: Session) -> float | None: ...

    def contracts(self, underlying: str, day: dt.date, last_expiry: dt.date, low: float,
                  high: float) -> list[Contract]: ...

    def bars(self, symbols: list[str], first: pd.Timestamp,
             last: pd.Timestamp) -> pd.DataFrame: ...

    def close(self) -> None: ...


def contract_of(symbol: str) -> Contract | None:
    """The :class:`Contract` of an OCC symbol (``O:`` prefix allowed), None if it is not one."""
    parsed = parse_occ(symbol.removeprefix("O:"))
    if parsed is None:
        return None
    _, expiry, right, strike = parsed
    return Contract(symbol.removeprefix("O:"), expiry, right, strike)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows (contract, epoch ms, o, h, l, c, v, vw, n) as a bars frame, UTC timestamps."""
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in BAR_COLUMNS]
    out = {"contract": np.asarray(cols[0], dtype=object),
           "timestamp": pd.to_datetime(np.asarray(cols[1], dtype="int64"), unit="ms",
                                       utc=True)}
    for name, values in zip(BAR_COLUMNS[2:], cols[2:], strict=True):
        out[name] = np.asarray([np.nan if v is None else v for v in values], dtype="float64")
    return pd.DataFrame(out)


def _refusal(source: str, status: int | None, message: str, symbol: str, what: str,
             key_env: str) -> FetchError:
    """:func:`feeds._fetch.status_error`, with a 403 that names what was refused."""
    if status == 403:
        said = f"HTTP 403: {message}" if message else "HTTP 403"
        return FetchError(f"{source} refused access to {what} ({said}); your plan may not "
                          f"include this data")
    return status_error(source, status, message, symbol, "minute", key_env)


class PolygonOptions(PolygonBars):
    """Polygon's option contracts and bars (see the module docstring)."""

    batch = 1

    def underlying_open(self, symbol: str, session: Session) -> float | None:
        first = pd.Timestamp(session.open, tz=NY)
        start = int(first.timestamp() * 1000)
        with self._errors(symbol, f"minute bars of {symbol}"):
            aggs = list(self._client.list_aggs(symbol, 1, "minute", start,
                                               start + int(_OPENING.total_seconds() * 1000) - 1,
                                               adjusted=True, sort="asc", limit=50000))
            opens = [a.open for a in aggs if a.timestamp is not None and a.timestamp >= start
                     and a.open]
            if opens:
                return float(opens[0])
            day = session.date.isoformat()
            aggs = list(self._client.list_aggs(symbol, 1, "day", day, day, adjusted=True,
                                               sort="asc", limit=50000))
        opens = [a.open for a in aggs if a.open]
        return float(opens[0]) if opens else None

    def contracts(self, underlying: str, day: dt.date, last_expiry: dt.date, low: float,
                  high: float) -> list[Contract]:
        with self._errors(underlying, f"the option contracts of {underlying}"):
            listed = list(self._client.list_options_contracts(
                underlying_ticker=underlying, expiration_date_gte=day.isoformat(),
                expiration_date_lte=last_expiry.isoformat(), strike_price_gte=low,
                strike_price_lte=high, as_of=day.isoformat(), limit=1000))
        out = []
        for c in listed:
            contract = contract_of(c.ticker or "")
            if contract is not None and c.shares_per_contract in (None, 100):
                out.append(contract)
        return out

    def bars(self, symbols: list[str], first: pd.Timestamp,
             last: pd.Timestamp) -> pd.DataFrame:
        lo, hi = int(first.timestamp() * 1000), int(last.timestamp() * 1000) - 1
        rows = []
        for symbol in symbols:
            ticker = f"O:{symbol}"
            with self._errors(ticker, f"minute bars of {ticker}"):
                aggs = list(self._client.list_aggs(ticker, 1, "minute", lo, hi, adjusted=True,
                                                   sort="asc", limit=50000))
            rows += [(symbol, a.timestamp, a.open, a.high, a.low, a.close, a.volume, a.vwap,
                      a.transactions) for a in aggs]
        return _frame(rows)

    @contextlib.contextmanager
    def _errors(self, symbol: str, what: str) -> Iterator[None]:
        """SDK failures as FetchErrors, as :meth:`PolygonBars.fetch` maps them."""
        from polygon.exceptions import BadResponse

        try:
            yield
        except BadResponse as exc:
            raise _refusal(self.name, self._pool.last_status, _message(str(exc), self._key),
                           symbol, what, "POLYGON_API_KEY") from None
        except HTTPError as exc:
            raise FetchError(f"{self.name}: {self._why(exc)}", retryable=True) from None


class AlpacaOptions(AlpacaBars):
    """Alpaca's option contracts (trading host) and option bars (data host).

    Parameters
    ----------
    api_key, secret_key : the Alpaca keys.
    data_url, trading_url : base URLs (no ``/v2``) of the data and the trading API.
    timeout : (connect, read) seconds for every request.
    today : the day that splits expired (inactive) from listed (active) contracts.
    """

    batch = 100

    def __init__(self, api_key: str, secret_key: str, data_url: str, trading_url: str,
                 timeout: tuple[float, float], today: dt.date) -> None:
        super().__init__(api_key, secret_key, data_url, timeout)
        with warnings.catch_warnings():     # alpaca-py 0.44 imports websockets.legacy
            warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
            from alpaca.data.historical import OptionHistoricalDataClient
            from alpaca.trading.client import TradingClient

        self._today = today
        self._options = OptionHistoricalDataClient(api_key, secret_key,
                                                   url_override=data_url.rstrip("/"))
        self._trading = TradingClient(api_key, secret_key, paper=True,
                                      url_override=trading_url.rstrip("/"))
        for client in (self._options, self._trading):
            harden(client, ResilientSession(timeout, attempts=1))   # the caller retries

    def underlying_open(self, symbol: str, session: Session) -> float | None:
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        first = pd.Timestamp(session.open, tz=NY)
        minute = StockBarsRequest(symbol_or_symbols=symbol, timeframe=TimeFrame.Minute,
                                  start=first.to_pydatetime(),
                                  end=(first + _OPENING - pd.Timedelta(seconds=1))
                                  .to_pydatetime())
        day = pd.Timestamp(session.date, tz=NY)
        daily = StockBarsRequest(symbol_or_symbols=symbol, timeframe=TimeFrame.Day,
                                 start=day.to_pydatetime(),
                                 end=(day + pd.Timedelta(days=1, seconds=-1)).to_pydatetime())
        for request, earliest in ((minute, first), (daily, day)):
            with self._errors(symbol, f"bars of {symbol}"):
                bars = self._client.get_stock_bars(request).data.get(symbol, [])
            opens = [b.open for b in bars if b.timestamp >= earliest and b.open]
            if opens:
                return float(opens[0])
        return None

    def contracts(self, underlying: str, day: dt.date, last_expiry: dt.date, low: float,
                  high: float) -> list[Contract]:
        from alpaca.trading.enums import AssetStatus
        from alpaca.trading.requests import GetOptionContractsRequest

        statuses = ([AssetStatus.INACTIVE] if day <= self._today else []) + \
                   ([AssetStatus.ACTIVE] if last_expiry >= self._today else [])
        out: dict[str, Contract] = {}
        for status in statuses:
            token = None
            while True:
                request = GetOptionContractsRequest(
                    underlying_symbols=[underlying], status=status, expiration_date_gte=day,
                    expiration_date_lte=last_expiry, strike_price_gte=_strike(low),
                    strike_price_lte=_strike(high), limit=10000, page_token=token)
                with self._errors(underlying, f"the option contracts of {underlying}"):
                    page = self._trading.get_option_contracts(request)
                for c in page.option_contracts or []:
                    contract = contract_of(c.symbol)
                    if contract is not None and c.size in ("100", "100.0"):
                        out[contract.symbol] = contract
                token = page.next_page_token
                if not token:
                    break
        return list(out.values())

    def bars(self, symbols: list[str], first: pd.Timestamp,
             last: pd.Timestamp) -> pd.DataFrame:
        from alpaca.data.requests import OptionBarsRequest
        from alpaca.data.timeframe import TimeFrame

        request = OptionBarsRequest(symbol_or_symbols=list(symbols), timeframe=TimeFrame.Minute,
                                    start=first.to_pydatetime(),
                                    end=(last - pd.Timedelta(seconds=1)).to_pydatetime())
        with self._errors(symbols[0], f"the option bars of {len(symbols)} contract(s)"):
            barset = self._options.get_option_bars(request)
        rows = [(symbol, int(b.timestamp.timestamp() * 1000), b.open, b.high, b.low, b.close,
                 b.volume, b.vwap, b.trade_count)
                for symbol, items in barset.data.items() for b in items]
        return _frame(rows)

    def close(self) -> None:
        super().close()
        self._options._session.close()
        self._trading._session.close()

    def _errors(self, symbol: str, what: str):
        """SDK failures as FetchErrors, as :meth:`AlpacaBars.fetch` maps them, with a 403
        that names ``what`` was refused."""
        return self._sdk_errors(symbol, functools.partial(_refusal, what=what))


def _strike(value: float) -> str:
    """A strike bound as Alpaca's query takes it (a decimal string)."""
    return np.format_float_positional(round(value, 4), trim="-")
