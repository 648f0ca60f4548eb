"""The regime log: every change of the volatility regime (regime.csv)."""
from __future__ import annotations

import backtrader as bt
import pandas as pd

from analyzers.journal import iso_ny
from mtbt.indicators import RegimeState


class RegimeLog(bt.Analyzer):
    """Each bar where the strategy's ``regime`` indicator changes state.

    Works with any strategy that has a ``Regime`` indicator as ``self.regime``.
    """

    def create_analysis(self) -> None:
        self.rets = []
        self._last = None
        self._regime = getattr(self.strategy, "regime", None)

    def next(self) -> None:
        if self._regime is None:
            return
        code = self._regime.regime[0]
        if code != self._last:
            self._last = code
            self.rets.append({
                "time": iso_ny(self.data.datetime.datetime(0)),
                "regime": RegimeState(int(code)).name,
                "vix": round(self._regime.vix[0], 2),
                "atr_pct": round(self._regime.atr_pct[0], 4),
            })

    def get_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rets, columns=["time", "regime", "vix", "atr_pct"])
