"""Bar and daily parquet files: load, check against the data contract, trim to sessions.

DataFrame level only (no backtrader). The contract (DESIGN.md, "Bars"): columns ``timestamp``
(tz-aware, UTC or America/New_York), ``open, high, low, close, volume``; one row per bar;
sorted; no duplicate timestamps. A file that breaks it is refused with a one-line
:class:`~mtbt.errors.DataError` naming the file and the rule. Row numbers in messages count
from 1; times in messages are New York wall-clock time.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import pandas as pd

from mtbt.errors import DataError
from mtbt.sessions import NY, sessions

OHLCV = ("open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
_NAIVE = "naive timestamps (no time zone); store them tz-aware in UTC or America/New_York"


def _fail(path: str | Path, rule: str) -> NoReturn:
    raise DataError(f"{path}: {rule}")


def _when(ts: pd.Timestamp) -> str:
    """A time as ``2024-01-02 09:31`` (seconds shown only when not zero)."""
    if ts.hour == ts.minute == ts.second == ts.microsecond == 0 and ts.tz is None:
        return ts.strftime("%Y-%m-%d")
    return ts.strftime("%Y-%m-%d %H:%M:%S" if ts.second or ts.microsecond else "%Y-%m-%d %H:%M")


def _num(v: float) -> str:
    return np.format_float_positional(float(v), trim="-")


def _load_frame(path: str | Path) -> pd.DataFrame:
    """Read a parquet file, refusing missing, empty and unreadable files."""
    p = Path(path)
    if not p.exists():
        _fail(path, "no such file")
    if not p.is_file():
        _fail(path, "not a file")
    if p.stat().st_size == 0:
        _fail(path, "empty file (0 bytes)")
    try:
        df = pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises several unrelated types
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataError(f"{path}: not a readable parquet file ({why})") from exc
    if "timestamp" not in df.columns and df.index.name == "timestamp":
        df = df.reset_index()
    return df


def _require(df: pd.DataFrame, path: str | Path, needed: tuple[str, ...], what: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        _fail(path, f"missing column(s) {names} ({what} needs {', '.join(needed)})")
    if len(df) == 0:
        _fail(path, "no rows (empty file)")


def _first(mask: np.ndarray) -> int:
    """Position of the first True in ``mask``, or -1."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else -1


def _check_order(idx: pd.DatetimeIndex, path: str | Path, what: str) -> None:
    """Refuse unsorted or duplicate entries (``what``: "timestamp" or "date")."""
    if idx.hasnans:
        _fail(path, f"missing {what} (NaT) at row {_first(np.asarray(idx.isna())) + 1}")
    step = np.diff(idx.asi8)
    i = _first(step < 0)
    if i >= 0:
        _fail(path, f"{what}s are not sorted (first out of order at row {i + 2}: "
                    f"{_when(idx[i + 1])})")
    i = _first(step == 0)
    if i >= 0:
        _fail(path, f"duplicate {what} {_when(idx[i])} (rows {i + 1} and {i + 2})")


def _floats(df: pd.DataFrame, col: str, path: str | Path) -> np.ndarray:
    s = df[col]
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        _fail(path, f"column '{col}' is not numeric (dtype {s.dtype})")
    return s.to_numpy(dtype="float64", na_value=np.nan)


def _check_finite(values: np.ndarray, col: str, idx: pd.DatetimeIndex, path: str | Path) -> None:
    i = _first(~np.isfinite(values))
    if i >= 0:
        kind = "NaN" if np.isnan(values[i]) else "infinite value"
        _fail(path, f"{kind} in {col} at {_when(idx[i])}")


def _check_bars(cols: dict[str, np.ndarray], idx: pd.DatetimeIndex, path: str | Path) -> None:
    """The value rules of a bar file, each vectorised over all rows."""
    for col in OHLCV:
        _check_finite(cols[col], col, idx, path)
    for col in PRICES:
        i = _first(cols[col] <= 0)
        if i >= 0:
            value = _num(cols[col][i])
            _fail(path, f"non-positive price in {col} at {_when(idx[i])} ({col} {value})")
    i = _first(cols["volume"] < 0)
    if i >= 0:
        _fail(path, f"negative volume at {_when(idx[i])} (volume {_num(cols['volume'][i])})")
    o, h, lo, c = (cols[k] for k in PRICES)
    i = _first(h < lo)
    if i >= 0:
        _fail(path, f"high < low at {_when(idx[i])} (high {_num(h[i])}, low {_num(lo[i])})")
    for rule, bad in (("high < max(open, close)", h < np.maximum(o, c)),
                      ("low > min(open, close)", lo > np.minimum(o, c))):
        i = _first(bad)
        if i >= 0:
            _fail(path, f"{rule} at {_when(idx[i])} (open {_num(o[i])}, high {_num(h[i])}, "
                        f"low {_num(lo[i])}, close {_num(c[i])})")


def _timestamps(df: pd.DataFrame, path: str | Path) -> pd.DatetimeIndex:
    """The ``timestamp`` column as a New York DatetimeIndex (ns); refuses naive times."""
    ts = df["timestamp"]
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        return pd.DatetimeIndex(ts).tz_convert(NY).as_unit("ns").rename("timestamp")
    if pd.api.types.is_datetime64_dtype(ts.dtype):
        _fail(path, _NAIVE)
    _fail(path, f"column 'timestamp' is not a datetime (dtype {ts.dtype})")


def read_bars(path: str | Path, *, bar_label: Literal["start", "end"] = "start") -> pd.DataFrame:
    """Load and check a parquet file of bars.

    Parameters
    ----------
    path : the parquet file (columns or index ``timestamp``, plus open, high, low, close, volume).
    bar_label : whether the file's timestamps label the bar's "start" or its "end"; "end"
        labels are moved back by one bar interval (the median spacing).

    Returns
    -------
    DataFrame indexed by a tz-aware America/New_York ``timestamp`` labelling each bar's start,
    with float64 columns open, high, low, close, volume (other columns dropped).

    Raises
    ------
    DataError : the file is missing, unreadable or breaks the bar contract.
    """
    if bar_label not in ("start", "end"):
        raise ValueError(f"bar_label must be 'start' or 'end', not {bar_label!r}")
    df = _load_frame(path)
    _require(df, path, ("timestamp", *OHLCV), "a bar file")
    idx = _timestamps(df, path)
    _check_order(idx, path, "timestamp")
    cols = {c: _floats(df, c, path) for c in OHLCV}
    _check_bars(cols, idx, path)
    if bar_label == "end":
        idx = idx - bar_interval(idx)
    return pd.DataFrame(cols, index=idx.rename("timestamp"))


def bar_interval(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The median spacing of a sorted index (1 minute when it has fewer than two entries)."""
    step = np.diff(index.asi8)
    step = step[step > 0]
    if step.size == 0:
        return pd.Timedelta(minutes=1)
    return pd.Timedelta(int(np.median(step)), unit=index.unit)


def _dates(df: pd.DataFrame, path: str | Path) -> pd.DatetimeIndex:
    """Daily timestamps as tz-naive dates (the wall-clock date in the file's own zone)."""
    ts = df["timestamp"]
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        idx = pd.DatetimeIndex(ts).tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(ts.dtype):
        idx = pd.DatetimeIndex(ts)
    elif ts.dtype == object:  # parquet date32 columns arrive as datetime.date objects
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(ts))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: column 'timestamp' holds non-dates ({exc})") from exc
    else:
        _fail(path, f"column 'timestamp' is not a datetime (dtype {ts.dtype})")
    return idx.as_unit("ns").normalize().rename("date")


def _check_intraday(df: pd.DataFrame, path: str | Path) -> None:
    """Refuse intraday bars given as a daily file (three or more times on one date; two
    rows of one date are reported as a duplicate date)."""
    ts = pd.to_datetime(df["timestamp"], errors="coerce")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    day = ts.dt.normalize()
    third = day.eq(day.shift()) & day.eq(day.shift(2))
    i = _first(third.to_numpy())
    if i >= 0:
        _fail(path, f"holds intraday bars ({_when(ts.iloc[i - 2])}, {ts.iloc[i - 1]:%H:%M}, "
                    f"{ts.iloc[i]:%H:%M}, ... on one date); a daily file has one row per date")


def read_daily(path: str | Path, column: str = "close") -> pd.Series:
    """Load and check a daily parquet file (e.g. VIX): one value per date.

    Parameters
    ----------
    path : the parquet file, with ``timestamp`` (the date; naive or tz-aware) and ``column``.
    column : the column to return.

    Returns
    -------
    float64 Series named ``column``, indexed by tz-naive normalized dates named "date".

    Raises
    ------
    DataError : missing/unreadable file or column, unsorted or duplicate dates, a NaN or
        non-positive value. High/low consistency is not checked (Cboe's own VIX file has
        bad high/low rows).
    """
    df = _load_frame(path)
    _require(df, path, ("timestamp", column), "a daily file")
    idx = _dates(df, path)
    _check_intraday(df, path)
    _check_order(idx, path, "date")
    values = _floats(df, column, path)
    _check_finite(values, column, idx, path)
    i = _first(values <= 0)
    if i >= 0:
        _fail(path, f"non-positive {column} at {_when(idx[i])} ({column} {_num(values[i])})")
    return pd.Series(values, index=idx, name=column)


def regular_hours(bars: pd.DataFrame) -> pd.DataFrame:
    """Keep only bars starting inside an XNYS regular session (open <= start < close).

    Holidays and other non-session dates are dropped entirely; on early-close days the bars
    from the early close on are dropped. A naive index is taken as New York time.
    """
    idx = pd.DatetimeIndex(bars.index)
    if len(idx) == 0:
        return bars.copy()
    wall = idx.tz_convert(NY).tz_localize(None) if idx.tz is not None else idx
    t = wall.to_numpy().astype("datetime64[ns]")
    day = t.astype("datetime64[D]")
    sess = sessions(pd.Timestamp(day.min()).date(), pd.Timestamp(day.max()).date())
    if not sess:
        return bars.iloc[:0].copy()
    keys = np.array(list(sess), dtype="datetime64[D]")
    opens = np.array([s.open for s in sess.values()], dtype="datetime64[ns]")
    closes = np.array([s.close for s in sess.values()], dtype="datetime64[ns]")
    pos = np.minimum(np.searchsorted(keys, day), len(keys) - 1)
    keep = (keys[pos] == day) & (t >= opens[pos]) & (t < closes[pos])
    return bars.iloc[np.flatnonzero(keep)].copy()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    return digest.hexdigest()
