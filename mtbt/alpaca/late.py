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

A cancel Alpaca accepts (HTTP 204) is a request, not a result: the order may be
``pending_cancel`` and still fill. Before a trade's next order goes (its close, or a new
pair), each of its exits whose cancel is not confirmed yet is checked: the stream's
``canceled`` event (waited for a moment), else a lookup (a few, over a few tenths of a
second); one still pending holds that trade's orders back for a bar
(withdrawn, as above): the stream then says cancelled (the strategy sends them again) or
filled (booked as a late fill). Sent at once, the close sold the shares a second time.
"""
from __future__ import annotations

import logging
import time

import backtrader as bt

from mtbt.alpaca.books import FINAL, Part, Sent

log = logging.getLogger("mtbt.live")
_STREAM_WAIT = 0.002                      # s for the stream's ``canceled`` event, then:
_CONFIRM_WAITS = (0.0, 0.05, 0.1, 0.2)    # s before each look at a cancel not confirmed


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

    def _cancel_accepted(self, alpaca_id: str) -> None:
        """Alpaca took the cancel of ``alpaca_id``: an exit's cancel is confirmed before its
        trade's next order goes (``_confirm_cancels``)."""
        part = self._by_alpaca.get(alpaca_id)
        if part is not None and isinstance(part.target, bt.Order):
            self._cancelling[alpaca_id] = self._sent[part.client_id]

    def _confirm_cancels(self) -> None:
        """Before this bar's orders go: each order of a trade that sends one now and whose
        cancel Alpaca has not confirmed is checked (``_cancel_confirmed``); if it filled, it
        is booked and the trade's orders withdrawn (``_settle_late``); if it is still
        pending, they are withdrawn too, for a bar."""
        lots = [s.parts[0].target.info.get("lot") for s in self._unsent]
        for alpaca_id, sent in list(self._cancelling.items()):
            lot = sent.parts[0].target.info.get("lot")
            if sent.parts[0].status in FINAL or lot is None:
                del self._cancelling[alpaca_id]
            elif any(lot is other for other in lots) and not self._cancel_confirmed(sent):
                self._withdraw(lot, f"the cancel of {sent.row.client_order_id} is pending "
                                    "at Alpaca")

    def _cancel_confirmed(self, sent: Sent) -> bool:
        """Whether Alpaca has ended ``sent``: its ``canceled`` event on the stream, or a few
        lookups (a fill found is booked)."""
        deadline = time.monotonic() + _STREAM_WAIT
        while True:                       # the stream says so first, as a rule: no request
            if self._stream_cancelled(sent):
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(0.0005)
        client_id = self._parent_client_id(sent)
        for wait in _CONFIRM_WAITS:
            time.sleep(wait)
            order = self._lookup(client_id)
            if order is None:
                return True               # never reached Alpaca: nothing there to fill
            self._settle_late(sent, order)
            if sent.parts[0].status in FINAL:
                return True
        return False

    def _stream_cancelled(self, sent: Sent) -> bool:
        """Whether the stream's events not applied yet (they are applied at the next bar;
        this only looks) say ``sent`` was cancelled, with no fill of it among them."""
        ids = {part.alpaca_id for part in sent.parts}
        with self._events.mutex:
            events = [(str(u.order.id), str(getattr(u.event, "value", u.event)))
                      for u in self._events.queue]
        return (sent.parts[0].alpaca_id, "canceled") in events and not any(
            order_id in ids and event in ("fill", "partial_fill") for order_id, event in events)

    def _settle_late(self, sent: Sent, order) -> None:
        """Apply Alpaca's ``order`` to ``sent`` (an order mtbt cancelled); if it filled more
        than mtbt knew, withdraw the unsent orders of its trade."""
        before = sum(p.filled_qty for p in sent.parts)
        self._apply(self._pairs(sent, order))
        target = sent.parts[0].target
        if isinstance(target, bt.Order) and sum(p.filled_qty for p in sent.parts) > before:
            self._withdraw(target.info.get("lot"),        # (a structure fills whole)
                           "its trade filled an exit mtbt had cancelled")

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

    def _withdraw(self, lot, why: str) -> None:
        """Take back ``lot``'s orders recorded and not sent yet (sized for what it held
        before a late fill, or behind a cancel still pending): cancelled for the strategy
        (``withdrawn``, not a refusal), never sent."""
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
                    part.target.info["withdrawn"] = True
                    part.target.cancel()
                    self.notify(part.target)
            log.warning("WITHDRAWN %s: %s", sent.row.client_order_id, why)

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
        if parts[0].alpaca_id and sent.status not in FINAL:     # pending_cancel
            self._cancel_accepted(parts[0].alpaca_id)
