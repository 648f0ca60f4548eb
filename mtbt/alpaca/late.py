"""Fills of exits mtbt had already cancelled: booked to their trade, never lost.

The strategy cancels a trade's exits before it moves them or closes the trade (at 15:45, or
on a risk stop). At Alpaca the stop may fill first: the cancel then comes back refused
(HTTP 422, the order is no longer open), or, when the trader was killed between deciding and
sending, the fill happened while it was down. Booked as before, the fill changed the
position while the strategy, which had dropped the cancelled order, still counted the
shares, and the close sent next sold them a second time: the account went short.

Now such a fill is booked as its own completed order (``info["late"]``), with the trade and
exit role of the order it fills, so the strategy and the journal take it as that trade's
exit; and the trade's orders recorded and not sent yet (the close, or the moved pair, sized
for what the trade held before) are withdrawn: the strategy hears them cancelled and sends
what the trade still needs on the next bar. A cancel Alpaca refuses is followed by one
lookup of the order, before anything else of the bar is sent; after a restart,
``Books.restore`` looks up every order cancelled before the kill.
"""
from __future__ import annotations

import logging

import backtrader as bt

from mtbt.alpaca.books import FINAL, Part, Sent

log = logging.getLogger("mtbt.live")


class LateFills:
    """Mixin of ``AlpacaBroker`` (see the module docstring)."""

    def _cancel_refused(self, alpaca_id: str) -> None:
        """A cancel Alpaca refused: bring the order up to date (``_apply`` books a fill it
        got as a late one) and withdraw its trade's unsent orders if it filled."""
        part = self._by_alpaca.get(alpaca_id)
        if part is None:
            return
        sent = self._sent[part.client_id]
        order = self._lookup(self._parent_client_id(sent))
        if order is not None:
            self._settle_late(sent, order)

    def _settle_late(self, sent: Sent, order) -> None:
        """Apply Alpaca's ``order`` to ``sent`` (an order mtbt cancelled); if it filled more
        than mtbt knew, withdraw the unsent orders of its trade."""
        before = sum(p.filled_qty for p in sent.parts)
        self._apply(self._pairs(sent, order))
        target = sent.parts[0].target
        if isinstance(target, bt.Order) and sum(p.filled_qty for p in sent.parts) > before:
            self._withdraw(target.info.get("lot"))       # (a structure fills whole)

    def _late_order(self, cancelled: bt.Order, qty: int) -> bt.Order:
        """The order that books ``qty`` Alpaca filled of ``cancelled`` after mtbt cancelled
        it: same trade, role, side and type, marked ``late``."""
        cls = bt.BuyOrder if cancelled.isbuy() else bt.SellOrder
        order = self._accepted(
            cls(owner=cancelled.owner, data=cancelled.data, size=qty,
                price=cancelled.created.price, exectype=cancelled.exectype),
            getattr(cancelled, "client_order_id", None), **cancelled.info, late=True)
        log.warning("LATE FILL %s: %d filled after mtbt cancelled it; booked to its trade",
                    order.client_order_id, qty)
        return order

    def _withdraw(self, lot) -> None:
        """Take back ``lot``'s orders recorded and not sent yet (sized for what it held
        before a late fill): cancelled for the strategy, never sent."""
        if lot is None:
            return
        for sent in [s for s in self._unsent if s.parts[0].target.info.get("lot") is lot]:
            self._unsent.remove(sent)
            sent.status = "canceled"
            if "replaces" in sent.row.spec:      # the oco it was to replace still works
                self._cancel_remote(sent.row.spec["replaces"]["parent_id"])
            for part in sent.parts:
                part.status = "canceled"
                if part.target.alive():
                    part.target.cancel()
                    self.notify(part.target)
            log.warning("WITHDRAWN %s: its trade filled an exit mtbt had cancelled",
                        sent.row.client_order_id)

    def _cancelled_before_kill(self, row, state: dict, lot, owner, data) -> None:
        """After a restart: an order of an open ``lot`` that mtbt cancelled before the kill
        (its cancel maybe never sent). Cancelled at Alpaca if it still works; a fill it got
        after the last checkpoint is booked to the lot (``_settle_late``)."""
        client_id = self._parent_client_id(Sent(row, replaced_leg=state.get("replaced_leg",
                                                                            False)))
        order = self._lookup(client_id)
        if order is None:
            return
        if str(order.status.value) not in FINAL:
            self._cancel_remote(str(order.id))
            order = self._lookup(client_id)
        parts = [Part(self._order_for(row, spec_part, row.spec["qty"], lot, owner, data),
                      row.client_order_id, alpaca_id, filled, value, status, spec_part["leg"])
                 for spec_part, (alpaca_id, filled, value, status)
                 in zip(row.spec["parts"], state["parts"], strict=True)]
        for part in parts:
            part.target.cancel()           # as the strategy left it
        sent = Sent(row, parts, state["status"], state.get("replaced_leg", False))
        self._track(sent)
        self._settle_late(sent, order)
