"""The trade journal: one row per exit fill (trades.csv, see DESIGN.md)."""
from __future__ import annotations

import backtrader as bt
import pandas as pd

from mtbt.sessions import NY

TRADE_COLUMNS = ("trade_id", "symbol", "instrument", "side", "entry_time", "entry_price",
                 "exit_time", "exit_price", "qty", "pnl", "exit_reason", "regime")
LEG_COLUMNS = ("trade_id", "time", "action", "structure", "right", "strike", "expiry", "qty",
               "fill")


def iso_ny(when) -> str:
    """A naive New York datetime as ISO 8601 with its offset."""
    return pd.Timestamp(when).tz_localize(NY).isoformat()


class Journal(bt.Analyzer):
    """Collects every completed exit order that a ``ManagedStrategy`` tagged with its lot.

    The strategy puts ``lot``, ``role`` (the exit reason) and the fill's net ``pnl`` into
    ``order.info``; this analyzer only writes them down. For option structures a row's prices
    are the structure's premiums per share (a credit is negative) and ``qty`` is contracts;
    every leg of every structure fill also goes to ``legs`` (legs.csv), and the first
    structure of each kind to ``structures`` (for its payoff chart), also given, as it comes,
    to ``first_structure(name, fields)``.
    """

    params = (("first_structure", None),)

    def create_analysis(self) -> None:
        self.rets = []
        self.legs: list[dict] = []
        self.structures: dict[str, dict] = {}

    def notify_order(self, order: bt.Order) -> None:
        if order.status != order.Completed:
            return
        lot, role = order.info.get("lot"), order.info.get("role")
        if lot is None or role is None:
            return
        structure = getattr(order, "structure", None)
        if structure is not None:
            self._record_legs(order, lot)
        if role == "entry":
            return
        if structure is None:
            if order.info.get("pnl") is None:
                return    # booked to no trade (a late fill of a closed one: logged as such)
            when, price = bt.num2date(order.executed.dt), order.executed.price
            qty, instrument, entry = abs(order.executed.size), "equity", lot.entry_price
        else:
            when, price, qty = order.dt, order.premium, order.contracts
            instrument, entry = structure.name, lot.premium
        self.rets.append({
            "trade_id": lot.trade_id, "symbol": order.data._name or "",
            "instrument": instrument, "side": "long" if lot.side > 0 else "short",
            "entry_time": iso_ny(lot.entry_time), "entry_price": round(entry, 4),
            "exit_time": iso_ny(when), "exit_price": round(price, 4), "qty": int(qty),
            "pnl": round(order.info.get("pnl"), 2), "exit_reason": role,
            "regime": lot.regime, "risk": lot.risk,
        })

    def _record_legs(self, order, lot) -> None:
        for leg in order.legs:
            self.legs.append({
                "trade_id": lot.trade_id, "time": iso_ny(order.dt), "action": order.kind,
                "structure": order.structure.name, "right": leg.right, "strike": leg.strike,
                "expiry": leg.expiry.isoformat(), "qty": leg.contracts,
                "fill": round(leg.price, 4)})
        if order.kind == "open" and order.structure.name not in self.structures:
            first = self.structures[order.structure.name] = dict(
                structure=order.structure, premium=order.premium, vix=order.data.vix[0],
                now=order.dt, expiry_close=order.position.expiry_close,
                spot=order.data.open[0])
            if self.p.first_structure is not None:
                self.p.first_structure(order.structure.name, first)

    def get_legs(self) -> pd.DataFrame:
        """legs.csv: every leg of every structure fill (``qty`` in signed contracts)."""
        return pd.DataFrame(self.legs, columns=list(LEG_COLUMNS))

    def get_frame(self) -> pd.DataFrame:
        """The trades.csv columns, plus ``risk`` (the trade's position cost, for avg R)."""
        return pd.DataFrame(self.rets, columns=[*TRADE_COLUMNS, "risk"])
