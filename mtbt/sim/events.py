"""trade_updates events: the ``data`` of Alpaca's stream messages, as the simulator sends them.

Every state change of the venue returns the events it causes, for the caller to deliver."""
from __future__ import annotations

from typing import Any

import pandas as pd

from mtbt.sim.orders import SimOrder
from mtbt.sim.wire import iso, order_json

__all__ = ["trade_update"]


def trade_update(event: str, order: SimOrder, at: pd.Timestamp, **extra: Any) -> dict[str, Any]:
    """``{"event", "timestamp", "order", ...}`` for ``order`` (legs nested) at ``at``; the
    ``extra`` keys (execution_id, price, qty, position_qty) that are not None are added."""
    data: dict[str, Any] = {"event": event, "timestamp": iso(at), "order": order_json(order)}
    data.update({k: v for k, v in extra.items() if v is not None})
    return data
