"""Glue between a pure kernel (``_kernels``) and backtrader's two execution modes."""
from __future__ import annotations

import backtrader as bt


def _advance(self, size: int = 1) -> None:
    """Move the lines on by ``size`` bars. backtrader's ``Indicator.advance`` first compares
    the indicator's length with its clock's again, which its caller (a strategy's bar in a
    backtest) has just done: four ``len`` of nested line objects per indicator per bar."""
    self.lines.advance(size)


class KernelIndicator(bt.Indicator):
    """An indicator whose values come from ``self._kernel.step(*inputs)``.

    Subclasses set ``self._kernel`` and ``self._inputs`` (the input lines, in ``step``'s
    argument order) in ``__init__``. ``next`` and ``once`` feed the same kernel, one bar at a
    time, so event mode (live) and vectorised mode (backtests) give identical values.
    """

    _kernel = None
    _inputs: tuple = ()
    advance = _advance

    def next(self) -> None:
        out = self._kernel.step(*(line[0] for line in self._inputs))
        for line, value in zip(self.lines, out, strict=True):
            line[0] = value

    def once(self, start: int, end: int) -> None:
        step = self._kernel.step
        dsts = [line.array for line in self.lines]
        i = start
        for args in zip(*[line.array[start:end] for line in self._inputs], strict=True):
            for dst, value in zip(dsts, step(*args), strict=True):
                dst[i] = value
            i += 1


class Inputs(bt.Indicator):
    """Owns the indicators others are computed from and nothing reads bar by bar: built by
    ``build(data)`` in its ``__init__`` (returned in ``.built``), they are its children.

    backtrader computes an indicator's children in both modes, but in a backtest it moves
    forward, on every bar, the lines of the strategy's own indicators only: the session bars
    and bricks (22 lines) kept here cost nothing per bar. Read their arrays, not ``[0]``."""

    lines = ("unused",)
    params = (("build", None),)
    plotinfo = dict(plot=False)
    advance = _advance

    def __init__(self):
        self.built = self.p.build(self.data)
