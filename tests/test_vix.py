"""feeds.vix.vix_asof: the previous session's VIX close, never the same day's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feeds.vix import vix_asof
from mtbt.errors import DataError

NY = "America/New_York"
# exchange_calendars 4.13 (via mtbt.sessions) trips a pandas 3.1 deprecation warning when it
# builds a calendar; not ours to fix here, and the first test to build one would fail.



def vix_series(values: dict[str, float]) -> pd.Series:
    idx = pd.DatetimeIndex(pd.to_datetime(list(values)), name="date")
    return pd.Series(list(values.values()), index=idx, name="close", dtype="float64")


VIX = vix_series({
    "2024-01-02": 13.2, "2024-01-03": 14.1, "2024-01-04": 13.9, "2024-01-05": 13.5,
    "2024-01-08": 13.0,
})


def bars(*times: str, tz: str | None = NY) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(list(times))).tz_localize(tz)


def test_bar_never_sees_its_own_days_close():
    got = vix_asof(bars("2024-01-03 09:30", "2024-01-03 15:59", "2024-01-04 09:30"), VIX)
    np.testing.assert_array_equal(got, [13.2, 13.2, 14.1])
    assert 14.1 not in got[:2]


def test_monday_sees_fridays_close():
    got = vix_asof(bars("2024-01-08 09:30", "2024-01-08 12:00"), VIX)
    np.testing.assert_array_equal(got, [13.5, 13.5])


def test_before_first_close_is_nan():
    got = vix_asof(bars("2024-01-01 10:00", "2024-01-02 10:00", "2024-01-03 10:00"), VIX)
    assert np.isnan(got[:2]).all()
    assert got[2] == 13.2
    assert got.dtype == np.float64


def test_uses_the_new_york_date_of_utc_bars():
    # 2024-01-04 03:00 UTC is 2024-01-03 22:00 in New York: the Jan 2 close applies
    got = vix_asof(bars("2024-01-04 03:00", "2024-01-04 15:00", tz="UTC"), VIX)
    np.testing.assert_array_equal(got, [13.2, 14.1])


def test_naive_new_york_bars():
    got = vix_asof(bars("2024-01-05 10:00", tz=None), VIX)
    np.testing.assert_array_equal(got, [13.9])


def test_nan_closes_are_skipped():
    vix = VIX.copy()
    vix.loc["2024-01-04"] = np.nan
    got = vix_asof(bars("2024-01-05 10:00"), vix)
    np.testing.assert_array_equal(got, [14.1])


def test_stale_vix_raises_with_source_and_dates():
    with pytest.raises(DataError) as info:
        vix_asof(bars("2024-01-09 10:00", "2024-01-17 10:00"), VIX, source="data/vix.parquet")
    msg = str(info.value)
    assert msg == ("data/vix.parquet: no VIX close within 7 days before 2024-01-17 "
                   "(latest usable is 2024-01-08); the VIX file must cover the bars")


def test_exactly_max_stale_days_is_allowed():
    got = vix_asof(bars("2024-01-15 10:00"), VIX)   # 7 days after 2024-01-08
    assert got[0] == 13.0
    with pytest.raises(DataError, match="within 3 days"):
        vix_asof(bars("2024-01-15 10:00"), VIX, max_stale_days=3)


def test_empty_inputs():
    assert vix_asof(bars(), VIX).shape == (0,)
    empty = VIX.iloc[:0]
    assert np.isnan(vix_asof(bars("2024-01-03 10:00"), empty)).all()


def test_real_files_cover_the_spy_bars(shared_data):
    from feeds.parquet import read_bars, read_daily, regular_hours

    spy = regular_hours(read_bars(shared_data / "spy_1m_2024-03-26_2025-04-02.parquet"))
    vix = read_daily(shared_data / "vix_1d_1990_2026.parquet")
    got = vix_asof(spy.index, vix, source="vix_1d_1990_2026.parquet")
    assert not np.isnan(got).any()
    first = spy.index[0]                      # 2024-03-26: sees the 2024-03-25 close
    assert got[0] == vix.loc[vix.index < first.tz_localize(None).normalize()].iloc[-1]


def test_a_vix_file_that_starts_after_a_traded_session_is_refused(tmp_path):
    """Warm-up sessions need no VIX; the first traded one needs the close before it."""
    from feeds.loader import load_market_data
    from feeds.sample import sample_bars, sample_vix
    from mtbt.config import load_run

    bars, vix = sample_bars(7, 30), sample_vix(7, 30)
    bars.rename_axis("timestamp").reset_index().to_parquet(tmp_path / "bars.parquet")
    days = bars.index.normalize().unique()

    def load(first_vix: int, start: int):
        vix.iloc[first_vix:].rename_axis("timestamp").reset_index(name="close").to_parquet(
            tmp_path / "vix.parquet")
        cfg = load_run(None, [f'data.bars="{tmp_path / "bars.parquet"}"',
                              f'data.vix="{tmp_path / "vix.parquet"}"',
                              f'data.start="{days[start]:%Y-%m-%d}"', "data.warmup_sessions=5"])
        return load_market_data(cfg.data)

    assert load(first_vix=3, start=10).trade_from == days[10].date()    # warm-up lacks VIX
    with pytest.raises(DataError) as err:
        load(first_vix=12, start=10)
    assert (f"no VIX close before {days[10]:%Y-%m-%d}, a traded session (the file starts "
            f"{vix.index[12]:%Y-%m-%d})") in str(err.value)
