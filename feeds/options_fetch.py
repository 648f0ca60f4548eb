"""Download recorded option minute bars into the options bar store, session by session.

``fetch_option_bars`` is what ``python -m mtbt data fetch SPY --options`` runs:

- **Selection.** For each XNYS session from ``start`` to ``end``: the underlying's open
  (:mod:`feeds.options_sources`), then the contracts expiring from that session to the
  ``dte``-th session after it (``dte=0``: the session's own expiry) whose strikes lie within
  ``open * (1 ± moneyness)``, then their 1-minute bars from the open to 15 minutes past the
  close (options trade a quarter hour longer), with volume, vwap and trade count.
- **Sources.** Polygon (``POLYGON_API_KEY``, base ``MTBT_POLYGON_URL``) or Alpaca
  (``ALPACA_API_KEY``/``ALPACA_SECRET_KEY``; data ``MTBT_ALPACA_DATA_URL``, contract listing on
  the trading host ``MTBT_ALPACA_TRADING_URL``, default the paper API). Alpaca's option
  history starts in February 2024; earlier sessions are refused before anything is fetched.
- **Output.** One file per session, ``<out>/<UNDERLYING>/<YYYY-MM-DD>.parquet``, written by
  :func:`feeds.options_store.write_option_bars` (the store's contract, checked on write). A
  session with no contract or no bar is reported and leaves no file.
- **Resume.** A session whose file exists and reads back valid is skipped; an invalid one is
  fetched again. A file is written through a temporary file and renamed, so a crash loses at
  most the session in flight; temporary files of an interrupted run are removed (on the way
  out, and at the next run's start for a process that was killed).
- **Timeouts and retries.** Every request has the bar fetch's (connect, read) timeout
  (:data:`feeds.download.TIMEOUT`); each call (the open, a contract listing, one batch of
  bars) is retried on 429, 5xx, timeouts and dropped connections with the bar fetch's backoff
  (:data:`feeds.download.RETRY`). Errors are one-line :class:`~feeds._fetch.FetchError` s,
  scrubbed of the keys.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from feeds import download
from feeds._fetch import FetchError, base_url, clean
from feeds.download import RetryPolicy
from feeds.options_sources import BAR_COLUMNS, Contract, OptionSource
from feeds.options_store import option_bars_path, read_option_bars, write_option_bars
from mtbt.errors import DataError
from mtbt.sessions import NY, Session, sessions

__all__ = ["ALPACA_OPTIONS_START", "DEFAULT_OUT", "OptionsFetchResult", "SessionResult",
           "expiry_limit", "fetch_option_bars"]

log = logging.getLogger("mtbt.download")

DEFAULT_OUT = Path("data") / "options"
ALPACA_OPTIONS_START = dt.date(2024, 2, 1)
ALPACA_TRADING_URL = "https://paper-api.alpaca.markets"
AFTER_CLOSE = pd.Timedelta(minutes=15)          # options trade until 16:15 on a normal day
_TMP = re.compile(r"^\d{4}-\d{2}-\d{2}\.parquet\.tmp$")

Report = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class SessionResult:
    """One session's outcome: ``written``, ``skipped`` (already in the store) or ``empty``
    (no contract or no bar: no file)."""

    day: dt.date
    status: str
    contracts: int = 0
    bars: int = 0
    path: Path | None = None


@dataclass(frozen=True)
class OptionsFetchResult:
    """What :func:`fetch_option_bars` did, session by session."""

    folder: Path
    sessions: tuple[SessionResult, ...]

    def count(self, status: str) -> int:
        return sum(s.status == status for s in self.sessions)

    @property
    def bars(self) -> int:
        return sum(s.bars for s in self.sessions if s.status == "written")

    @property
    def contracts(self) -> int:
        return sum(s.contracts for s in self.sessions if s.status == "written")


def fetch_option_bars(underlying: str, start: dt.date | str, end: dt.date | str, *,
                      dte: int = 0, moneyness: float = 0.03, source: str = "polygon",
                      out: str | Path | None = None,
                      timeout: tuple[float, float] | None = None,
                      retry: RetryPolicy | None = None, report: Report | None = None,
                      env: Mapping[str, str] | None = None,
                      today: dt.date | None = None) -> OptionsFetchResult:
    """Fetch the option minute bars of ``underlying`` for each session ``start``..``end``.

    Parameters
    ----------
    underlying : the underlying's ticker (``SPY``).
    start, end : dates (``date`` or ``YYYY-MM-DD``), inclusive.
    dte : expiries from the session to this many sessions after it (0: that session's own).
    moneyness : strikes within ``open * (1 ± moneyness)``, ``0 < moneyness < 1``.
    source : "polygon" or "alpaca".
    out : the store's root (default ``data/options``).
    timeout : (connect, read) seconds for every request (default ``download.TIMEOUT``).
    retry : attempts and backoff per call (default ``download.RETRY``).
    report : called with one line per session (progress); default: logged.
    env : where keys and base URLs are read (default ``os.environ``).
    today : the current New York date (Alpaca lists expired contracts as inactive).

    Raises
    ------
    FetchError : bad arguments, a missing or refused key, an underlying with no bars on a
        session, a call that still failed after the retries (finished sessions are kept;
        rerunning resumes).
    DataError : fetched bars that break the store's contract.
    """
    symbol, first, last = _arguments(underlying, start, end, dte, moneyness, source)
    env = os.environ if env is None else env
    secrets = download._secrets(source, env)
    days = list(sessions(first, last).values())
    if not days:
        raise FetchError(f"no XNYS sessions from {first} to {last}")
    root = Path(out) if out is not None else DEFAULT_OUT
    folder = root / symbol
    say = report or (lambda line: log.info("%s", line))
    _remove_temporaries(folder)
    results: list[SessionResult] = []
    todo = [s for s in days if not _finished(option_bars_path(root, symbol, s.date), say)]
    results += [SessionResult(s.date, "skipped", path=option_bars_path(root, symbol, s.date))
                for s in days if s not in todo]
    if todo:
        src = _open_source(source, secrets, env, timeout or download.TIMEOUT,
                           today or pd.Timestamp.now(tz=NY).date())
        calls = _Caller(src, retry or download.RETRY, secrets, folder)
        try:
            for session in todo:
                results.append(_fetch_session(calls, symbol, session, dte, moneyness, root,
                                              say))
        finally:
            src.close()
            _remove_temporaries(folder)
    results.sort(key=lambda r: r.day)
    return OptionsFetchResult(folder, tuple(results))


def _arguments(underlying: str, start: dt.date | str, end: dt.date | str, dte: int,
               moneyness: float, source: str) -> tuple[str, dt.date, dt.date]:
    if source not in download.SOURCES:
        raise FetchError(f"source must be one of {', '.join(download.SOURCES)}, not {source!r}")
    symbol = underlying.strip().upper()
    if not symbol or not symbol.replace(".", "").isalnum():
        raise FetchError(f"not an underlying symbol: {underlying!r}")
    first, last = download._date(start, "start"), download._date(end, "end")
    if first > last:
        raise FetchError(f"empty range: start {first} is after end {last}")
    if isinstance(dte, bool) or not isinstance(dte, int) or dte < 0:
        raise FetchError(f"dte must be a whole number of sessions >= 0, not {dte!r}")
    if not 0 < moneyness < 1:
        raise FetchError(f"moneyness must lie between 0 and 1 (0.03 = ±3% of the open), "
                         f"not {moneyness!r}")
    if source == "alpaca" and first < ALPACA_OPTIONS_START:
        raise FetchError(f"Alpaca's option history starts in February 2024: start {first} is "
                         f"earlier (use --source polygon, or start on "
                         f"{ALPACA_OPTIONS_START} or later)")
    return symbol, first, last


def _open_source(source: str, secrets: tuple[str, ...], env: Mapping[str, str],
                 timeout: tuple[float, float], today: dt.date) -> OptionSource:
    from feeds.options_sources import AlpacaOptions, PolygonOptions

    if source == "polygon":
        return PolygonOptions(secrets[0],
                              base_url(env, "MTBT_POLYGON_URL", download.POLYGON_URL), timeout)
    return AlpacaOptions(secrets[0], secrets[1],
                         base_url(env, "MTBT_ALPACA_DATA_URL", download.ALPACA_DATA_URL),
                         base_url(env, "MTBT_ALPACA_TRADING_URL", ALPACA_TRADING_URL), timeout,
                         today)


def _finished(path: Path, say: Report) -> bool:
    """True when the session's file exists and reads back valid (it is then skipped)."""
    if not path.exists():
        return False
    try:
        bars = read_option_bars(path)
    except DataError as exc:
        say(f"{path.stem}: fetching it again, the file there is invalid "
            f"({clean(str(exc), limit=200)})")
        return False
    say(f"{path.stem}: skipped, already in the store ({bars['contract'].nunique()} contracts, "
        f"{len(bars):,} bars in {path})")
    return True


def _remove_temporaries(folder: Path) -> None:
    """Delete the store writer's temporary files left by an interrupted run."""
    if folder.is_dir():
        for tmp in folder.iterdir():
            if _TMP.match(tmp.name):
                tmp.unlink(missing_ok=True)


class _Caller:
    """Runs one source call with the retry policy; the error names what failed."""

    def __init__(self, src: OptionSource, retry: RetryPolicy, secrets: tuple[str, ...],
                 folder: Path) -> None:
        self.src, self.retry, self.secrets, self.folder = src, retry, secrets, folder

    def __call__(self, what: str, call: Callable[[], T]) -> T:
        folder = self.folder
        return download.retried(
            call, self.retry, self.secrets, f"{self.src.name}: {what}",
            lambda: f"rerun the same command to resume "
                    f"({len(list(folder.glob('*.parquet'))) if folder.is_dir() else 0} "
                    f"session file(s) in {folder})")


def expiry_limit(session: Session, dte: int) -> dt.date:
    """The last expiry taken for ``session``: the ``dte``-th session after it."""
    ahead = sessions(session.date, session.date + dt.timedelta(days=2 * dte + 10))
    return list(ahead)[dte]


def _fetch_session(call: _Caller, symbol: str, session: Session, dte: int, moneyness: float,
                   root: Path, say: Report) -> SessionResult:
    day, src = session.date, call.src
    opened = call(f"the open of {symbol} on {day}", lambda: src.underlying_open(symbol, session))
    if opened is None:
        raise FetchError(f"{src.name} has no bars of {symbol} on {day} (unknown symbol, or no "
                         f"trading that day): cannot place the strikes")
    last_expiry = expiry_limit(session, dte)
    low, high = opened * (1 - moneyness), opened * (1 + moneyness)
    listed = call(f"the option contracts of {symbol} on {day}",
                  lambda: src.contracts(symbol, day, last_expiry, low, high))
    chosen = sorted({c for c in listed if day <= c.expiry <= last_expiry
                     and low - 1e-9 <= c.strike <= high + 1e-9})
    span = f"expiring {day}" + (f"..{last_expiry}" if last_expiry != day else "")
    say(f"{day}: {symbol} open {opened:g}, {len(chosen)} contracts {span} with strikes "
        f"{low:.2f}..{high:.2f}")
    if not chosen:
        say(f"{day}: no contracts listed: no file")
        return SessionResult(day, "empty")
    first = pd.Timestamp(session.open, tz=NY)
    last = pd.Timestamp(session.close, tz=NY) + AFTER_CLOSE
    frames = []
    for i in range(0, len(chosen), src.batch):
        batch = [c.symbol for c in chosen[i:i + src.batch]]
        what = f"the bars of {batch[0]}" + (f" and {len(batch) - 1} more" if len(batch) > 1
                                            else "") + f" on {day}"
        frames.append(call(what, lambda batch=batch: src.bars(batch, first, last)))
    bars = _store_frame(pd.concat(frames, ignore_index=True), chosen, first, last)
    if bars.empty:
        say(f"{day}: no bars for any of the {len(chosen)} contracts: no file")
        return SessionResult(day, "empty", contracts=len(chosen))
    path = _write(bars, option_bars_path(root, symbol, day))
    traded = bars["contract"].nunique()
    say(f"{day}: {len(bars):,} bars of {traded} contracts ({len(chosen) - traded} without "
        f"trades) -> {path}")
    return SessionResult(day, "written", traded, len(bars), path)


def _store_frame(raw: pd.DataFrame, chosen: list[Contract], first: pd.Timestamp,
                 last: pd.Timestamp) -> pd.DataFrame:
    """The source's bars in the store's columns: inside the session window, one row per
    contract and minute (the last one seen), New York timestamps."""
    raw = raw.loc[:, list(BAR_COLUMNS)]
    when = pd.DatetimeIndex(raw["timestamp"]).tz_convert(NY)
    by_symbol = {c.symbol: c for c in chosen}
    keep = np.asarray((when >= first) & (when < last)) & \
        raw["contract"].isin(list(by_symbol)).to_numpy()
    raw = raw.assign(timestamp=when)[keep]
    raw = raw.drop_duplicates(["contract", "timestamp"], keep="last")
    info = [by_symbol[s] for s in raw["contract"]]
    out = pd.DataFrame({"timestamp": pd.DatetimeIndex(raw["timestamp"]),
                        "contract": raw["contract"].astype(str).to_numpy(),
                        "expiry": [c.expiry.isoformat() for c in info],
                        "right": [c.right for c in info],
                        "strike": np.asarray([c.strike for c in info], dtype="float64")})
    for col in ("open", "high", "low", "close", "volume", "vwap", "trades"):
        out[col] = raw[col].to_numpy(dtype="float64")
    out["volume"] = np.nan_to_num(out["volume"].to_numpy(), nan=0.0)
    return out


def _write(bars: pd.DataFrame, path: Path) -> Path:
    """Write one session's file; an interruption while writing leaves no temporary file."""
    try:
        return write_option_bars(bars, path)
    except BaseException:
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)
        raise
