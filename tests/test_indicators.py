"""mtbt's indicators: identical in every engine mode, and right on hand-made inputs."""
from __future__ import annotations

import datetime as dt
import math

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

import mtbt  # noqa: F401  (applies the backtrader fixes)
from feeds.arrays import BarFeed
from feeds.sample import sample_bars, sample_vix
from feeds.vix import vix_asof
from mtbt.indicators import (
    Confluence,
    Regime,
    RegimeState,
    Renko,
    SessionBars,
    Wave,
    get_regime,
)
from mtbt.indicators._kernels import RenkoKernel, WaveKernel, bucket_key
from tests.bars import session_frame

MODES = [dict(runonce=True, preload=True), dict(runonce=False, preload=True),
         dict(runonce=False, preload=False)]


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    bars = sample_bars(seed=3, n_sessions=40)
    return bars.assign(vix=vix_asof(bars.index, sample_vix(seed=3, n_sessions=40)))


class AllIndicators(bt.Strategy):
    """Every indicator, built both standalone and sharing higher-timeframe bars."""

    def __init__(self):
        d = self.data
        daily = SessionBars(d, timeframe="1d")
        h4 = SessionBars(d, timeframe="4h", ema_period=6)
        renko = Renko(d, daily)
        self.inds = {
            "daily": daily, "h4": h4, "m15": SessionBars(d, timeframe="15m"),
            "renko": renko, "renko_5m": Renko(d, timeframe="5m", mult=1.0),
            "wave": Wave(d, renko), "wave_alone": Wave(d),
            "confluence": Confluence(d, h4, daily), "confluence_alone": Confluence(d),
            "regime": Regime(d, daily), "regime_alone": Regime(d),
        }

    def stop(self):
        n = len(self.data)
        self.values = {f"{name}.{line}": np.array(getattr(ind.lines, line).array[:n])
                       for name, ind in self.inds.items()
                       for line in ind.lines.getlinealiases()}


def run_modes(frame: pd.DataFrame) -> list[dict[str, np.ndarray]]:
    out = []
    for mode in MODES:
        cerebro = bt.Cerebro(stdstats=False, **mode)
        cerebro.adddata(BarFeed(dataname=frame))
        cerebro.addstrategy(AllIndicators)
        out.append(cerebro.run()[0].values)
    return out


def test_every_indicator_is_identical_in_runonce_and_next_modes(sample):
    vectorised, *others = run_modes(sample)
    assert len(vectorised) > 30
    for values in others:
        for key, expected in vectorised.items():
            np.testing.assert_array_equal(values[key], expected, err_msg=key)
    # the run is not trivial: bricks, signals of both signs and every regime happened
    assert vectorised["renko.count"][-1] > 50
    assert set(np.unique(vectorised["wave.signal"])) == {-1.0, 0.0, 1.0}
    assert {0.0, 1.0, 2.0, 3.0} <= set(np.unique(vectorised["regime.regime"]))


class _Collect(bt.Strategy):
    """Completed bars of our SessionBars (when its count grows) and of data1 (resampled)."""

    params = (("timeframe", "4h"),)

    def __init__(self):
        self.bars = SessionBars(self.data0, timeframe=self.p.timeframe)
        self.ours, self.theirs = [], []

    def next(self):
        if len(self.datas) > 1 and len(self.data1) > len(self.theirs):
            d = self.data1
            self.theirs.append((d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0]))
        if self.bars.count[0] > len(self.ours):
            b = self.bars
            self.ours.append((b.open[0], b.high[0], b.low[0], b.close[0], b.volume[0]))


def test_4h_bars_equal_backtraders_resampled_bars(sample):
    """backtrader labels bars by their end, so its copy of the data is shifted one minute;
    ``boundoff=-90`` moves its 240-minute buckets from midnight to the 09:30 open. A last
    bar after the data keeps backtrader's resampler from crashing at the end."""
    end_labelled = sample.set_axis(sample.index + pd.Timedelta(minutes=1))
    sentinel = sample.iloc[[-1]].set_axis(sample.index[[-1]] + pd.Timedelta(days=3))
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(BarFeed(dataname=pd.concat([sample, sentinel])))
    cerebro.resampledata(BarFeed(dataname=end_labelled, sessionend=dt.time(16, 0)),
                         timeframe=bt.TimeFrame.Minutes, compression=240, boundoff=-90)
    cerebro.addstrategy(_Collect, timeframe="4h")
    (strat,) = cerebro.run()
    assert len(strat.ours) == 2 * 40 - 1          # two per session; the last never completes
    assert strat.ours == strat.theirs[:len(strat.ours)]


def test_daily_bars_equal_a_pandas_aggregation(sample):
    """backtrader's own daily resampler of minute bars crashes at the end of the data
    ("min() arg is an empty sequence"), so the reference here is pandas."""
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(BarFeed(dataname=sample))
    cerebro.addstrategy(_Collect, timeframe="1d")
    (strat,) = cerebro.run()
    day = sample.index.date
    ref = sample.groupby(day).agg(open=("open", "first"), high=("high", "max"),
                                  low=("low", "min"), close=("close", "last"),
                                  volume=("volume", "sum"))
    expected = [tuple(row) for row in ref.itertuples(index=False)][:-1]
    assert strat.ours == expected


def test_a_bucket_is_only_seen_after_it_completes():
    frame = session_frame(dt.date(2024, 1, 3), levels={"13:30": 101.0})
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(BarFeed(dataname=frame))
    cerebro.addstrategy(_Collect, timeframe="4h")
    (strat,) = cerebro.run()
    assert strat.ours == [(100.0, 100.02, 99.98, 100.0, 240_000.0)]   # 09:30-13:30 only


def test_bucket_keys_align_to_the_open():
    def key(hhmm: str, minutes: int) -> int:
        return bucket_key(bt.date2num(dt.datetime(2024, 1, 3, *map(int, hhmm.split(":")))),
                          minutes)
    assert key("09:30", 240) == key("13:29", 240) != key("13:30", 240) == key("15:59", 240)
    assert key("09:30", 0) == key("15:59", 0)
    assert key("09:44", 15) != key("09:45", 15) == key("09:59", 15)


def test_renko_bricks_on_hand_made_closes():
    k = RenkoKernel(mult=1.0)          # brick = atr = 1.0
    steps = [k.step(c, 1.0) for c in (100.0, 100.9, 101.0, 103.5, 102.6, 101.9, 101.0, 104.0)]
    direction = [s[0] for s in steps]
    run = [s[1] for s in steps]
    brick = [s[2] for s in steps]
    assert direction == [0, 0, 1, 1, 1, 1, -1, 1]
    assert run == [0, 0, 1, 3, 3, 3, 1, 2]          # 101.9 is not a 2-brick reversal from 103
    assert brick == [100.0, 100.0, 101.0, 103.0, 103.0, 103.0, 101.0, 104.0]
    assert steps[-2][3] == 102.0                     # the down run's first brick opened at 102
    assert steps[-1][3] == 102.0                     # and the up reversal's at 102 again
    assert k.count == 6


def test_renko_waits_for_a_brick_size():
    k = RenkoKernel(mult=0.5)
    assert k.step(100.0, math.nan)[0] == 0
    assert math.isnan(k.step(100.0, math.nan)[4])


def wave_kernel() -> WaveKernel:
    return WaveKernel(impulse_bricks=3, shallow_max=0.382, healthy_max=0.618,
                      resume_bricks=0.5, entry_zone_bricks=1.5)


def drive_wave(closes: list[float], brick: float = 1.0) -> list[tuple]:
    renko, wave = RenkoKernel(mult=1.0), wave_kernel()
    out = []
    for c in closes:
        direction, run, _, origin, size, count = renko.step(c, brick)
        out.append(wave.step(c, direction, run, origin, size, count))
    return out


def test_wave_signals_a_healthy_pullback_resuming():
    # impulse 100 -> 104 (4 bricks), pullback to 102 (50%), resume to 102.6
    out = drive_wave([100, 101, 102, 103, 104, 103.5, 102.8, 102.0, 102.3, 102.6])
    assert [o[0] for o in out] == [0] * 9 + [1.0]
    assert out[-1][1] == 2.0                         # healthy
    assert out[-1][2] == pytest.approx(0.5)
    assert out[-1][3] == 102.0


def test_wave_grades_shallow_and_deep():
    shallow = drive_wave([100, 101, 102, 103, 104, 103.0, 102.8, 103.4])
    assert shallow[-1][0] == 1.0 and shallow[-1][1] == 1.0     # 30% retracement
    deep = drive_wave([100, 101, 102, 103, 104, 103.0, 101.4, 101.2, 101.8])
    assert deep[-1][0] == 1.0 and deep[-1][1] == 3.0           # 70%


def test_wave_does_not_chase_a_fast_resumption():
    out = drive_wave([100, 101, 102, 103, 104, 103.0, 102.0, 103.8])
    assert [o[0] for o in out] == [0] * 8                      # 1.8 bricks off the low


def test_a_full_retracement_ends_the_wave():
    out = drive_wave([100, 101, 102, 103, 103.5, 102.5, 101.5, 100.0, 100.6])
    assert all(o[0] == 0 for o in out)


def test_short_waves_mirror_long_ones():
    out = drive_wave([104, 103, 102, 101, 100, 100.5, 101.2, 102.0, 101.7, 101.4])
    assert out[-1][0] == -1.0 and out[-1][1] == 2.0


@pytest.mark.parametrize("vix, atr_pct, expected", [
    (13.0, 0.5, RegimeState.TRADE_NORMAL), (30.0, 0.5, RegimeState.TRADE_NORMAL),
    (12.99, 1.0, RegimeState.PAUSE_ULTRA_LOW_VOL), (13.01, 1.0, RegimeState.TRADE_NORMAL),
    (29.99, 1.0, RegimeState.TRADE_NORMAL), (30.01, 1.0, RegimeState.PAUSE_HIGH_VOL),
    (20.0, 0.49, RegimeState.PAUSE_ULTRA_LOW_VOL), (20.0, 0.51, RegimeState.TRADE_NORMAL),
    (35.0, 0.3, RegimeState.PAUSE_ULTRA_LOW_VOL),     # the report's order: ultra-low first
    (math.nan, 1.0, RegimeState.WARMUP), (20.0, math.nan, RegimeState.WARMUP),
])
def test_get_regime_around_the_bounds(vix, atr_pct, expected):
    assert get_regime(vix, atr_pct) is expected


def test_regime_uses_the_prior_sessions_vix():
    """A VIX series that flips to 35 at the close of day 20: day 21 pauses, day 20 trades."""
    bars = sample_bars(seed=5, n_sessions=25)
    days = sorted({ts.date() for ts in bars.index})
    flip = pd.Timestamp(days[19])
    vix = pd.Series(20.0, index=pd.DatetimeIndex([pd.Timestamp(days[0]) - pd.Timedelta(days=3),
                                                  *map(pd.Timestamp, days)], name="date"))
    vix[vix.index >= flip] = 35.0
    frame = bars.assign(vix=vix_asof(bars.index, vix))

    class Probe(bt.Strategy):
        def __init__(self):
            self.regime = Regime(self.data, vix_min=13, vix_max=30, atr_min_pct=0.0)
            self.by_day = {}

        def next(self):
            self.by_day[self.data.datetime.date(0)] = RegimeState(int(self.regime.regime[0]))

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(BarFeed(dataname=frame))
    cerebro.addstrategy(Probe)
    (probe,) = cerebro.run()
    assert probe.by_day[days[19]] is RegimeState.TRADE_NORMAL
    assert probe.by_day[days[20]] is RegimeState.PAUSE_HIGH_VOL
