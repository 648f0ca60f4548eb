"""Structure limit closes on Alpaca, good for one bar as in a backtest.

``BacktestBroker`` fills a structure close that has a ``limit`` at the next bar's open only if
the premium reaches it, and otherwise cancels it, so the strategy judges again on that bar.
The ``AlpacaBroker`` sends such a close as a limit order (``orders.structure_spec``)
and, once the next bar is in and Alpaca has not filled it, cancels it at Alpaca and looks it
up again: the strategy hears Canceled when Alpaca confirms the cancel, or gets the fill that
beat it (a cancel still pending at Alpaca is followed up by the usual order checks).
"""
from __future__ import annotations

import logging

from mtbt.options.book import StructureOrder

log = logging.getLogger("mtbt.live")


class StructureLimits:
    """Mixin of ``AlpacaBroker`` (see the module docstring)."""

    def _track_limit(self, order: StructureOrder, bar: int | None = None) -> None:
        """Watch a structure limit order made on bar ``bar`` (the data's length; default
        now, the bar the strategy decided it on; a restored one: -1, due at once)."""
        if order.limit is not None and not self.p.dry_run:
            self._limits[order.ref] = (order, len(order.data) if bar is None else bar)

    def _expire_limits(self, why: str = "not filled on the next bar") -> None:
        """Cancel each watched limit order that the bar after its making did not fill."""
        for ref, (order, bar) in list(self._limits.items()):
            if not order.alive():
                del self._limits[ref]
            elif len(order.data) > bar:
                del self._limits[ref]
                self._expire(order, why)

    def withdraw_limits(self) -> None:
        """Cancel every structure limit close still working now (a shutdown closes those
        trades at market instead); one that filled first is booked."""
        for ref, (order, _) in self._limits.items():
            self._limits[ref] = (order, -1)
        self._expire_limits("withdrawn for the shutdown")

    def _expire(self, target: StructureOrder, why: str) -> None:
        parts = self._by_ref.get(target.ref)
        sent = self._sent[parts[0].client_id] if parts else None
        log.info("LIMIT %s %.2f %s: cancelling", sent.row.client_order_id if sent else
                 f"ref {target.ref} (not sent)", target.limit, why)
        if target in self._outbox:                 # never prepared, never sent
            self._outbox.remove(target)
        else:
            for alpaca_id in self._remote_ids(target):   # an unsent one is just dropped
                self._cancel_remote(alpaca_id)
            if sent.parts[0].alpaca_id:
                order = self._lookup(sent.row.client_order_id)
                if order is not None:
                    self._pairs(sent, order)   # canceled: Canceled to the strategy; or its fill
                    return
        if target.alive():
            target.status = target.Canceled
            self.notifs.append(target)
