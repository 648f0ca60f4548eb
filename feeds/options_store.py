"""The options bar store: recorded 1-minute option bars, one parquet file per session.

Layout: ``<root>/<UNDERLYING>/<YYYY-MM-DD>.parquet``, the date being the session the bars
were traded in (``python -m mtbt data fetch SPY --options`` writes it; ``[data] options``
names ``<root>``). One row per contract and minute with trades, long format:

========== ======================= =====================================================
column     type                    rule
========== ======================= =====================================================
timestamp  datetime, tz-aware      the minute's start; in the file's session, 09:30-16:15
                                   New York (options trade a quarter hour past the close)
contract   string                  OCC symbol without Polygon's ``O:`` (``SPY250829C00645000``)
expiry     string ``YYYY-MM-DD``   the contract's expiry, not before the session
right      ``"C"`` or ``"P"``
strike     float                   > 0; expiry, right and strike agree with ``contract``
open high  float                   > 0, finite, ``low <= min(open, close)``,
low close                          ``high >= max(open, close)``
volume     float                   >= 0 (contracts)
vwap       float                   > 0, or NaN where the source has none
trades     float                   >= 0, or NaN where the source has none
========== ======================= =====================================================

Rows are sorted by contract then timestamp, with no contract and minute twice. Bars carry
trades, not quotes: a minute with no trade has no row. ``read_option_bars`` refuses any
breach in one line naming the file, the rule and the first row that breaks it, as the bar
files' reader does.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.parquet import _check_bars, _fail, _first, _floats, _load_frame, _num, _require
from mtbt.errors import DataError
from mtbt.options.occ import parse_occ
from mtbt.sessions import NY

__all__ = ["COLUMNS", "OptionStore", "option_bars_path", "read_option_bars",
           "write_option_bars"]

COLUMNS = ("timestamp", "contract", "expiry", "right", "strike", "open", "high", "low",
           "close", "volume", "vwap", "trades")
_FIRST, _LAST = dt.time(9, 30), dt.time(16, 15)


def option_bars_path(root: str | Path, underlying: str, day: dt.date) -> Path:
    """Where the store keeps ``underlying``'s bars of session ``day``."""
    return Path(root) / underlying.upper() / f"{day:%Y-%m-%d}.parquet"


def read_option_bars(path: str | Path) -> pd.DataFrame:
    """One session file of the store, checked against the contract (module docstring); the
    ``timestamp`` column in New York time, ``expiry`` as dates."""
    df = _load_frame(path)
    _require(df, path, COLUMNS, "an options bar file")
    day = _session_of(path)
    ts = df["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        _fail(path, f"column 'timestamp' must be tz-aware datetimes (dtype {ts.dtype})")
    if ts.isna().any():
        _fail(path, f"missing timestamp (NaT) at row {_first(ts.isna().to_numpy()) + 1}")
    when = pd.DatetimeIndex(ts).tz_convert(NY)
    local = when.tz_localize(None)
    i = _first((local.normalize() != pd.Timestamp(day)) | (local.time < _FIRST)
               | (local.time > _LAST)) if day is not None else -1
    if i >= 0:
        _fail(path, f"timestamp {when[i]:%Y-%m-%d %H:%M} at row {i + 1} is outside the "
                    f"session {day} 09:30-16:15 New York")
    contracts = df["contract"].astype(str).str.removeprefix("O:")
    cols = {c: _floats(df, c, path) for c in ("strike", "open", "high", "low", "close",
                                               "volume", "vwap", "trades")}
    _check_bars(cols, pd.DatetimeIndex(local), path)
    for col in ("vwap", "trades"):
        bad = ~np.isnan(cols[col]) & ((cols[col] <= 0) if col == "vwap" else (cols[col] < 0))
        i = _first(bad | np.isinf(cols[col]))
        if i >= 0:
            _fail(path, f"bad {col} {_num(cols[col][i])} at row {i + 1} ({contracts[i]})")
    expiry = _expiries(df, path)
    _check_contracts(contracts, expiry, df["right"].astype(str), cols["strike"], day, path)
    order = pd.DataFrame({"c": contracts.to_numpy(), "t": when.asi8})
    key = order["c"] + "@" + order["t"].astype(str)
    i = _first(key.duplicated().to_numpy())
    if i >= 0:
        _fail(path, f"contract {contracts[i]} has minute {when[i]:%H:%M} twice (row {i + 1})")
    sorted_ = order.sort_values(["c", "t"], kind="stable").index.to_numpy()
    i = _first(sorted_ != np.arange(len(order)))
    if i >= 0:
        _fail(path, f"rows are not sorted by contract then timestamp (first out of order at "
                    f"row {i + 1})")
    out = pd.DataFrame({"timestamp": when, "contract": contracts.to_numpy(), "expiry": expiry,
                        "right": df["right"].astype(str).to_numpy()})
    for col in ("strike", "open", "high", "low", "close", "volume", "vwap", "trades"):
        out[col] = cols[col]
    return out


def write_option_bars(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write one session's bars in the store's layout (sorted; via a temporary file, so a
    crash leaves either the old file or the new one). Checked by reading it back."""
    path = Path(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"option bars lack columns {missing}")
    out = frame.loc[:, list(COLUMNS)].copy()
    out["contract"] = out["contract"].astype(str).str.removeprefix("O:")
    out["expiry"] = pd.to_datetime(out["expiry"]).dt.strftime("%Y-%m-%d")
    out = out.sort_values(["contract", "timestamp"], kind="stable").reset_index(drop=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    out.to_parquet(tmp, index=False)
    try:
        _check_written(tmp, path)
    except DataError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def _check_written(tmp: Path, path: Path) -> None:
    """Read back what was written to ``tmp`` as if it were ``path`` (its name is the date)."""
    try:
        read_option_bars(tmp)
    except DataError as exc:
        raise DataError(str(exc).replace(str(tmp), str(path), 1)) from None


class OptionStore:
    """The store under ``root`` for one underlying: which sessions it covers, and their bars."""

    def __init__(self, root: str | Path, underlying: str) -> None:
        self.root, self.underlying = Path(root), underlying.upper()
        folder = self.root / self.underlying
        if not self.root.is_dir():
            raise DataError(f"{root}: no such options store (a folder, see "
                            "`python -m mtbt data fetch --options`)")
        self.days: tuple[dt.date, ...] = tuple(sorted(
            d for p in folder.glob("*.parquet") if (d := _date_of(p)) is not None)) \
            if folder.is_dir() else ()

    def covers(self, day: dt.date) -> bool:
        return day in self.days

    def path(self, day: dt.date) -> Path:
        return option_bars_path(self.root, self.underlying, day)

    def bars(self, day: dt.date) -> pd.DataFrame:
        """The session's bars, checked (DataError naming the file on any breach)."""
        if not self.covers(day):
            raise DataError(f"{self.path(day)}: no such file (the store does not cover {day})")
        return read_option_bars(self.path(day))


def _date_of(path: Path) -> dt.date | None:
    try:
        return dt.date.fromisoformat(path.name.removesuffix(".parquet").removesuffix(".tmp"))
    except ValueError:
        return None


def _session_of(path: str | Path) -> dt.date | None:
    """The session a store file holds (its name), or None for a file named otherwise."""
    return _date_of(Path(path))


def _expiries(df: pd.DataFrame, path: str | Path) -> np.ndarray:
    try:
        return pd.to_datetime(df["expiry"].astype(str), format="%Y-%m-%d").dt.date.to_numpy()
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: column 'expiry' must hold YYYY-MM-DD dates ({exc})") from None


def _check_contracts(contracts: pd.Series, expiry: np.ndarray, right: pd.Series,
                     strike: np.ndarray, day: dt.date | None, path: str | Path) -> None:
    """Each row's contract is an OCC symbol agreeing with its expiry, right and strike."""
    rows = pd.DataFrame({"contract": contracts.to_numpy(), "expiry": expiry,
                         "right": right.to_numpy(), "strike": strike})
    for i, (symbol, exp, r, k) in rows.drop_duplicates().iterrows():
        parsed = parse_occ(symbol)
        if parsed is None:
            _fail(path, f"contract {symbol!r} at row {i + 1} is not an OCC symbol "
                        "(e.g. SPY250829C00645000)")
        _, p_exp, p_right, p_strike = parsed
        if (p_exp, p_right) != (exp, r) or abs(p_strike - k) > 1e-6:
            _fail(path, f"row {i + 1}: contract {symbol} but expiry {exp}, right {r}, "
                        f"strike {_num(k)}")
        if day is not None and exp < day:
            _fail(path, f"row {i + 1}: contract {symbol} expired before the session {day}")
