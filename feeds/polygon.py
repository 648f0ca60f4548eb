"""Polygon aggregates through polygon-api-client's ``RESTClient.list_aggs`` (one chunk at a time).

polygon-api-client 1.16 stores ``connect_timeout``/``read_timeout`` but never passes them to
urllib3, so a server that accepts and never answers hangs the caller. :class:`PolygonBars`
therefore replaces the client's ``PoolManager`` with one built from the same settings
(headers, certificates, the client's urllib3 ``Retry``) plus a real ``urllib3.Timeout``; that
pool also records the status of the last answer, because the client's ``BadResponse`` carries
only the body. The client's own retries stay on: urllib3 retries 413/429/499/5xx (obeying
Retry-After), connection and read errors three times, then raises ``MaxRetryError``; that and
any other urllib3 error is a retryable :class:`~feeds._fetch.FetchError`.

Intraday chunks are requested as epoch-millisecond bounds (00:00 New York on the first day to
the end of the last day), day chunks as ``YYYY-MM-DD`` dates; ``adjusted=true``, ascending.
"""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)

from feeds._fetch import COLUMNS, FetchError, bars_frame, clean, status_error
from mtbt.sessions import NY


class _StatusPool(urllib3.PoolManager):
    """A PoolManager that remembers the HTTP status of the last response it returned."""

    last_status: int | None = None

    def urlopen(self, method, url, redirect=True, **kw):  # noqa: ANN001 - urllib3's signature
        self.last_status = None
        resp = super().urlopen(method, url, redirect=redirect, **kw)
        self.last_status = resp.status
        return resp


class PolygonBars:
    """Bars of one symbol and date range from Polygon, with timeouts on every request.

    Parameters
    ----------
    api_key : the Polygon key (sent as a Bearer header only).
    base_url : scheme://host[:port] of the API.
    timeout : (connect, read) seconds.
    """

    name = "Polygon"

    def __init__(self, api_key: str, base_url: str, timeout: tuple[float, float]) -> None:
        from polygon import RESTClient

        self._key = api_key
        self._timeout = timeout
        self._client = RESTClient(api_key=api_key, base=base_url.rstrip("/"),
                                  connect_timeout=timeout[0], read_timeout=timeout[1])
        stock = self._client.client
        # no retries inside the SDK's pool: the caller's loop retries with backoff, and two
        # layers multiplied a silent server's wait (4 attempts x 4 tries x the read timeout)
        pool_kw = stock.connection_pool_kw | {"retries": urllib3.Retry(0)}
        self._pool = _StatusPool(num_pools=10, headers=stock.headers,
                                 timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                                 **pool_kw)
        stock.clear()
        self._client.client = self._pool

    def fetch(self, symbol: str, timespan: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """All bars from ``start`` to ``end`` (inclusive dates), following ``next_url`` pages."""
        from polygon.exceptions import BadResponse

        first, last = _window(timespan, start, end)
        try:
            aggs = list(self._client.list_aggs(symbol, 1, timespan, first, last, adjusted=True,
                                               sort="asc", limit=50000))
        except BadResponse as exc:
            raise status_error(self.name, self._pool.last_status,
                               _message(str(exc), self._key), symbol, timespan,
                               "POLYGON_API_KEY") from None
        except HTTPError as exc:
            raise FetchError(f"{self.name}: {self._why(exc)}", retryable=True) from None
        rows = {col: [getattr(a, col) for a in aggs] for col in COLUMNS[1:]}
        return bars_frame([a.timestamp for a in aggs], rows)

    def close(self) -> None:
        self._pool.clear()

    def _why(self, exc: HTTPError) -> str:
        """A short reason for a urllib3 failure (never its URL)."""
        reason = exc.reason if isinstance(exc, MaxRetryError) else exc
        if isinstance(reason, NewConnectionError):   # first: urllib3 2 makes it a timeout
            return "cannot connect (connection refused or host unreachable)"
        if isinstance(reason, ConnectTimeoutError):
            return f"no connection within {self._timeout[0]:g} s (connect timeout)"
        if isinstance(reason, ReadTimeoutError):
            return f"no answer within {self._timeout[1]:g} s (read timeout)"
        if isinstance(reason, ProtocolError):
            return "the connection was dropped before an answer"
        if isinstance(reason, ResponseError):
            return clean(str(reason), (self._key,))      # "too many 500 error responses"
        return clean(type(reason).__name__, (self._key,))


def _window(timespan: str, start: dt.date, end: dt.date) -> tuple[int | str, int | str]:
    if timespan == "day":
        return start.isoformat(), end.isoformat()
    first = pd.Timestamp(start, tz=NY)
    last = pd.Timestamp(end, tz=NY) + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1)
    return int(first.timestamp() * 1000), int(last.timestamp() * 1000)


def _message(body: str, key: str) -> str:
    """Polygon's ``error`` or ``message`` from an error body, else the body itself."""
    try:
        obj = json.loads(body)
        text = obj.get("error") or obj.get("message") or body
    except (ValueError, AttributeError):
        text = body
    return clean(str(text), (key,), limit=160)
