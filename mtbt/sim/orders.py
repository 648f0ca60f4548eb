"""The simulator's order record (:class:`SimOrder`) and which statuses are still working."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["OPEN_STATUSES", "SimOrder"]

OPEN_STATUSES = frozenset({"new", "partially_filled", "accepted", "pending_new", "held"})


@dataclass(eq=False)
class SimOrder:
    """An accepted order (or a leg of one). ``session`` is the XNYS session it was accepted
    for (a ``day`` order expires at its close)."""

    id: str
    client_order_id: str
    symbol: str
    asset_class: str
    side: str
    type: str
    time_in_force: str
    qty: float
    created_at: pd.Timestamp
    session: dt.date
    order_class: str = "simple"
    limit_price: float | None = None
    stop_price: float | None = None
    position_intent: str | None = None
    ratio_qty: float | None = None
    status: str = "new"
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    updated_at: pd.Timestamp | None = None
    filled_at: pd.Timestamp | None = None
    canceled_at: pd.Timestamp | None = None
    expired_at: pd.Timestamp | None = None
    failed_at: pd.Timestamp | None = None
    replaced_at: pd.Timestamp | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    legs: list[SimOrder] = field(default_factory=list)
    parent: SimOrder | None = field(default=None, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> float:
        return self.qty - self.filled_qty

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1

    @property
    def top(self) -> SimOrder:
        """The order a leg belongs to (itself when it is not a leg)."""
        return self.parent or self
