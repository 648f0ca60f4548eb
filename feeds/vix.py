"""Daily VIX aligned to intraday bars without look-ahead.

A day's VIX close is known only after that day's session, so a bar on New York date D may use
the close of the latest date strictly before D (normally the previous session).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtbt.errors import DataError
from mtbt.sessions import NY


def _ny_days(index: pd.DatetimeIndex) -> np.ndarray:
    """New York calendar dates of a tz-aware (or naive New York) index, as datetime64[D]."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_convert(NY).tz_localize(None)
    return idx.to_numpy().astype("datetime64[D]")


def _label_days(index: pd.Index) -> np.ndarray:
    """Date labels of a daily index (the wall-clock date in its own zone), as datetime64[D]."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.to_numpy().astype("datetime64[D]")


def vix_asof(
    bar_index: pd.DatetimeIndex,
    vix: pd.Series,
    *,
    source: str = "VIX",
    max_stale_days: int = 7,
) -> np.ndarray:
    """The latest VIX close dated strictly before each bar's New York date.

    Parameters
    ----------
    bar_index : bar times, tz-aware or naive New York.
    vix : daily closes indexed by date (``feeds.parquet.read_daily`` form); NaNs are skipped.
    source : the name used in error messages (normally the VIX file's path).
    max_stale_days : the most calendar days the used close may lie before the bar's date.

    Returns
    -------
    float64 array aligned with ``bar_index``; NaN where no earlier close exists.

    Raises
    ------
    DataError : for some bar the latest usable close is more than ``max_stale_days`` old.
    """
    bar_days = _ny_days(bar_index)
    out = np.full(len(bar_days), np.nan)
    known = vix.dropna().sort_index(kind="stable")
    if len(bar_days) == 0 or len(known) == 0:
        return out
    vix_days = _label_days(known.index)
    values = known.to_numpy(dtype="float64")
    pos = np.searchsorted(vix_days, bar_days, side="left") - 1
    has = np.flatnonzero(pos >= 0)
    out[has] = values[pos[has]]
    age = (bar_days[has] - vix_days[pos[has]]).astype("int64")
    stale = np.flatnonzero(age > max_stale_days)
    if stale.size:
        i = has[stale[0]]
        raise DataError(
            f"{source}: no VIX close within {max_stale_days} days before {bar_days[i]} "
            f"(latest usable is {vix_days[pos[i]]}); the VIX file must cover the bars"
        )
    return out
