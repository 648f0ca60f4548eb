"""Account value and cash at every bar's close."""
from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd

from mtbt.datenums import num2date_array
from mtbt.sessions import NY


class EquityCurve(bt.Analyzer):
    """Records the broker's cash and value each bar (from ``notify_fund``: no extra work), and
    whether the drawdown breaker is tripped (1) at that bar."""

    def create_analysis(self) -> None:
        self._dt: list[float] = []
        self._cash: list[float] = []
        self._value: list[float] = []
        self._breaker: list[int] = []
        self.rets = {}

    def notify_fund(self, cash: float, value: float, fundvalue: float, shares: float) -> None:
        self._dt.append(self.data.datetime[0])
        self._cash.append(cash)
        self._value.append(value)
        risk = getattr(self.strategy, "risk", None)
        self._breaker.append(int(bool(getattr(risk, "tripped", False))))

    def get_frame(self) -> pd.DataFrame:
        """``timestamp`` (New York, tz-aware) -> cash, equity, breaker."""
        index = num2date_array(self._dt).rename("timestamp")
        return pd.DataFrame({"cash": np.round(self._cash, 2), "equity": np.round(self._value, 2),
                             "breaker": np.asarray(self._breaker, dtype=int)},
                            index=index.tz_localize(NY))
