"""WaveRenko: trade Renko wave resumptions in normal volatility with 4H/daily confluence."""
from __future__ import annotations

from mtbt.indicators import (
    Confluence,
    Inputs,
    Regime,
    RegimeState,
    Renko,
    SessionBars,
    Wave,
    trend_bars,
)
from mtbt.indicators._kernels import GRADE_NAMES
from mtbt.strategies.base import ManagedStrategy, Signal

_SIDES = {"long": (1,), "short": (-1,), "both": (1, -1)}


class WaveRenko(ManagedStrategy):
    """Enter when a Renko wave resumes after a pullback, if everything agrees.

    An entry needs, on the signal bar: a ``Wave`` signal whose pullback grade is in
    ``grades``; the regime ``TRADE_NORMAL``; at least ``min_confluence`` of the 4H and daily
    trends in the signal's direction; the entry window; and the RiskManager's approval
    (checked in ``ManagedStrategy``). Exits are the scaling exits of the base class.

    Params (beyond ``ManagedStrategy``'s): the ``[strategy]`` keys of the run file, and the
    ``[volatility_filters]`` bounds ``vix_min``, ``vix_max``, ``atr_min_pct``.
    """

    params = (
        ("direction", "both"),
        ("brick_timeframe", "1d"), ("brick_atr_period", 14), ("brick_atr_mult", 0.1),
        ("impulse_bricks", 3), ("shallow_max", 0.382), ("healthy_max", 0.618),
        ("resume_bricks", 0.5), ("entry_zone_bricks", 1.5),
        ("grades", ("shallow", "healthy")), ("min_confluence", 2),
        ("trend_ema_4h", 6), ("trend_ema_1d", 10),
        ("vix_min", 13.0), ("vix_max", 30.0), ("atr_min_pct", 0.5),
    )

    def __init__(self):
        super().__init__()
        p = self.p
        daily, h4, renko = Inputs(self.data, build=lambda data: _inputs(data, p)).built
        self.wave = Wave(self.data, renko, impulse_bricks=p.impulse_bricks,
                         shallow_max=p.shallow_max, healthy_max=p.healthy_max,
                         resume_bricks=p.resume_bricks, entry_zone_bricks=p.entry_zone_bricks)
        self.confluence = Confluence(self.data, h4, daily)
        self.regime = Regime(self.data, daily, vix_min=p.vix_min, vix_max=p.vix_max,
                             atr_min_pct=p.atr_min_pct)
        self._sides = _SIDES[p.direction]

    def regime_name(self) -> str:
        return RegimeState(int(self.regime.regime[0])).name

    def entry_signal(self) -> Signal | None:
        side = int(self.wave.signal[0])
        if side == 0:
            return None
        grade = GRADE_NAMES[int(self.wave.grade[0])]
        note = (f"{'long' if side > 0 else 'short'} {grade} pullback "
                f"(retrace {self.wave.retrace[0]:.0%})")
        regime = self.regime_name()
        conf = self.confluence
        agree = (conf.trend4h[0] == side) + (conf.trend1d[0] == side)
        if side not in self._sides:
            reason = f"direction {self.p.direction} only"
        elif grade not in self.p.grades:
            reason = f"grade {grade} not traded"
        elif regime != "TRADE_NORMAL":
            reason = (f"regime {regime} (VIX {self.regime.vix[0]:.2f}, "
                      f"ATR {self.regime.atr_pct[0]:.2f}%)")
        elif agree < self.p.min_confluence:
            reason = f"confluence: {agree} of 2 trends agree, {self.p.min_confluence} needed"
        else:
            return Signal(side, note, regime)
        self.note(f"SKIP {note}: {reason}")
        return None


def _inputs(data, p) -> tuple:
    """The daily and 4-hour session bars and the bricks of ``WaveRenko`` (children of its
    ``Inputs``: built where no strategy is ``self``, as backtrader gives an indicator the
    nearest ``self`` up the stack as its owner)."""
    daily, h4 = trend_bars(data, p.trend_ema_1d, p.trend_ema_4h)
    shared = p.brick_timeframe == "1d" and p.brick_atr_period == 14
    bricks_from = daily if shared else SessionBars(
        data, timeframe=p.brick_timeframe, atr_period=p.brick_atr_period)
    return daily, h4, Renko(data, bricks_from, mult=p.brick_atr_mult)
