"""Multi-timeframe confluence: do the 4-hour and daily trends agree?"""
from __future__ import annotations

import math

from mtbt.indicators._base import KernelIndicator
from mtbt.indicators.sessionbars import SessionBars


def trend(close: float, ema: float) -> float:
    """+1 above the EMA, -1 below, 0 equal or not known yet (NaN)."""
    if math.isnan(close) or math.isnan(ema) or close == ema:
        return 0.0
    return 1.0 if close > ema else -1.0


class _ConfluenceKernel:
    @staticmethod
    def step(close4h: float, ema4h: float, close1d: float, ema1d: float) -> tuple:
        t4, t1 = trend(close4h, ema4h), trend(close1d, ema1d)
        return t4, t1, t4 + t1


class Confluence(KernelIndicator):
    """Trend of the last completed 4-hour and daily bars, and their sum as a score.

    A timeframe's trend is +1 when its last completed close is above the EMA of its closes,
    -1 below, 0 equal or not known yet. ``score`` = trend4h + trend1d, from -2 to 2. Only
    completed higher-timeframe bars are read (see ``SessionBars``); a strategy counts how many
    of the two trends agree with its signal.

    Formula:
      - trend = sign(close_tf - EMA(close_tf, period_tf))
      - score = trend4h + trend1d

    Datas: the minute feed; optionally its 4-hour and daily ``SessionBars`` (else built here
    with ``ema_4h`` and ``ema_1d``).
    """

    lines = ("trend4h", "trend1d", "score")
    params = (("ema_4h", 6), ("ema_1d", 10))
    plotinfo = dict(subplot=True)

    def __init__(self):
        if len(self.datas) > 2:
            h4, d1 = self.data1, self.data2
        else:
            h4 = SessionBars(self.data, timeframe="4h", ema_period=self.p.ema_4h)
            d1 = SessionBars(self.data, timeframe="1d", ema_period=self.p.ema_1d)
        self._kernel = _ConfluenceKernel()
        self._inputs = (h4.close, h4.ema, d1.close, d1.ema)
