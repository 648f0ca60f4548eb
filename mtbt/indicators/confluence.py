"""Multi-timeframe confluence: do the 4-hour and daily trends agree?"""
from __future__ import annotations

import backtrader as bt

from mtbt.indicators.sessionbars import SessionBars


def _trend(bars: SessionBars):
    return bt.If(bars.close > bars.ema, 1.0, bt.If(bars.close < bars.ema, -1.0, 0.0))


class Confluence(bt.Indicator):
    """Trend of the last completed 4-hour and daily bars, and their sum as a score.

    A timeframe's trend is +1 when its last completed close is above the EMA of its closes,
    -1 below, 0 equal or not known yet. ``score`` = trend4h + trend1d, from -2 to 2; a long
    signal has ``score`` confluences agreeing, a short one ``-score``. Only completed
    higher-timeframe bars are read (see ``SessionBars``).

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
        self.l.trend4h = _trend(h4)
        self.l.trend1d = _trend(d1)
        self.l.score = self.l.trend4h + self.l.trend1d
