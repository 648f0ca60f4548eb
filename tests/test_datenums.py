"""The array conversions of backtrader's date numbers give what the one-at-a-time ones give."""
from __future__ import annotations

import datetime as dt

import backtrader as bt
import numpy as np
import pandas as pd

from mtbt.datenums import date2num_array, isoformat_array, num2date_array


def _minutes() -> pd.DatetimeIndex:
    """Minute bars across both DST changes of a year, plus odd seconds and microseconds."""
    bars = pd.date_range("2024-01-02 09:30", "2024-12-31 16:00", freq="37min",
                         tz="America/New_York")
    odd = pd.DatetimeIndex(["2024-03-10 03:00:01", "2024-11-03 00:59:59.999999",
                            "2024-06-03 12:00:00.000007", "2024-06-03 12:00:00.999995"],
                           tz="America/New_York")
    return bars.append(odd)


def test_num2date_array_is_backtraders_num2date_value_for_value():
    nums = date2num_array(_minutes())
    rng = np.random.default_rng(7)
    nums = np.concatenate([nums, 739000 + rng.random(20_000), [739000.0, 739000.99999999999]])
    expected = pd.DatetimeIndex([bt.num2date(x) for x in nums])
    got = num2date_array(nums)
    assert got.dtype == expected.dtype and got.equals(expected)


def test_date2num_array_is_backtraders_date2num_value_for_value():
    index = _minutes()
    naive = index.tz_localize(None)
    expected = [bt.date2num(ts.to_pydatetime()) for ts in naive]
    assert date2num_array(index).tolist() == expected


def test_isoformat_array_is_isoformat_value_for_value():
    index = _minutes()
    for times in (index[:-2], index, index.tz_convert("UTC"), index.tz_localize(None),
                  index.tz_convert(dt.timezone(dt.timedelta(hours=5, minutes=30))),
                  pd.DatetimeIndex([])):
        assert isoformat_array(times) == [ts.isoformat() for ts in times]
