"""The options bar store's contract: what ``write_option_bars`` writes reads back, and each
rule of ``read_option_bars`` refuses in one line naming the file."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from feeds.options_store import (
    OptionStore,
    option_bars_path,
    read_option_bars,
    write_option_bars,
)
from mtbt.errors import DataError

DAY = dt.date(2025, 8, 29)


def _bars(n: int = 3) -> pd.DataFrame:
    t = pd.date_range("2025-08-29 09:31", periods=n, freq="min", tz="America/New_York")
    rows = []
    for contract, right, strike in (("SPY250829C00645000", "C", 645.0),
                                    ("SPY250829P00640000", "P", 640.0)):
        for i, ts in enumerate(t):
            rows.append(dict(timestamp=ts, contract=contract, expiry="2025-08-29", right=right,
                             strike=strike, open=1.0 + i, high=1.2 + i, low=0.9 + i,
                             close=1.1 + i, volume=10.0, vwap=1.05 + i, trades=3.0))
    return pd.DataFrame(rows)


def test_written_bars_read_back_and_the_store_lists_its_sessions(tmp_path):
    path = write_option_bars(_bars().iloc[::-1], option_bars_path(tmp_path, "spy", DAY))
    assert path == tmp_path / "SPY" / "2025-08-29.parquet"
    back = read_option_bars(path)
    assert list(back["contract"].unique()) == ["SPY250829C00645000", "SPY250829P00640000"]
    assert back["timestamp"].is_monotonic_increasing is False     # sorted by contract first
    store = OptionStore(tmp_path, "SPY")
    assert store.days == (DAY,) and store.covers(DAY) and not store.covers(DAY.replace(day=28))
    assert len(store.bars(DAY)) == 6


@pytest.mark.parametrize("change, rule", [
    (lambda df: df.assign(high=df["high"].where(df.index != 2, 0.5)), "high < low"),
    (lambda df: pd.concat([df, df.iloc[[0]]]).sort_values(["contract", "timestamp"]),
     "has minute 09:31 twice"),
    (lambda df: df.assign(strike=df["strike"] + 1), "but expiry"),
    (lambda df: df.assign(contract="XYZ"), "not an OCC symbol"),
    (lambda df: df.assign(timestamp=df["timestamp"] + pd.Timedelta(hours=8)),
     "outside the session"),
    (lambda df: df.assign(vwap=-1.0), "bad vwap"),
    (lambda df: df.drop(columns="trades"), "missing column(s) 'trades'"),
    (lambda df: df.assign(timestamp=df["timestamp"].dt.tz_localize(None)), "tz-aware"),
])
def test_each_rule_is_refused_in_one_line_naming_the_file(tmp_path, change, rule):
    path = option_bars_path(tmp_path, "SPY", DAY)
    path.parent.mkdir(parents=True)
    change(_bars()).to_parquet(path, index=False)
    with pytest.raises(DataError) as err:
        read_option_bars(path)
    assert str(err.value).startswith(str(path)) and rule in str(err.value)
    assert "\n" not in str(err.value)


def test_a_refused_write_leaves_no_file(tmp_path):
    path = option_bars_path(tmp_path, "SPY", DAY)
    with pytest.raises(DataError, match="high < low"):
        write_option_bars(_bars().assign(high=0.5), path)
    assert list(path.parent.iterdir()) == []


def test_a_missing_store_or_session_is_named(tmp_path):
    with pytest.raises(DataError, match="no such options store"):
        OptionStore(tmp_path / "nope", "SPY")
    with pytest.raises(DataError, match="does not cover 2025-08-29"):
        OptionStore(tmp_path, "SPY").bars(DAY)
