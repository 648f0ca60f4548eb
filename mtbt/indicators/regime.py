"""The volatility regime: trade only in normal volatility (VIX 13-30, daily ATR >= 0.5%)."""
from __future__ import annotations

import math
from enum import IntEnum

from mtbt.indicators._base import KernelIndicator
from mtbt.indicators.sessionbars import SessionBars


class RegimeState(IntEnum):
    """Regime codes as carried on the indicator's ``regime`` line."""

    WARMUP = 0               # VIX or daily ATR not known yet
    TRADE_NORMAL = 1
    PAUSE_ULTRA_LOW_VOL = 2
    PAUSE_HIGH_VOL = 3


def get_regime(vix: float, atr_pct: float, vix_min: float = 13.0, vix_max: float = 30.0,
               atr_min_pct: float = 0.5) -> RegimeState:
    """The readiness report's rules, in order.

    ``vix < vix_min`` or ``atr_pct < atr_min_pct`` is ultra-low volatility; ``vix > vix_max`` is
    high volatility; anything else trades (the bounds 13 and 30 trade). ``atr_pct`` is in
    percent (0.5 means 0.5%). A NaN input means the value is not known yet: ``WARMUP``.
    """
    if math.isnan(vix) or math.isnan(atr_pct):
        return RegimeState.WARMUP
    if vix < vix_min or atr_pct < atr_min_pct:
        return RegimeState.PAUSE_ULTRA_LOW_VOL
    if vix > vix_max:
        return RegimeState.PAUSE_HIGH_VOL
    return RegimeState.TRADE_NORMAL


class _RegimeKernel:
    __slots__ = ("bounds",)

    def __init__(self, vix_min: float, vix_max: float, atr_min_pct: float):
        self.bounds = (vix_min, vix_max, atr_min_pct)

    def step(self, vix: float, atr: float, prior_close: float) -> tuple:
        atr_pct = 100.0 * atr / prior_close
        return float(get_regime(vix, atr_pct, *self.bounds)), vix, atr_pct


class Regime(KernelIndicator):
    """``get_regime`` on every bar, from information known at that bar.

    - VIX: the feed's ``vix`` line, the close of the previous session or earlier (a day's
      VIX close is only known after that day's close).
    - ATR%: the daily ATR(14) of completed sessions as a percent of the prior session's close,
      both known at the open; aggregated from the minute feed.

    Datas: the minute feed, and optionally its daily ``SessionBars`` (ATR period 14).

    Lines: ``regime`` (a ``RegimeState`` code), ``vix``, ``atr_pct``.
    """

    lines = ("regime", "vix", "atr_pct")
    params = (("vix_min", 13.0), ("vix_max", 30.0), ("atr_min_pct", 0.5), ("atr_period", 14))
    plotinfo = dict(subplot=True)

    def __init__(self):
        daily = self.data1 if len(self.datas) > 1 else SessionBars(
            self.data, timeframe="1d", atr_period=self.p.atr_period)
        self._kernel = _RegimeKernel(self.p.vix_min, self.p.vix_max, self.p.atr_min_pct)
        self._inputs = (self.data.vix, daily.atr, daily.close)
