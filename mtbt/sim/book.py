"""The order book: every accepted order and leg, found by id or client order id, the orders
still working (and the position qty they hold), and the status changes that close orders
(cancel, expire, reject, replace) with their trade_updates events."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pandas as pd

from mtbt.sim.errors import forbidden, not_found, unprocessable
from mtbt.sim.events import trade_update
from mtbt.sim.orders import OPEN_STATUSES, SimOrder
from mtbt.sim.wire import num

__all__ = ["OrderBook"]


class OrderBook:
    """Accepted orders: ``orders`` is the top level in order of acceptance (legs in ``.legs``)."""

    def __init__(self) -> None:
        self.orders: list[SimOrder] = []
        self._by_id: dict[str, SimOrder] = {}          # legs included, in order of acceptance
        self._by_client: dict[str, SimOrder] = {}

    # -- accepting ---------------------------------------------------------------------------
    def check_client_id(self, cid: str) -> None:
        """422 unless ``cid`` is new."""
        if cid in self._by_client:
            raise unprocessable("client_order_id must be unique")

    def add(self, order: SimOrder) -> None:
        """Accept a top-level order (and its legs)."""
        self.orders.append(order)
        self._index(order)
        for leg in order.legs:
            self._by_id[leg.id] = leg

    def _index(self, order: SimOrder) -> None:
        self._by_client[order.client_order_id] = order
        self._by_id[order.id] = order

    # -- finding -----------------------------------------------------------------------------
    def find(self, order_id: str) -> SimOrder:
        """The order or leg ``order_id`` (404 if there is none)."""
        order = self._by_id.get(order_id)
        if order is None:
            raise not_found(f"order not found for {order_id}")
        return order

    def find_client(self, cid: str) -> SimOrder:
        """The order with client order id ``cid`` (404 if there is none)."""
        order = self._by_client.get(cid)
        if order is None:
            raise not_found(f"order not found for client_order_id {cid}")
        return order

    def every(self) -> Iterator[SimOrder]:
        """Every order and leg, in order of acceptance (a leg right after its parent)."""
        return iter(list(self._by_id.values()))

    def select(self, status: str = "open", after: pd.Timestamp | None = None,
               until: pd.Timestamp | None = None, nested: bool = False,
               symbols: frozenset[str] | set[str] = frozenset(), side: str | None = None,
               ) -> list[SimOrder]:
        """``GET /v2/orders``'s filter, oldest first: ``status`` open, closed or all; created in
        (after, until]; touching one of ``symbols``; on ``side``. ``nested`` lists top-level
        orders only (legs inside them), else every order and leg."""
        found = []
        for part in (self.orders if nested else self.every()):
            if status == "open" and part.status not in OPEN_STATUSES:
                continue
            if status == "closed" and part.status in OPEN_STATUSES:
                continue
            if after is not None and not part.created_at > after:
                continue
            if until is not None and not part.created_at <= until:
                continue
            names = {part.symbol, *(leg.symbol for leg in part.legs)}
            if symbols and not symbols & names:
                continue
            if side and part.side != side:
                continue
            found.append(part)
        return found

    # -- what is working ---------------------------------------------------------------------
    def working(self, ignoring: SimOrder | None = None) -> list[SimOrder]:
        """Open orders that hold position qty: simple ones, oco parents, mleg legs (not
        ``ignoring``'s)."""
        out = []
        for order in self.orders:
            if not order.is_open or order is ignoring:
                continue
            out.extend(order.legs if order.order_class == "mleg" else [order])
        return out

    def reserved(self, symbol: str, sign: int, ignoring: SimOrder | None = None) -> float:
        """Qty of ``symbol`` that working orders on ``sign``'s side still have to trade."""
        return sum(o.remaining for o in self.working(ignoring)
                   if o.symbol == symbol and o.sign == sign)

    def check_available(self, order: SimOrder, held: dict[str, float],
                        ignoring: SimOrder | None = None) -> None:
        """Alpaca's qty_available rule for orders that reduce a position (403): ``held`` maps
        symbols to signed positions; ``ignoring`` is an order about to be replaced."""
        for part in (order.legs if order.order_class == "mleg" else [order]):
            held_now = held.get(part.symbol, 0.0)
            if held_now == 0 or (held_now > 0) == (part.sign > 0):
                continue
            available = max(abs(held_now) - self.reserved(part.symbol, part.sign, ignoring),
                            0.0)
            if part.qty > available:
                raise forbidden("insufficient qty available for order "
                                f"(requested: {num(part.qty)}, available: {num(available)})")

    # -- closing -----------------------------------------------------------------------------
    def close(self, top: SimOrder, status: str, now: pd.Timestamp) -> list[dict[str, Any]]:
        """Close ``top`` and its open legs as ``canceled`` or ``expired``; the events (the
        top's, and each oco leg's)."""
        events = []
        for part in [*top.legs, top]:
            if part.is_open:
                part.status = status
                part.updated_at = now
                if status == "canceled":
                    part.canceled_at = now
                else:
                    part.expired_at = now
                if part is top or top.order_class == "oco":
                    events.append(trade_update(status, part, now))
        return events

    def cancel(self, order_id: str, now: pd.Timestamp) -> list[dict[str, Any]]:
        """Cancel an open order (the whole oco pair or mleg); 422 if it is no longer open (a
        replaced leg of a working pair included)."""
        order = self.find(order_id)
        if not (order.is_open and order.top.is_open):
            raise unprocessable(f'order is already in "{order.status}" state')
        return self.close(order.top, "canceled", now)

    def hold_cancel(self, top: SimOrder, now: pd.Timestamp) -> dict[SimOrder, str]:
        """Put ``top`` and its open legs in ``pending_cancel`` (a cancel accepted, not done:
        nothing of them works or holds qty meanwhile); their statuses before."""
        statuses = {part: part.status for part in [*top.legs, top] if part.is_open}
        for part in statuses:
            part.status, part.updated_at = "pending_cancel", now
        return statuses

    def cancel_all(self, now: pd.Timestamp) -> tuple[list[dict], list[dict]]:
        """Cancel every open order: (``DELETE /v2/orders``'s 207 items, events)."""
        items, events = [], []
        for order in self.orders:
            if order.is_open:
                events += self.close(order, "canceled", now)
                items.append({"id": order.id, "status": 200})
        return items, events

    def expire_day_orders(self, through: dt.date, now: pd.Timestamp) -> list[dict[str, Any]]:
        """Expire open ``day`` orders accepted for the session of ``through`` or earlier."""
        events = []
        for order in self.orders:
            if order.is_open and order.time_in_force == "day" and order.session <= through:
                events += self.close(order, "expired", now)
        return events

    def reject(self, order: SimOrder, now: pd.Timestamp) -> list[dict[str, Any]]:
        """Reject ``order`` and its legs; its rejected event."""
        for part in [*order.legs, order]:
            part.status, part.failed_at, part.updated_at = "rejected", now, now
        return [trade_update("rejected", order, now)]

    def replace(self, old: SimOrder, new: SimOrder, now: pd.Timestamp) -> list[dict[str, Any]]:
        """Put ``new`` in ``old``'s place: ``old`` becomes ``replaced`` (``replaced_by``,
        ``replaced_at``), ``new`` ``replaces`` it; a replaced leg's successor takes its place
        in the parent, a replaced oco parent hands its legs on, a replaced mleg's legs are
        replaced one for one. The events: ``replaced`` (old), then ``new`` (new)."""
        pairs = [(old, new)]
        if old.order_class == "mleg":
            pairs += zip(old.legs, new.legs, strict=True)
        for was, now_is in pairs:
            was.status, was.replaced_by = "replaced", now_is.id
            was.replaced_at = was.updated_at = now
            now_is.replaces = was.id
        if old.parent is not None:
            parent = old.parent
            parent.legs[parent.legs.index(old)] = new
            new.parent = parent
            self._index(new)
        else:
            if old.order_class == "oco":
                new.legs, old.legs = old.legs, []
                for leg in new.legs:
                    leg.parent = new
            self.add(new)
        return [trade_update("replaced", old, now), trade_update("new", new, now)]
