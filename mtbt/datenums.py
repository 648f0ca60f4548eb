"""Bar times for whole arrays: ``date2num_array``, ``num2date_array``, ``isoformat_array``.

backtrader stores every bar time as a float (days since 0001-01-01, plus one); its
``date2num`` and ``num2date``, like ``Timestamp.isoformat``, convert one value at a time,
which costs seconds over a year of minute bars. These give the same values for a whole
index at once.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mtbt.sessions import NY

_ORDINAL_1970 = 719163  # datetime.date(1970, 1, 1).toordinal()


def date2num_array(index: pd.DatetimeIndex) -> np.ndarray:
    """backtrader's ``date2num`` for a whole index, as New York wall-clock time.

    Gives bit-identical floats to ``bt.date2num`` on the naive New York datetimes.
    """
    if index.tz is not None:
        index = index.tz_convert(NY).tz_localize(None)
    ns = index.as_unit("ns").asi8
    days, rem = np.divmod(ns, 86_400 * 10**9)
    hours, rem = np.divmod(rem, 3_600 * 10**9)
    minutes, rem = np.divmod(rem, 60 * 10**9)
    seconds, nanos = np.divmod(rem, 10**9)
    parts = zip(
        (days + _ORDINAL_1970).astype(float).tolist(), (hours / 24.0).tolist(),
        (minutes / 1440.0).tolist(), (seconds / 86400.0).tolist(),
        ((nanos // 1000) / 86400e6).tolist(), strict=True,
    )
    return np.fromiter((math.fsum(p) for p in parts), dtype=float, count=len(index))


def num2date_array(values) -> pd.DatetimeIndex:
    """backtrader's ``num2date`` for many date numbers: naive datetimes (microseconds), each
    equal to ``bt.num2date(x)``, by the same float steps (hours, minutes, seconds and
    microseconds peeled off the day's fraction, within 10 µs of a whole second rounded to
    it)."""
    x = np.asarray(values, dtype=float)
    day = np.trunc(x)
    hour, rest = np.divmod(24.0 * (x - day), 1)
    minute, rest = np.divmod(60.0 * rest, 1)
    second, rest = np.divmod(60.0 * rest, 1)
    micro = np.trunc(1e6 * rest).astype(np.int64)
    micro[micro < 10] = 0
    seconds = ((day.astype(np.int64) - _ORDINAL_1970) * 24 + hour.astype(np.int64)) * 3600 \
        + minute.astype(np.int64) * 60 + second.astype(np.int64)
    us = seconds * 1_000_000 + np.where(micro > 999_990, 1_000_000, micro)
    return pd.DatetimeIndex(us.astype("datetime64[us]"))


def isoformat_array(index: pd.DatetimeIndex) -> list[str]:
    """``[ts.isoformat() for ts in index]``, at array speed for a tz-aware index at whole
    seconds with whole-minute UTC offsets (the bar times of a run; anything else one by
    one)."""
    if index.tz is None or index.hasnans or (index.as_unit("ns").asi8 % 10**9).any():
        return [ts.isoformat() for ts in index]
    wall = index.tz_localize(None)
    offsets = wall.as_unit("s").asi8 - index.as_unit("s").asi8
    if (offsets % 60).any():
        return [ts.isoformat() for ts in index]
    text = np.datetime_as_string(wall.as_unit("s").values, unit="s").tolist()
    suffix = {int(s): f"{'-' if s < 0 else '+'}{abs(s) // 3600:02d}:{abs(s) % 3600 // 60:02d}"
              for s in np.unique(offsets)}
    return [t + suffix[s] for t, s in zip(text, offsets.tolist(), strict=True)]
