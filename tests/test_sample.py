"""feeds.sample: the embedded SYNTHETIC bars and VIX (determinism, shape, realism)."""
from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest

from feeds.parquet import read_bars, regular_hours
from feeds.sample import sample_bars, sample_vix, stretch_bounds
from mtbt.sessions import sessions

NY = "America/New_York"
# exchange_calendars 4.13 (via mtbt.sessions) trips a pandas 3.1 deprecation warning when it
# builds a calendar; not ours to fix here, and the first test to build one would fail.

N = 63


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return sample_bars()


@pytest.fixture(scope="module")
def vix() -> pd.Series:
    return sample_vix()


@pytest.fixture(scope="module")
def daily(bars, vix) -> pd.DataFrame:
    g = bars.groupby(bars.index.date)
    d = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(),
                      "low": g["low"].min(), "close": g["close"].last(), "n": g.size()})
    d["range"] = (d["high"] - d["low"]) / d["close"]
    d["vix"] = vix.to_numpy()[1:]
    return d


def stretch(name: str) -> slice:
    return next(sl for st, sl in stretch_bounds(N) if st.name == name)


def test_deterministic_per_seed(bars, vix):
    pd.testing.assert_frame_equal(sample_bars(), bars)
    pd.testing.assert_series_equal(sample_vix(), vix)
    other = sample_bars(seed=8)
    assert not np.array_equal(other["close"].to_numpy(), bars["close"].to_numpy())
    assert not np.array_equal(sample_vix(seed=8).to_numpy(), vix.to_numpy())


def test_fast():
    sample_bars(n_sessions=5)                     # warm the exchange calendar
    best = min(_timed(sample_bars) for _ in range(3))
    assert best < 0.5


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_form_matches_read_bars(bars):
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert all(bars.dtypes == "float64")
    assert bars.index.name == "timestamp"
    assert str(bars.index.tz) == NY
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    pd.testing.assert_frame_equal(regular_hours(bars), bars)


def test_sessions_from_the_calendar(daily):
    cal = sessions(dt.date(2023, 1, 1), dt.date(2023, 11, 30))
    assert list(daily.index) == list(cal)[-N:]
    assert daily.index[-1] == dt.date(2023, 11, 30)
    early = dt.date(2023, 11, 24)
    assert daily.loc[early, "n"] == 210
    assert (daily.drop(index=early)["n"] == 390).all()


def test_bar_times(bars):
    times = pd.Series(bars.index.strftime("%H:%M"), index=bars.index.date)
    assert times.groupby(level=0).first().eq("09:30").all()
    last = times.groupby(level=0).last()
    assert last[dt.date(2023, 11, 24)] == "12:59"
    assert (last.drop(index=dt.date(2023, 11, 24)) == "15:59").all()


def test_ohlc_consistent_and_in_cents(bars):
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()
    assert (lo > 0).all()
    cents = bars[["open", "high", "low", "close"]].to_numpy() * 100
    np.testing.assert_allclose(cents, np.round(cents), atol=1e-6)
    assert 380 < lo.min() and h.max() < 500
    assert 420 < c.mean() < 470


def test_vix_form(vix, daily):
    assert len(vix) == N + 1
    assert vix.name == "close" and vix.index.name == "date"
    assert vix.index.tz is None and vix.dtype == "float64"
    first = pd.Timestamp(daily.index[0])
    assert vix.index[0] < first and vix.index[1] == first
    cal = list(sessions(dt.date(2023, 1, 1), dt.date(2023, 11, 30)))
    assert [d.date() for d in vix.index] == cal[-(N + 1):]


def test_vix_visits_every_regime(vix):
    v = vix.to_numpy()
    assert (v < 13).any() and (v > 30).any() and ((v >= 13) & (v <= 30)).any()
    high = v > 30
    longest = max(len(run) for run in "".join("x" if x else " " for x in high).split())
    assert longest >= 3


def test_vix_moves_plausibly(vix):
    jumps = np.abs(np.diff(np.log(vix.to_numpy())))
    entry = stretch("sell-off").start            # jump index into the sell-off's first day
    assert np.delete(jumps, entry).max() <= 0.25


def test_stretch_levels(daily):
    def med(name: str) -> float:
        return float(daily["range"].iloc[stretch(name)].median())

    def vix_in(name: str, lo: float, hi: float) -> bool:
        return bool(daily["vix"].iloc[stretch(name)].between(lo, hi).all())

    assert 0.009 <= med("uptrend") <= 0.013 and vix_in("uptrend", 14.5, 19.5)
    assert 0.003 <= med("low-vol range") <= 0.0045 and vix_in("low-vol range", 11, 12.7)
    assert 0.010 <= med("range") <= 0.016 and vix_in("range", 17, 23)
    assert vix_in("recovery", 14, 18)
    selloff = daily.iloc[stretch("sell-off")]
    hot = selloff[selloff["vix"] > 30]
    assert len(hot) >= 3 and hot["range"].between(0.02, 0.03).all()


def test_trends(daily):
    close = daily["close"]

    def change(name: str) -> float:
        sl = stretch(name)
        return close.iloc[sl.stop - 1] / daily["open"].iloc[sl.start] - 1

    assert change("uptrend") > 0.01
    assert change("sell-off") < -0.03
    assert change("recovery") > 0.01
    assert abs(change("low-vol range")) < 0.01


def test_realised_vol_follows_vix(daily):
    assert np.corrcoef(daily["vix"], daily["range"])[0, 1] > 0.8


def test_intraday_shape(bars):
    minute = (bars.index.hour - 9) * 60 + bars.index.minute - 30
    ret = np.abs(np.log(bars["close"] / bars["open"])).to_numpy()
    normal = bars.index.date != dt.date(2023, 11, 24)
    first, mid, last = minute < 30, (minute >= 150) & (minute < 240), minute >= 360
    assert ret[first].mean() > 1.3 * ret[mid].mean()
    assert ret[last & normal].mean() > 1.1 * ret[mid].mean()
    vol = bars["volume"].to_numpy()
    assert np.median(vol[first]) > 2 * np.median(vol[mid])
    assert 40e3 < np.median(vol) < 150e3
    assert np.quantile(vol, 0.95) < 300e3


def test_waves_and_small_gaps(bars, daily):
    five = np.log(bars["close"].to_numpy()[4::5])
    r = np.diff(five)
    assert np.corrcoef(r[:-1], r[1:])[0, 1] > 0.02      # persistent moves: waves
    gaps = daily["open"] / daily["close"].shift() - 1
    assert gaps.abs().max() < 0.01


def test_read_bars_validation_after_round_trip(tmp_path, bars):
    path = tmp_path / "sample.parquet"
    bars.reset_index().to_parquet(path)
    pd.testing.assert_frame_equal(read_bars(path), bars)


def test_small_and_other_sizes():
    few = sample_bars(n_sessions=3)
    assert len(set(few.index.date)) == 3
    assert len(sample_vix(n_sessions=3)) == 4
    with pytest.raises(ValueError):
        sample_bars(n_sessions=0)
