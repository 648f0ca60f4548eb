"""Wave detection on Renko bricks: impulse, graded pullback, resumption."""
from __future__ import annotations

from mtbt.indicators._base import KernelIndicator
from mtbt.indicators._kernels import WaveKernel
from mtbt.indicators.renko import Renko


class Wave(KernelIndicator):
    """Entry signals when a Renko impulse resumes after a pullback.

    - Impulse: a run of ``impulse_bricks`` (3) or more bricks one way. It starts at the open
      of the run's first brick and extends with every new extreme close.
    - Pullback: the close moves at least one brick back from the impulse's extreme. Its depth
      is the retracement of the impulse, (extreme - pullback extreme) / impulse height, graded
      **shallow** below ``shallow_max`` (38.2%), **healthy** up to ``healthy_max`` (61.8%),
      **deep** above. A retracement of 100% ends the wave.
    - Resumption: the close moves ``resume_bricks`` back in the impulse's direction from the
      pullback's extreme. The signal fires on that bar only if the close is still within
      ``entry_zone_bricks`` (1.5) of the extreme; a faster move is not chased. After a signal
      the wave re-arms when the impulse makes a new extreme.

    State is bounded like the bricks': at each session's first bar the waves are rebuilt over
    the redrawn grid's earlier sessions (``WaveKernel``), so an impulse of yesterday
    afternoon can still pull back and resume this morning, one of last week cannot.

    Datas: the minute feed, and optionally a ``Renko`` on it (else one is built with
    defaults): the Wave draws the same bricks itself (its ATR source, ``mult`` and
    ``grid_sessions``), as it must redraw them at each session's first bar.

    Lines: ``signal`` (+1 long, -1 short, 0), ``grade`` (1 shallow, 2 healthy, 3 deep, on the
    signal bar), ``retrace`` (current retracement, NaN outside pullbacks), ``extreme``
    (pullback extreme).
    """

    lines = ("signal", "grade", "retrace", "extreme")
    params = (("impulse_bricks", 3), ("shallow_max", 0.382), ("healthy_max", 0.618),
              ("resume_bricks", 0.5), ("entry_zone_bricks", 1.5))
    plotinfo = dict(subplot=True)

    def __init__(self):
        renko = self.data1 if len(self.datas) > 1 else Renko(self.data)
        p = self.p
        self._kernel = WaveKernel(p.impulse_bricks, p.shallow_max, p.healthy_max,
                                  p.resume_bricks, p.entry_zone_bricks, renko.p.mult,
                                  renko.p.grid_sessions)
        d = self.data
        self._inputs = (d.datetime, d.open, d.close, renko.atr_source)
