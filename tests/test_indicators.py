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
from mtbt.indicators._kernels import (
    GRID_SESSIONS,
    TIMEFRAME_MINUTES,
    WINDOW_SESSIONS,
    RenkoKernel,
    SessionBarsKernel,
    WaveKernel,
    bucket_key,
)
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


def run_modes(frame: pd.DataFrame, modes=MODES) -> list[dict[str, np.ndarray]]:
    out = []
    for mode in modes:
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
    assert vectorised["renko.count"].max() > 10
    assert set(np.unique(vectorised["renko.direction"])) == {-1.0, 0.0, 1.0}
    assert set(np.unique(vectorised["wave.signal"])) == {-1.0, 0.0, 1.0}
    assert {0.0, 1.0, 2.0, 3.0} <= set(np.unique(vectorised["regime.regime"]))


class _Collect(bt.Strategy):
    """Completed bars of our SessionBars (on the first bar of each new bucket, when the last
    one completes) and of data1 (resampled)."""

    params = (("timeframe", "4h"),)

    def __init__(self):
        self.bars = SessionBars(self.data0, timeframe=self.p.timeframe)
        self.ours, self.theirs = [], []
        self.key = None

    def next(self):
        if len(self.datas) > 1 and len(self.data1) > len(self.theirs):
            d = self.data1
            self.theirs.append((d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0]))
        key = bucket_key(self.data0.datetime[0], TIMEFRAME_MINUTES[self.p.timeframe])
        completed, self.key = self.key is not None and key != self.key, key
        if completed:
            b = self.bars
            self.ours.append((b.open[0], b.high[0], b.low[0], b.close[0], b.volume[0]))

    def prenext(self):      # before data1's first bar: a bucket of ours may complete
        self.next()


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


DAY1 = float(dt.date(2024, 1, 3).toordinal())    # backtrader date numbers of two sessions
DAY2 = float(dt.date(2024, 1, 4).toordinal())


def renko_steps(k: RenkoKernel, closes: list[float], atr: float = 1.0, day: float = DAY1,
                first_open: float | None = None) -> list[tuple]:
    """One session's closes, a minute apart from 09:30 (the first bar opens at
    ``first_open``, default its close)."""
    start = day + 570 / 1440
    opens = [closes[0] if first_open is None else first_open, *closes[:-1]]
    return [k.step(start + i / 1440, o, c, atr)
            for i, (o, c) in enumerate(zip(opens, closes, strict=True))]


def test_renko_bricks_on_hand_made_closes():
    k = RenkoKernel(mult=1.0)          # brick = atr = 1.0
    steps = renko_steps(k, [100.0, 100.9, 101.0, 103.5, 102.6, 101.9, 101.0, 104.0])
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
    out = renko_steps(k, [100.0, 100.0], atr=math.nan)
    assert [o[0] for o in out] == [0, 0]
    assert math.isnan(out[-1][4])


def test_the_grid_is_anchored_at_the_sessions_open():
    """grid_sessions=0: each session's grid starts at its first bar's open, whatever the
    bricks of the day before; a first close a brick away makes a brick at once."""
    k = RenkoKernel(mult=1.0, grid_sessions=0)
    renko_steps(k, [100.0, 103.0, 106.0])                          # day 1: up 6 bricks
    out = renko_steps(k, [104.6, 104.0], day=DAY2, first_open=103.5)
    assert out[0][:4] == (1.0, 1.0, 104.5, 103.5) and out[0][5] == 1.0
    assert out[1][:3] == (1.0, 1.0, 104.5)


def test_the_grid_is_redrawn_over_the_previous_session_with_todays_size():
    """grid_sessions=1: at a session's first bar the grid is anchored at the previous
    session's open and replayed over its closes with the new brick size."""
    k = RenkoKernel(mult=1.0, grid_sessions=1)
    renko_steps(k, [100.0, 101.0, 102.0, 103.0], first_open=99.5)   # day 1, bricks of 1.0
    assert (k.direction, k.run, k.anchor, k.count) == (1, 3, 102.5, 3)
    # day 2, bricks of 2.0: redrawn from 99.5 over 100..103, one brick (to 101.5); then the
    # day's first close (106) adds two more
    out = renko_steps(k, [106.0], atr=2.0, day=DAY2, first_open=104.0)
    assert out[0] == (1.0, 3.0, 105.5, 99.5, 2.0, 3.0)
    # day 3: only day 2 counts (anchored at its open, 104); day 1 is forgotten
    out = renko_steps(k, [104.5], atr=2.0, day=DAY2 + 1, first_open=105.0)
    assert out[0] == (1.0, 1.0, 106.0, 104.0, 2.0, 1.0)


def test_renko_state_on_a_day_depends_on_the_grid_sessions_only():
    def last_day(days: list[list[float]]) -> list[tuple]:
        k = RenkoKernel(mult=1.0, grid_sessions=2)
        for i, closes in enumerate(days):
            out = renko_steps(k, closes, atr=0.5, day=DAY1 + i)
        return out
    recent = [[101.0, 99.5, 100.2], [100.0, 102.5, 101.1], [101.0, 103.0, 100.0]]
    assert last_day([[90.0, 97.0, 85.0], *recent]) == last_day(recent) \
        == last_day([[120.0, 110.0], [80.0], *recent])


def wave_kernel() -> WaveKernel:
    return WaveKernel(impulse_bricks=3, shallow_max=0.382, healthy_max=0.618,
                      resume_bricks=0.5, entry_zone_bricks=1.5)


def drive_wave(closes: list[float], brick: float = 1.0) -> list[tuple]:
    """``WaveKernel.advance`` on a Renko kernel's bricks, one session."""
    renko, wave = RenkoKernel(mult=1.0), wave_kernel()
    return [wave.advance(c, *bricks) for c, bricks in
            zip(closes, renko_steps(renko, closes, atr=brick), strict=True)]


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


@pytest.mark.parametrize("grid_sessions, signal", [(1, 1.0), (0, 0.0)])
def test_yesterdays_impulse_resumes_this_morning_if_the_grid_reaches_back(grid_sessions,
                                                                          signal):
    """An impulse 100 -> 104 at the end of day 1, a pullback to 102 at day 2's open and the
    resumption to 102.6: a signal when the grid reaches back one session (the waves are
    replayed over it at day 2's first bar), none when it starts at day 2's open."""
    k = WaveKernel(3, 0.382, 0.618, 0.5, 1.5, mult=1.0, grid_sessions=grid_sessions)
    day1 = [k.step(DAY1 + (570 + i) / 1440, c, c, 1.0)
            for i, c in enumerate([100.0, 101.0, 102.0, 103.0, 104.0])]
    opens = [103.5, 103.0, 102.0]
    day2 = [k.step(DAY2 + (570 + i) / 1440, o, c, 1.0)
            for i, (o, c) in enumerate(zip(opens, [103.0, 102.0, 102.6], strict=True))]
    assert [o[0] for o in day1 + day2[:-1]] == [0.0] * 7
    assert day2[-1][0] == signal
    if signal:
        assert day2[-1][1:] == (2.0, 0.5, 102.0)               # healthy, 50%, from 102


def test_atr_and_ema_see_the_window_sessions_only():
    """Daily bars (one minute bar a session), window 3, ATR(2), EMA(2): at session D both
    come from the completed bars of D-3..D-1 (the first of them has no true range), seeded
    there; what came before does not matter."""
    def at_last(closes: list[float]) -> tuple:
        k = SessionBarsKernel(0, atr_period=2, ema_period=2, window=3)
        for i, c in enumerate(closes):
            out = k.step(DAY1 + i + 570 / 1440, c, c + 1.0, c - 1.0, c, 10.0)
        return out
    out = at_last([50.0, 90.0, 100.0, 104.0, 101.0, 0.0])
    # true ranges: 104 after 100: 105 - 100 = 5; 101 after 104: 104 - 100 = 4
    assert out[5] == 4.5                                      # ATR seeded with their mean
    assert out[6] == pytest.approx(102.0 / 3 + 101.0 * 2 / 3)    # EMA: SMA(100, 104), then 101
    assert out[7] == 3.0
    assert at_last([7.0, 100.0, 104.0, 101.0, 0.0]) == out == at_last([100.0, 104.0, 101.0, 0.0])
    assert math.isnan(at_last([104.0, 101.0, 0.0])[5])        # one true range: no ATR(2) yet


def test_every_indicator_on_a_day_is_the_same_wherever_the_data_starts(sample):
    """Every line of every indicator, on the sessions that have WINDOW_SESSIONS (and
    GRID_SESSIONS) sessions of history in each run, is the same bit for bit whether the data
    starts 0, 3 or 9 sessions earlier."""
    assert GRID_SESSIONS <= WINDOW_SESSIONS
    days = sample.index.normalize()
    sessions = days.unique()
    runs = {skip: run_modes(sample[days >= sessions[skip]], MODES[:1])[0] for skip in (0, 3, 9)}
    first = sessions[9 + WINDOW_SESSIONS]           # the latest start's first full session
    tail = int((days >= first).sum())
    assert tail > 5 * 390
    reference = runs.pop(0)
    for skip, values in runs.items():
        for key, expected in reference.items():
            np.testing.assert_array_equal(values[key][-tail:], expected[-tail:],
                                          err_msg=f"{key}, data from session {skip}")
    assert np.any(reference["wave.signal"][-tail:] != 0)


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
