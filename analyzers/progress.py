"""Reports how many bars a run has processed, every ``every`` bars."""
from __future__ import annotations

import backtrader as bt


class Progress(bt.Analyzer):
    """Calls ``callback(bars_done)`` every ``every`` bars (the runner draws the bar).

    Params:
      - ``callback``: a function of the number of bars processed so far
      - ``every``: how often to call it (2,000 bars)
    """

    params = (("callback", None), ("every", 2_000))

    def create_analysis(self) -> None:
        self.rets = {}
        self._n = 0

    def next(self) -> None:
        self._n += 1
        if self._n % self.p.every == 0 and self.p.callback is not None:
            self.p.callback(self._n)
