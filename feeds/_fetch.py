"""Shared pieces of the bar downloaders: the error type, the adapter protocol, scrubbing.

The adapters (:mod:`feeds.polygon`, :mod:`feeds.alpaca_bars`) turn every SDK failure into a
:class:`FetchError`; ``retryable`` tells :mod:`feeds.download`'s retry loop whether another
attempt can help (429, 5xx, timeouts, dropped connections) or not (401, 403, 404, 400).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from mtbt.errors import MtbtError

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


class FetchError(MtbtError):
    """A download problem for the user; ``retryable`` marks transient ones (429, 5xx, timeouts)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class BarSource(Protocol):
    """What an adapter provides: bars of one chunk as a frame (``COLUMNS``, UTC timestamps)."""

    name: str

    def fetch(self, symbol: str, timespan: str, start: dt.date, end: dt.date) -> pd.DataFrame: ...

    def close(self) -> None: ...


def clean(text: str, secrets: tuple[str, ...] = (), limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters, with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def base_url(env: Mapping[str, str], name: str, default: str) -> str:
    """The base URL in ``env[name]`` (or ``default``), refused unless it is http(s)://host."""
    url = (env.get(name) or "").strip() or default
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{name}={url}: expected a base URL like http://127.0.0.1:8080 or "
                         f"{default}")
    return url


def status_error(source: str, status: int | None, message: str, symbol: str,
                 timespan: str, key_env: str) -> FetchError:
    """The FetchError for an HTTP error answer (``message``: the API's own text, cleaned)."""
    said = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if message.lstrip().startswith("<"):         # a web page, not the API's JSON
        return FetchError(f"{source} answered HTTP {status} with a web page, not an API "
                          "answer: is its base URL the API's?")
    if status == 401:
        return FetchError(f"{source} refused the API key ({said}); check {key_env}")
    if status == 403:
        return FetchError(f"{source} refused access to {timespan} bars of {symbol} ({said}); "
                          f"your plan may not include this data")
    if status == 404:
        return FetchError(f"{source} does not know the symbol {symbol} ({said})")
    if status is not None and (status in (408, 413, 429) or status >= 500):
        return FetchError(f"{source}: {said}", retryable=True)
    return FetchError(f"{source} refused the request ({said})")


def bars_frame(times_ms: list[int], rows: dict[str, list]) -> pd.DataFrame:
    """A chunk frame: UTC ``timestamp`` from epoch milliseconds plus float64 OHLCV (None -> NaN)."""
    frame = {"timestamp": pd.to_datetime(np.asarray(times_ms, dtype="int64"), unit="ms", utc=True)}
    for col in COLUMNS[1:]:
        frame[col] = np.asarray([np.nan if v is None else v for v in rows[col]], dtype="float64")
    return pd.DataFrame(frame)
