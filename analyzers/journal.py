"""The trade journal: one row per exit fill (trades.csv, see DESIGN.md)."""
from __future__ import annotations

import backtrader as bt
import pandas as pd

from mtbt.sessions import NY

TRADE_COLUMNS = ("trade_id", "symbol", "instrument", "side", "entry_time", "entry_price",
                 "exit_time", "exit_price", "qty", "pnl", "exit_reason", "regime")


def iso_ny(when) -> str:
    """A naive New York datetime as ISO 8601 with its offset."""
    return pd.Timestamp(when).tz_localize(NY).isoformat()


class Journal(bt.Analyzer):
    """Collects every completed exit order that a ``ManagedStrategy`` tagged with its lot.

    The strategy puts ``lot``, ``role`` (the exit reason) and the fill's net ``pnl`` into
    ``order.info``; this analyzer only writes them down.
    """

    def create_analysis(self) -> None:
        self.rets = []

    def notify_order(self, order: bt.Order) -> None:
        if order.status != order.Completed:
            return
        lot, role = order.info.get("lot"), order.info.get("role")
        if lot is None or role in (None, "entry"):
            return
        self.rets.append({
            "trade_id": lot.trade_id,
            "symbol": order.data._name or "",
            "instrument": "equity",
            "side": "long" if lot.side > 0 else "short",
            "entry_time": iso_ny(lot.entry_time),
            "entry_price": round(lot.entry_price, 4),
            "exit_time": iso_ny(bt.num2date(order.executed.dt)),
            "exit_price": round(order.executed.price, 4),
            "qty": int(abs(order.executed.size)),
            "pnl": round(order.info.get("pnl"), 2),
            "exit_reason": role,
            "regime": lot.regime,
            "risk": lot.risk,
        })

    def get_frame(self) -> pd.DataFrame:
        """The trades.csv columns, plus ``risk`` (the trade's position cost, for avg R)."""
        return pd.DataFrame(self.rets, columns=[*TRADE_COLUMNS, "risk"])
