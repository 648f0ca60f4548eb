"""Session-aligned higher-timeframe bars built from the 1-minute feed."""
from __future__ import annotations

from mtbt.indicators._base import KernelIndicator
from mtbt.indicators._kernels import TIMEFRAME_MINUTES, SessionBarsKernel


class SessionBars(KernelIndicator):
    """The last *completed* higher-timeframe bar, aggregated from minute bars.

    ``cerebro.resampledata`` switches off preloading and runonce for the whole run (about 7x
    slower); this indicator keeps both. Intraday buckets are aligned to the 09:30 open ("4h"
    gives 09:30-13:30 and 13:30-16:00), "1d" is the session. A bucket is visible from the
    first bar of the next bucket on, so a strategy never reads an unfinished bar: the daily
    bar of a session appears at the next session's open.

    Lines: open, high, low, close, volume of that bar; ``atr`` (Wilder, ``atr_period``) and
    ``ema`` (of closes, ``ema_period``) over completed bars; ``count`` of completed bars.

    See also: ``tests/test_indicators.py`` compares the bars with backtrader's resampled ones.
    """

    lines = ("open", "high", "low", "close", "volume", "atr", "ema", "count")
    params = (("timeframe", "1d"), ("atr_period", 14), ("ema_period", 10))
    plotinfo = dict(plot=False)

    def __init__(self):
        if self.p.timeframe not in TIMEFRAME_MINUTES:
            raise ValueError(f"SessionBars timeframe {self.p.timeframe!r}: expected one of "
                             f"{', '.join(TIMEFRAME_MINUTES)}")
        d = self.data
        self._kernel = SessionBarsKernel(TIMEFRAME_MINUTES[self.p.timeframe],
                                         self.p.atr_period, self.p.ema_period)
        self._inputs = (d.datetime, d.open, d.high, d.low, d.close, d.volume)
