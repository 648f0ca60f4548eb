"""Alpaca stock bars through alpaca-py's ``StockHistoricalDataClient.get_stock_bars``.

alpaca-py calls ``requests.Session.request`` without a timeout, so a stalled server hangs it
forever. :class:`AlpacaBars` gives the client a session whose ``request`` adds
``timeout=(connect, read)`` to every call. alpaca-py's own retry (429 and 504 only, a fixed 3 s
sleep) is switched off (``_retry = 0``): the chunk loop in :mod:`feeds.download` retries 429,
5xx, timeouts and dropped connections with exponential backoff instead.

A chunk is requested from 00:00 New York on its first day to 23:59:59 on its last, with
``adjustment=split`` (like Polygon's ``adjusted=true``) and Alpaca's default feed; the client
follows ``next_page_token`` itself.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import warnings
from collections.abc import Callable, Iterator

import pandas as pd
import requests

from feeds._fetch import COLUMNS, FetchError, bars_frame, clean, status_error
from mtbt.http import ResilientSession, harden
from mtbt.sessions import NY


class AlpacaBars:
    """Bars of one stock symbol and date range from Alpaca, with timeouts on every request.

    Parameters
    ----------
    api_key, secret_key : the Alpaca keys (sent as APCA-API-KEY-ID / APCA-API-SECRET-KEY).
    base_url : the market-data base URL (no ``/v2``).
    timeout : (connect, read) seconds.
    """

    name = "Alpaca"

    def __init__(self, api_key: str, secret_key: str, base_url: str,
                 timeout: tuple[float, float]) -> None:
        with warnings.catch_warnings():     # alpaca-py 0.44 imports websockets.legacy
            warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
            from alpaca.data.historical import StockHistoricalDataClient

        self._secrets = (api_key, secret_key)
        self._timeout = timeout
        self._client = StockHistoricalDataClient(api_key, secret_key,
                                                 url_override=base_url.rstrip("/"))
        harden(self._client, ResilientSession(timeout, attempts=1))   # the chunk loop retries

    def fetch(self, symbol: str, timespan: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """All bars from ``start`` to ``end`` (inclusive dates)."""
        refuse = functools.partial(status_error, timespan=timespan)
        with self._sdk_errors(symbol, refuse):
            barset = self._client.get_stock_bars(_request(symbol, timespan, start, end))
        bars = barset.data.get(symbol, [])
        rows = {col: [getattr(b, col) for b in bars] for col in COLUMNS[1:]}
        return bars_frame([int(b.timestamp.timestamp() * 1000) for b in bars], rows)

    @contextlib.contextmanager
    def _sdk_errors(self, symbol: str, refuse: Callable[..., FetchError]) -> Iterator[None]:
        """SDK failures as FetchErrors: an error answer through ``refuse(source, status,
        message, symbol, key_env=...)``; timeouts, dropped connections and other request
        failures retryable; an answer the SDK cannot parse not."""
        from alpaca.common.exceptions import APIError

        try:
            yield
        except APIError as exc:
            raise refuse(self.name, exc.status_code, self._message(str(exc)), symbol,
                         key_env="ALPACA_API_KEY and ALPACA_SECRET_KEY") from None
        except requests.Timeout:
            raise FetchError(f"{self.name}: no answer within {self._timeout[1]:g} s "
                             f"(timeout)", retryable=True) from None
        except requests.ConnectionError:
            raise FetchError(f"{self.name}: the connection failed or was dropped before an "
                             f"answer", retryable=True) from None
        except requests.RequestException as exc:
            raise FetchError(f"{self.name}: {type(exc).__name__}", retryable=True) from None
        except ValueError as exc:    # pydantic ValidationError, or a body with no data key
            raise FetchError(f"{self.name}: unexpected answer "
                             f"({clean(str(exc), self._secrets, limit=120)})") from None

    def close(self) -> None:
        self._client._session.close()

    def _message(self, body: str) -> str:
        """Alpaca's ``message`` from an error body, else the body itself."""
        try:
            text = json.loads(body).get("message") or body
        except (ValueError, AttributeError):
            text = body
        return clean(str(text), self._secrets, limit=160)


def _request(symbol: str, timespan: str, start: dt.date, end: dt.date):
    from alpaca.data.enums import Adjustment
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

    frame = {"minute": TimeFrame.Minute, "hour": TimeFrame.Hour, "day": TimeFrame.Day}[timespan]
    first = pd.Timestamp(start, tz=NY).to_pydatetime()
    last = (pd.Timestamp(end, tz=NY) + pd.Timedelta(days=1, seconds=-1)).to_pydatetime()
    return StockBarsRequest(symbol_or_symbols=symbol, timeframe=frame, start=first, end=last,
                            adjustment=Adjustment.SPLIT)
