"""feeds.parquet: bar/daily file loading, the data contract's refusals, session trimming."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from feeds.parquet import file_sha256, read_bars, read_daily, regular_hours
from mtbt.errors import DataError

NY = "America/New_York"
# exchange_calendars 4.13 (via mtbt.sessions) trips a pandas 3.1 deprecation warning when it
# builds a calendar; not ours to fix here, and the first test to build one would fail.



def bars_frame(n: int = 5, start: str = "2024-01-02 09:30", tz: str | None = NY) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="min", tz=tz)
    close = 100.0 + np.arange(n) * 0.1
    return pd.DataFrame({
        "timestamp": ts, "open": close - 0.05, "high": close + 0.1, "low": close - 0.1,
        "close": close, "volume": np.full(n, 1000.0),
    })


def write(tmp_path, df: pd.DataFrame, name: str = "bars.parquet"):
    path = tmp_path / name
    df.to_parquet(path)
    return path


def refused(path, *fragments: str, reader=read_bars) -> str:
    with pytest.raises(DataError) as info:
        reader(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


# --- read_bars: accepted input -------------------------------------------------------------

def test_read_bars_new_york_round_trip(tmp_path):
    df = bars_frame()
    out = read_bars(write(tmp_path, df))
    assert list(out.columns) == ["open", "high", "low", "close", "volume"]
    assert all(out.dtypes == "float64")
    assert out.index.name == "timestamp"
    assert str(out.index.tz) == NY
    assert out.index[0] == pd.Timestamp("2024-01-02 09:30", tz=NY)
    np.testing.assert_array_equal(out["close"].to_numpy(), df["close"].to_numpy())


def test_read_bars_converts_utc_to_new_york(tmp_path):
    df = bars_frame(start="2024-01-02 14:30", tz="UTC")
    out = read_bars(write(tmp_path, df))
    assert str(out.index.tz) == NY
    assert out.index[0].strftime("%Y-%m-%d %H:%M") == "2024-01-02 09:30"
    assert (out.index == pd.DatetimeIndex(df["timestamp"])).all()


def test_read_bars_accepts_timestamp_index_drops_extras_and_casts(tmp_path):
    df = bars_frame().assign(vwap=1.0, volume=lambda d: d["volume"].astype("int64"))
    out = read_bars(write(tmp_path, df.set_index("timestamp")))
    assert list(out.columns) == ["open", "high", "low", "close", "volume"]
    assert out["volume"].dtype == "float64"
    assert len(out) == 5


def test_read_bars_end_label_shifts_back_one_bar(tmp_path):
    df = bars_frame(start="2024-01-02 09:31")
    start = read_bars(write(tmp_path, df))
    end = read_bars(write(tmp_path, df), bar_label="end")
    assert (start.index - end.index == pd.Timedelta(minutes=1)).all()
    assert end.index[0] == pd.Timestamp("2024-01-02 09:30", tz=NY)


def test_read_bars_rejects_unknown_bar_label(tmp_path):
    with pytest.raises(ValueError):
        read_bars(write(tmp_path, bars_frame()), bar_label="middle")  # type: ignore[arg-type]


# --- read_bars: refusals ---------------------------------------------------------------------

def test_missing_file(tmp_path):
    refused(tmp_path / "nope.parquet", "no such file")


def test_not_parquet(tmp_path):
    path = tmp_path / "bars.parquet"
    path.write_text("timestamp,open\n2024-01-02,1\n")
    refused(path, "not a readable parquet file")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "bars.parquet"
    path.write_bytes(b"")
    refused(path, "empty file")


def test_no_rows(tmp_path):
    refused(write(tmp_path, bars_frame().iloc[:0]), "no rows")


def test_missing_column(tmp_path):
    refused(write(tmp_path, bars_frame().drop(columns="close")),
            "missing column(s) 'close' "
            "(a bar file needs timestamp, open, high, low, close, volume)")


def test_naive_timestamps(tmp_path):
    refused(write(tmp_path, bars_frame(tz=None)),
            "naive timestamps (no time zone); store them tz-aware in UTC or America/New_York")


def test_timestamp_not_datetime(tmp_path):
    df = bars_frame().assign(timestamp=lambda d: d["timestamp"].astype(str))
    refused(write(tmp_path, df), "column 'timestamp' is not a datetime")


def test_unsorted(tmp_path):
    df = bars_frame(20)
    df = df.iloc[[*range(15), 16, 15, 17, 18, 19]]
    refused(write(tmp_path, df), "timestamps are not sorted (first out of order at row 17: "
                                 "2024-01-02 09:45)")


def test_duplicate(tmp_path):
    df = bars_frame()
    df = df.iloc[[0, 1, 1, 2, 3]]
    refused(write(tmp_path, df), "duplicate timestamp 2024-01-02 09:31 (rows 2 and 3)")


@pytest.mark.parametrize("col", ["open", "high", "low", "close", "volume"])
def test_nan(tmp_path, col):
    df = bars_frame()
    df.loc[1, col] = np.nan
    refused(write(tmp_path, df), f"NaN in {col} at 2024-01-02 09:31")


def test_infinite(tmp_path):
    df = bars_frame()
    df.loc[2, "high"] = np.inf
    refused(write(tmp_path, df), "infinite value in high at 2024-01-02 09:32")


def test_non_positive_price(tmp_path):
    df = bars_frame()
    df.loc[3, "low"] = 0.0
    refused(write(tmp_path, df), "non-positive price in low at 2024-01-02 09:33")


def test_negative_volume(tmp_path):
    df = bars_frame()
    df.loc[4, "volume"] = -1.0
    refused(write(tmp_path, df), "negative volume at 2024-01-02 09:34")


def test_high_below_low(tmp_path):
    df = bars_frame()
    df.loc[1, ["open", "high", "low", "close"]] = [100.15, 100.1, 100.2, 100.15]
    refused(write(tmp_path, df), "high < low at 2024-01-02 09:31 (high 100.1, low 100.2)")


def test_high_below_open_or_close(tmp_path):
    df = bars_frame()
    df.loc[2, "close"] = df.loc[2, "high"] + 0.01
    refused(write(tmp_path, df), "high < max(open, close) at 2024-01-02 09:32")


def test_low_above_open_or_close(tmp_path):
    df = bars_frame()
    df.loc[2, "open"] = df.loc[2, "low"] - 0.01
    refused(write(tmp_path, df), "low > min(open, close) at 2024-01-02 09:32")


def test_non_numeric_column(tmp_path):
    df = bars_frame().assign(volume="lots")
    refused(write(tmp_path, df), "column 'volume' is not numeric")


def test_checks_are_vectorised_fast(tmp_path):
    import time

    df = bars_frame(200_000)
    path = write(tmp_path, df)
    t0 = time.perf_counter()
    out = read_bars(path)
    assert len(out) == 200_000
    assert time.perf_counter() - t0 < 2.0


# --- read_daily ------------------------------------------------------------------------------

def daily_frame(tz: str | None = NY) -> pd.DataFrame:
    ts = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]).tz_localize(tz)
    close = np.array([13.2, 14.1, 13.9, 13.5])
    # high/low deliberately inconsistent: daily files are not checked for it
    return pd.DataFrame({"timestamp": ts, "open": close, "high": close - 1, "low": close + 1,
                         "close": close, "volume": 0.0})


@pytest.mark.parametrize("tz", [NY, "UTC", None])
def test_read_daily(tmp_path, tz):
    out = read_daily(write(tmp_path, daily_frame(tz), "vix.parquet"))
    assert out.name == "close"
    assert out.dtype == "float64"
    assert out.index.name == "date"
    assert out.index.tz is None
    assert (out.index == out.index.normalize()).all()
    assert out.index[0] == pd.Timestamp("2024-01-02")
    assert out.iloc[1] == 14.1


def test_read_daily_other_column(tmp_path):
    out = read_daily(write(tmp_path, daily_frame(), "vix.parquet"), column="high")
    assert out.name == "high"
    assert out.iloc[0] == pytest.approx(12.2)


def test_read_daily_refusals(tmp_path):
    def daily(path):
        return read_daily(path)

    refused(tmp_path / "none.parquet", "no such file", reader=daily)
    df = daily_frame()
    refused(write(tmp_path, df.drop(columns="close"), "a.parquet"),
            "missing column(s) 'close' (a daily file needs timestamp, close)", reader=daily)
    refused(write(tmp_path, df.iloc[[0, 2, 1, 3]], "b.parquet"),
            "dates are not sorted (first out of order at row 3: 2024-01-03)", reader=daily)
    refused(write(tmp_path, df.iloc[[0, 1, 1, 2]], "c.parquet"),
            "duplicate date 2024-01-03 (rows 2 and 3)", reader=daily)
    nan = df.copy()
    nan.loc[2, "close"] = np.nan
    refused(write(tmp_path, nan, "d.parquet"), "NaN in close at 2024-01-04", reader=daily)
    neg = df.copy()
    neg.loc[3, "close"] = 0.0
    refused(write(tmp_path, neg, "e.parquet"), "non-positive close at 2024-01-05", reader=daily)
    refused(write(tmp_path, df.iloc[:0], "f.parquet"), "no rows", reader=daily)


def test_read_daily_same_date_twice_is_a_duplicate(tmp_path):
    df = daily_frame()
    df.loc[1, "timestamp"] = df.loc[0, "timestamp"] + pd.Timedelta(hours=16)
    refused(write(tmp_path, df, "vix.parquet"), "duplicate date 2024-01-02", reader=read_daily)


def test_read_daily_refuses_minute_bars_naming_them(tmp_path):
    minutes = pd.DataFrame({"timestamp": pd.date_range("2024-01-02 09:30", periods=5,
                                                       freq="min", tz=NY), "close": 15.0})
    refused(write(tmp_path, minutes, "vix.parquet"),
            "holds intraday bars (2024-01-02 09:30, 09:31, 09:32, ... on one date); a daily "
            "file has one row per date", reader=read_daily)


# --- regular_hours ---------------------------------------------------------------------------

def all_minutes(days: list[str]) -> pd.DataFrame:
    idx = pd.DatetimeIndex(np.concatenate([
        pd.date_range(f"{d} 04:00", f"{d} 19:59", freq="min", tz=NY) for d in days
    ])).tz_convert(NY)
    return pd.DataFrame({"close": np.arange(len(idx), dtype=float)}, index=idx)


def test_regular_hours_sessions_holidays_and_early_closes():
    bars = all_minutes(["2024-07-03", "2024-07-04", "2024-11-27", "2024-11-29"])
    out = regular_hours(bars)
    counts = pd.Series(out.index.date).value_counts()
    assert counts[pd.Timestamp("2024-07-03").date()] == 210      # early close
    assert pd.Timestamp("2024-07-04").date() not in counts.index  # holiday
    assert counts[pd.Timestamp("2024-11-27").date()] == 390
    assert counts[pd.Timestamp("2024-11-29").date()] == 210      # early close
    times = set(out.index.strftime("%Y-%m-%d %H:%M"))
    assert {"2024-11-27 09:30", "2024-11-27 15:59", "2024-11-29 12:59"} <= times
    assert not {"2024-11-27 09:29", "2024-11-27 16:00", "2024-11-29 13:00"} & times
    assert out.index.tz == bars.index.tz


def test_regular_hours_naive_and_empty():
    bars = all_minutes(["2024-11-27"])
    naive = bars.set_axis(bars.index.tz_localize(None))
    assert len(regular_hours(naive)) == 390
    assert regular_hours(bars.iloc[:0]).empty
    weekend = all_minutes(["2024-11-30"])
    assert regular_hours(weekend).empty


def test_file_sha256(tmp_path):
    path = tmp_path / "x.bin"
    data = bytes(range(256)) * 10_000
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(DataError, match="no such file"):
        file_sha256(tmp_path / "missing.bin")


# --- real data (skips without ../shared/data) -------------------------------------------------

def test_real_spy_minute_bars(shared_data):
    bars = read_bars(shared_data / "spy_1m_2024-03-26_2025-04-02.parquet")
    assert len(bars) == 102_236
    assert str(bars.index.tz) == NY
    rth = regular_hours(bars)
    per_day = pd.Series(rth.index.date).value_counts()
    assert per_day.median() == 390
    assert per_day.max() == 390
    assert rth.index.time.min().strftime("%H:%M") == "09:30"
    assert rth.index.time.max().strftime("%H:%M") == "15:59"


def test_real_vix_daily(shared_data):
    vix = read_daily(shared_data / "vix_1d_1990_2026.parquet")
    assert len(vix) == 9_241
    assert vix.index[0] == pd.Timestamp("1990-01-02")
    assert vix.loc["2020-03-16"] == pytest.approx(82.69)
    assert 9 < vix.min() < vix.max() < 90
