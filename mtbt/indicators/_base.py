"""Glue between a pure kernel (``_kernels``) and backtrader's two execution modes."""
from __future__ import annotations

import backtrader as bt


class KernelIndicator(bt.Indicator):
    """An indicator whose values come from ``self._kernel.step(*inputs)``.

    Subclasses set ``self._kernel`` and ``self._inputs`` (the input lines, in ``step``'s
    argument order) in ``__init__``. ``next`` and ``once`` feed the same kernel, one bar at a
    time, so event mode (live) and vectorised mode (backtests) give identical values.
    """

    _kernel = None
    _inputs: tuple = ()

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
