"""Session-aligned higher-timeframe bars built from the 1-minute feed."""
from __future__ import annotations

from mtbt.indicators._base import KernelIndicator
from mtbt.indicators._kernels import TIMEFRAME_MINUTES, WINDOW_SESSIONS, SessionBarsKernel


class SessionBars(KernelIndicator):
    """The last *completed* higher-timeframe bar, aggregated from minute bars.

    ``cerebro.resampledata`` switches off preloading and runonce for the whole run (about 7x
    slower); this indicator keeps both. Intraday buckets are aligned to the 09:30 open ("4h"
    gives 09:30-13:30 and 13:30-16:00), "1d" is the session. A bucket is visible from the
    first bar of the next bucket on, so a strategy never reads an unfinished bar: the daily
    bar of a session appears at the next session's open.

    Lines: open, high, low, close, volume of that bar; ``atr`` (Wilder, ``atr_period``) and
    ``ema`` (of closes, ``ema_period``) over the completed bars of the last ``window``
    sessions; ``count``: how many completed bars that window holds.

    Bounded memory: at a bar of session D, ``atr`` and ``ema`` are seeded at the first
    completed bar of session D - ``window`` and depend on nothing earlier, so they are the same
    in every run with ``window`` sessions of history before D (``SessionBarsKernel``). The
    default, 20, is ``[data] warmup_sessions``' default: a daily ATR(14) then has 19 true
    ranges, a daily EMA(10) 20 closes.

    See also: ``tests/test_indicators.py`` compares the bars with backtrader's resampled ones.
    """

    lines = ("open", "high", "low", "close", "volume", "atr", "ema", "count")
    params = (("timeframe", "1d"), ("atr_period", 14), ("ema_period", 10),
              ("window", WINDOW_SESSIONS))
    plotinfo = dict(plot=False)

    def __init__(self):
        if self.p.timeframe not in TIMEFRAME_MINUTES:
            raise ValueError(f"SessionBars timeframe {self.p.timeframe!r}: expected one of "
                             f"{', '.join(TIMEFRAME_MINUTES)}")
        d = self.data
        self._kernel = SessionBarsKernel(TIMEFRAME_MINUTES[self.p.timeframe],
                                         self.p.atr_period, self.p.ema_period, self.p.window)
        self._inputs = (d.datetime, d.open, d.high, d.low, d.close, d.volume)


def trend_bars(data, ema_1d: int, ema_4h: int) -> tuple[SessionBars, SessionBars]:
    """The daily (ATR(14), EMA ``ema_1d``) and 4-hour (EMA ``ema_4h``) session bars the
    strategies' confluence and regime read (built inside an ``Inputs``' ``build``)."""
    return (SessionBars(data, timeframe="1d", atr_period=14, ema_period=ema_1d),
            SessionBars(data, timeframe="4h", ema_period=ema_4h))
