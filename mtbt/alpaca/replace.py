"""Exits by replace: a trail or breakeven move is one replace request, not cancel-and-place.

On a backtest broker a stop move is the strategy cancelling its exit pair and placing a new
one. Sent as such to Alpaca it costs a cancel and a new order, in sequence (Alpaca will not
let two open orders sell the same shares), on the bar-to-order path. When the new pair is
the old one with only the stop moved (same side, same quantity, the same target price,
nothing filled yet), ``AlpacaBroker`` instead replaces the oco's stop leg
(``PATCH /v2/orders/{leg id}`` with the new ``stop_price`` and the new row's client order
id); the oco's limit order stays. The new backtrader orders take over the Alpaca orders.

The row recorded for it is an ordinary oco spec plus ``replaces`` (the oco's parent client
id and Alpaca ids), so a restart rebuilds it as the oco it is, and finds its leg by the new
client id. A replace Alpaca refuses falls back to cancel-and-place under the same client id,
unless the oco has ended meanwhile (filled): then the new orders take that oco's fills.
A restart finds a replace that never went out by the oco it replaces (``_replaced_oco``).
"""
from __future__ import annotations

import logging
import warnings

from mtbt.alpaca import orders as wire
from mtbt.alpaca.books import FINAL, Part, Sent

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.trading.requests import ReplaceOrderRequest

log = logging.getLogger("mtbt.live")


class Replace:
    """Mixin of ``AlpacaBroker`` (see the module docstring)."""

    def _replacement(self, limit, stop, spec: dict) -> list | None:
        """The unit that replaces the working oco of the same lot by ``spec`` (the new
        pair's oco spec), or None when it is not a stop move."""
        lot = limit.info.get("lot")
        for sent in self._sent.values():
            old = sent.row.spec
            parent = sent.parts[0]
            if (old.get("kind") != "oco" or sent.status in FINAL or sent.status == "unsent"
                    or parent.alpaca_id not in self._cancels or len(sent.parts) != 2
                    or not sent.parts[1].alpaca_id or parent.target.info.get("lot") is not lot):
                continue
            same = (old["side"], old["qty"], old["limit_price"]) == (
                spec["side"], spec["qty"], spec["limit_price"])
            if not same or parent.filled_qty or sent.parts[1].filled_qty or \
                    abs(int(stop.created.size)) != spec["qty"]:
                return None
            self._cancels = [c for c in self._cancels if c != parent.alpaca_id]
            for part in sent.parts:
                part.status = "replaced"
            sent.status = "replaced"
            replaces = {"client_order_id": self._parent_client_id(sent),
                        "parent_id": parent.alpaca_id, "leg_id": sent.parts[1].alpaca_id}
            parts = [Part(limit, ""), Part(stop, "", leg=True)]
            return [(spec | {"replaces": replaces}, limit, parts)]
        return None

    @staticmethod
    def _parent_client_id(sent: Sent) -> str:
        """The client id of the Alpaca order that carries ``sent``'s fills as its parent
        (a replaced oco keeps its first client id; only its stop leg gets the new one)."""
        if sent.replaced_leg:
            return sent.row.spec["replaces"]["client_order_id"]
        return sent.row.client_order_id

    def _send_replace(self, sent: Sent):
        """PATCH the oco's stop leg; the parent Alpaca order (as the link and the fills
        need it), or None when refused and placed anew instead."""
        client_id, spec = sent.row.client_order_id, sent.row.spec
        replaces = spec["replaces"]
        request = ReplaceOrderRequest(stop_price=spec["stop_price"], client_order_id=client_id)
        try:
            leg = self.p.store.trading.replace_order_by_id(replaces["leg_id"], request)
        except APIError as exc:
            why = f"HTTP {exc.status_code} {wire.error_text(exc)}"
            old = self._replaced_oco(sent)
            if old is not None and str(old.status.value) in FINAL:     # filled meanwhile
                log.warning("REPLACE %s refused: %s; the oco is %s", client_id, why,
                            old.status.value)
                return old
            sent.replaced_leg = False
            log.warning("REPLACE %s refused: %s; cancelling and placing it anew", client_id,
                        why)
            self._cancel_remote(replaces["parent_id"])
            return None
        log.info("REPLACED %s stop %.2f (leg of %s)", client_id, spec["stop_price"],
                 replaces["client_order_id"])
        return self._replaced_parent(sent, leg)

    def _replaced_oco(self, sent: Sent):
        """For a replace that never reached Alpaca, the oco it was to replace, which is what
        works (or filled) there: ``sent`` takes its orders over, and the replace is sent
        while it works. None when ``sent`` is no replace, or the oco is not found."""
        replaces = sent.row.spec.get("replaces")
        old = self._lookup(replaces["client_order_id"]) if replaces else None
        if old is not None:
            sent.parts[1].alpaca_id = replaces["leg_id"]
            sent.replaced_leg = True          # its fills come by the oco's client id
        return old

    def _replaced_parent(self, sent: Sent, leg):
        """Take the new stop leg for ``sent``'s and return the oco's parent order, fresh
        from Alpaca (``_link`` then links it)."""
        sent.parts[1].alpaca_id = str(leg.id)
        sent.replaced_leg = True
        return self.p.store.trading.get_order_by_id(sent.row.spec["replaces"]["parent_id"])
