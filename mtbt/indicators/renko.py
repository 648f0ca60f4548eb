"""ATR-sized Renko bricks on 1-minute closes."""
from __future__ import annotations

from mtbt.indicators._base import KernelIndicator
from mtbt.indicators._kernels import GRID_SESSIONS, RenkoKernel
from mtbt.indicators.sessionbars import SessionBars


class Renko(KernelIndicator):
    """Renko bricks whose size is ``mult`` times an ATR on a chosen timeframe.

    Default: 0.1 x the daily ATR(14) of completed sessions, so the size is fixed for a whole
    session and known at its open (about $0.50 for SPY at a 1% daily range). A brick forms when
    the close moves a brick beyond the last brick; a reversal needs two bricks.

    The grid is redrawn at each session's first bar, with that session's brick size: anchored
    at the open of the session ``grid_sessions`` (1) back and replayed over its closes, so
    yesterday's trend and today's opening gap still make bricks, but nothing older counts
    (``RenkoKernel``). The bricks on a day are therefore the same whichever earlier day the
    data starts on, given ``grid_sessions`` sessions and the ATR's window before it.

    Datas: the minute feed, and optionally a ``SessionBars`` whose ``atr`` sizes the bricks
    (pass the strategy's own to share it); otherwise one is built from the params.

    Lines:
      - ``direction``: +1 up, -1 down, 0 before the first brick
      - ``run``: bricks in the current run
      - ``brick``: close of the last brick
      - ``origin``: open of the current run's first brick
      - ``size``: brick size in price
      - ``count``: bricks since the grid's anchor
    """

    alias = ("RenkoBricks",)
    lines = ("direction", "run", "brick", "origin", "size", "count")
    params = (("timeframe", "1d"), ("atr_period", 14), ("mult", 0.1),
              ("grid_sessions", GRID_SESSIONS))
    plotinfo = dict(subplot=False)
    plotlines = dict(direction=dict(_plotskip=True), run=dict(_plotskip=True),
                     origin=dict(_plotskip=True), size=dict(_plotskip=True),
                     count=dict(_plotskip=True))

    def __init__(self):
        if len(self.datas) > 1:
            bars = self.data1
        else:
            bars = SessionBars(self.data, timeframe=self.p.timeframe,
                               atr_period=self.p.atr_period)
        self.atr_source = bars.atr          # what sizes the bricks (a Wave draws its own)
        self._kernel = RenkoKernel(self.p.mult, self.p.grid_sessions)
        d = self.data
        self._inputs = (d.datetime, d.open, d.close, bars.atr)
