"""Download historical bars from Polygon or Alpaca into a bar-contract parquet file.

``fetch_bars`` is what ``python -m mtbt data fetch`` runs:

- **Sources.** Polygon (default) through polygon-api-client's ``RESTClient.list_aggs``, which
  follows ``next_url`` pages; index symbols such as ``I:VIX`` are sent verbatim. Alpaca through
  alpaca-py's ``StockHistoricalDataClient.get_stock_bars`` (it follows ``page_token`` pages).
  The adapters are :mod:`feeds.polygon` and :mod:`feeds.alpaca_bars`.
- **Environment.** Keys: ``POLYGON_API_KEY``; ``ALPACA_API_KEY`` and ``ALPACA_SECRET_KEY``.
  Base URLs: ``MTBT_POLYGON_URL`` (default ``https://api.polygon.io``) and
  ``MTBT_ALPACA_DATA_URL`` (default ``https://data.alpaca.markets``); tests point the real
  clients at local servers with them. A key is never printed: error text is scrubbed of it.
- **Output.** Columns ``timestamp`` (tz-aware America/New_York, the bar's START, as both APIs
  label it) and float64 ``open, high, low, close, volume``; sorted, no duplicates. Minute and
  hour bars keep only XNYS regular sessions unless ``extended``. Day bars are stamped with the
  trading date at 00:00 New York; a missing volume (index bars) is 0.0. The written file is
  checked with :func:`feeds.parquet.read_bars` (minute, hour) or ``read_daily`` (day).
- **Chunks and resume.** The range is fetched in calendar chunks (a month of minute bars, a
  year of hour bars, a decade of day bars). Each finished chunk is saved in ``<out>.parts/``
  (temp file + rename) beside a ``manifest.json`` of the request; a rerun of the same request
  skips finished chunks, and parts of a different request are refused. The output is written
  to a temp file and renamed into place, then the parts folder is removed.
- **Timeouts and retries.** Every request has a connect and a read timeout (``TIMEOUT``).
  429, 5xx, timeouts and dropped connections are retried per chunk with exponential backoff
  (``RETRY``), on top of the SDK's own retries (Polygon's urllib3 retries 429/5xx three times;
  alpaca-py's are switched off in favour of ours). When the attempts run out the error names
  the chunk and says that rerunning resumes.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from feeds._fetch import BarSource, FetchError, base_url, clean
from feeds._parts import claim_parts, part_path, save_part
from feeds.parquet import OHLCV, read_bars, read_daily, regular_hours
from mtbt.errors import DataError
from mtbt.sessions import NY

__all__ = ["FetchError", "FetchResult", "RetryPolicy", "default_out", "fetch_bars",
           "plan_chunks"]

log = logging.getLogger("mtbt.download")

TIMESPANS = ("minute", "hour", "day")
SOURCES = ("polygon", "alpaca")
POLYGON_URL = "https://api.polygon.io"
ALPACA_DATA_URL = "https://data.alpaca.markets"
TIMEOUT: tuple[float, float] = (10.0, 30.0)     # (connect, read) seconds, every request
_CHUNK_MONTHS = {"minute": 1, "hour": 12, "day": 120}

T = TypeVar("T")
Progress = Callable[[str, int, int], None]      # (phase, chunks done, chunks in all)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per chunk; the n-th retry waits ``wait * 2**(n-1)`` s, at most ``max_wait``."""

    attempts: int = 4
    wait: float = 1.0
    max_wait: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.max_wait, self.wait * 2 ** (failures - 1))


RETRY = RetryPolicy()


@dataclass(frozen=True)
class Request:
    """One download: what the parts folder's manifest records."""

    symbol: str
    timespan: str
    source: str
    start: dt.date
    end: dt.date
    extended: bool

    def manifest(self) -> dict:
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch_bars`` wrote: the file, its bar count and span, and the chunk counts."""

    path: Path
    bars: int
    first: pd.Timestamp
    last: pd.Timestamp
    fetched: int
    reused: int


def plan_chunks(start: dt.date, end: dt.date, timespan: str) -> list[tuple[dt.date, dt.date]]:
    """Inclusive date ranges covering start..end, cut at calendar months (minute), years
    (hour) or decades (day)."""
    months = _CHUNK_MONTHS[timespan]
    chunks = []
    first = start
    while first <= end:
        block = (first.year * 12 + first.month - 1) // months + 1
        nxt = dt.date(block * months // 12, block * months % 12 + 1, 1)
        last = min(nxt - dt.timedelta(days=1), end)
        chunks.append((first, last))
        first = last + dt.timedelta(days=1)
    return chunks


def default_out(symbol: str, timespan: str, start: dt.date, end: dt.date) -> Path:
    """``data/<symbol, ':' as '_'>_<timespan>_<start>_<end>.parquet``."""
    return Path("data") / f"{symbol.replace(':', '_')}_{timespan}_{start}_{end}.parquet"


def fetch_bars(symbol: str, start: dt.date | str, end: dt.date | str, *,
               timespan: str = "minute", source: str = "polygon",
               out: str | Path | None = None, extended: bool = False,
               timeout: tuple[float, float] | None = None, retry: RetryPolicy | None = None,
               progress: Progress | None = None,
               env: Mapping[str, str] | None = None) -> FetchResult:
    """Download ``symbol``'s bars from ``start`` to ``end`` (inclusive) into a parquet file.

    Parameters
    ----------
    symbol : ticker, sent verbatim (``SPY``; ``I:VIX`` on Polygon).
    start, end : dates (``date`` or ``YYYY-MM-DD``), inclusive.
    timespan : "minute", "hour" or "day".
    source : "polygon" or "alpaca".
    out : the parquet file (default :func:`default_out`); parts go to ``<out>.parts/``.
    extended : keep pre- and post-market minute/hour bars.
    timeout : (connect, read) seconds for every request (default ``TIMEOUT``).
    retry : attempts and backoff per chunk (default ``RETRY``).
    progress : called as ``(phase, done, total)`` over the chunks.
    env : where keys and base URLs are read (default ``os.environ``).

    Raises
    ------
    FetchError : bad arguments, a missing or refused key, an unknown symbol, no bars, a chunk
        that still failed after the retries (finished chunks are kept; rerunning resumes).
    DataError : the written file failed the bar-contract check.
    """
    req = _request(symbol, start, end, timespan, source, extended)
    env = os.environ if env is None else env
    secrets = _secrets(req.source, env)
    out = Path(out) if out is not None else default_out(symbol, timespan, req.start, req.end)
    parts = out.with_name(out.name + ".parts")
    chunks = plan_chunks(req.start, req.end, req.timespan)
    claim_parts(parts, req.manifest())
    todo = [c for c in chunks if not part_path(parts, c).exists()]
    if todo:
        src = _open_source(req.source, secrets, env, timeout or TIMEOUT)
        try:
            _download(src, req, todo, parts, retry or RETRY, progress, len(chunks), secrets)
        except BaseException:
            if not any(parts.glob("*.parquet")):    # nothing worth resuming
                shutil.rmtree(parts, ignore_errors=True)
            raise
        finally:
            src.close()
    bars = _assemble(parts, chunks, req)
    _write(bars, out, req.timespan)
    shutil.rmtree(parts, ignore_errors=True)
    return FetchResult(out, len(bars), bars.index[0], bars.index[-1], len(todo),
                       len(chunks) - len(todo))


def _request(symbol: str, start: dt.date | str, end: dt.date | str, timespan: str,
             source: str, extended: bool) -> Request:
    if timespan not in TIMESPANS:
        raise FetchError(f"timespan must be one of {', '.join(TIMESPANS)}, not {timespan!r}")
    if source not in SOURCES:
        raise FetchError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    if not symbol.strip() or "/" in symbol:
        raise FetchError(f"not a symbol: {symbol!r}")
    first, last = _date(start, "start"), _date(end, "end")
    if first > last:
        raise FetchError(f"empty range: start {first} is after end {last}")
    return Request(symbol.strip(), timespan, source, first, last, bool(extended))


def _date(value: dt.date | str, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise FetchError(f"{what} date {value!r} is not a date (YYYY-MM-DD)") from None


def _secrets(source: str, env: Mapping[str, str]) -> tuple[str, ...]:
    names = ("POLYGON_API_KEY",) if source == "polygon" else ("ALPACA_API_KEY",
                                                               "ALPACA_SECRET_KEY")
    missing = [n for n in names if not env.get(n, "").strip()]
    if missing:
        raise FetchError(f"{' and '.join(missing)} not set: export your {source.capitalize()} "
                         f"key{'s' if len(names) > 1 else ''} in the environment")
    return tuple(env[n].strip() for n in names)


def _open_source(source: str, secrets: tuple[str, ...], env: Mapping[str, str],
                 timeout: tuple[float, float]) -> BarSource:
    if source == "polygon":
        from feeds.polygon import PolygonBars

        return PolygonBars(secrets[0], base_url(env, "MTBT_POLYGON_URL", POLYGON_URL), timeout)
    from feeds.alpaca_bars import AlpacaBars

    return AlpacaBars(secrets[0], secrets[1],
                      base_url(env, "MTBT_ALPACA_DATA_URL", ALPACA_DATA_URL), timeout)


def _download(src: BarSource, req: Request, todo: list[tuple[dt.date, dt.date]], parts: Path,
              retry: RetryPolicy, progress: Progress | None, total: int,
              secrets: tuple[str, ...]) -> None:
    done = total - len(todo)
    for chunk in todo:
        if progress:
            progress(f"{req.symbol} {req.timespan} {chunk[0]}..{chunk[1]}", done, total)
        frame = _fetch_chunk(src, req, chunk, retry, parts, secrets)
        save_part(parts, chunk, frame)
        done += 1
    if progress:
        progress(f"{req.symbol} {req.timespan}", done, total)


def _fetch_chunk(src: BarSource, req: Request, chunk: tuple[dt.date, dt.date],
                 retry: RetryPolicy, parts: Path, secrets: tuple[str, ...]) -> pd.DataFrame:
    """One chunk, retrying transient failures with backoff."""
    return retried(lambda: src.fetch(req.symbol, req.timespan, *chunk), retry, secrets,
                   f"{src.name}: chunk {chunk[0]}..{chunk[1]} of {req.symbol}",
                   lambda: f"rerun the same command to resume "
                           f"({len(list(parts.glob('*.parquet')))} finished chunk(s) kept in "
                           f"{parts})")


def retried(call: Callable[[], T], retry: RetryPolicy, secrets: tuple[str, ...], what: str,
            resume: Callable[[], str]) -> T:
    """``call()``, tried again after a retryable FetchError, each retry shown on stderr with
    its reason and wait; when attempts run out, one FetchError naming ``what``, the last
    reason and ``resume()`` (how to go on)."""
    why = "no attempt made"
    for attempt in range(1, retry.attempts + 1):
        try:
            return call()
        except FetchError as exc:
            if not exc.retryable:
                raise FetchError(clean(str(exc), secrets)) from None
            why = clean(str(exc), secrets, limit=120)
            log.info("%s attempt %d failed: %s", what, attempt, why)
            if attempt < retry.attempts:
                wait = retry.delay(attempt)
                print(f"{what}: attempt {attempt} of {retry.attempts} failed ({why}); again "
                      f"in {wait:g} s", file=sys.stderr)
                time.sleep(wait)
    raise FetchError(f"{what} failed after {retry.attempts} attempts ({why}); {resume()}")


def _assemble(parts: Path, chunks: list[tuple[dt.date, dt.date]], req: Request) -> pd.DataFrame:
    """All parts as one contract frame indexed by New York ``timestamp``."""
    frames = [pd.read_parquet(part_path(parts, c)) for c in chunks]
    frames = [f for f in frames if len(f)]
    what = f"{req.timespan} bars for {req.symbol} from {req.start} to {req.end}"
    if not frames:
        shutil.rmtree(parts, ignore_errors=True)
        raise FetchError(f"{req.source.capitalize()} returned no {what} "
                         f"(unknown symbol, or no trading in that range)")
    raw = pd.concat(frames, ignore_index=True)
    idx = pd.DatetimeIndex(raw["timestamp"]).tz_convert(NY)
    if req.timespan == "day":   # the New York trading date, also for bars stamped 00:00 UTC
        idx = (idx.tz_localize(None) + pd.Timedelta(hours=12)).normalize().tz_localize(NY)
    cols = {c: raw[c].to_numpy(dtype="float64", na_value=np.nan) for c in OHLCV}
    cols["volume"] = np.nan_to_num(cols["volume"], nan=0.0)
    bars = pd.DataFrame(cols, index=idx.rename("timestamp")).sort_index(kind="stable")
    bars = bars[~bars.index.duplicated(keep="last")]
    if req.timespan != "day" and not req.extended:
        bars = regular_hours(bars)
        if bars.empty:
            shutil.rmtree(parts, ignore_errors=True)
            raise FetchError(f"no regular-session {what} (use --extended to keep "
                             f"pre- and post-market bars)")
    return bars


def _write(bars: pd.DataFrame, out: Path, timespan: str) -> None:
    """Write through a temp file, check it against the contract, then rename into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    bars.reset_index().to_parquet(tmp, index=False)
    try:
        read_daily(tmp) if timespan == "day" else read_bars(tmp)
    except DataError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(str(exc).replace(str(tmp), str(out))) from None
    os.replace(tmp, out)
