"""Reconciliation: the ``AlpacaBroker``'s books against what Alpaca holds.

On start and after every reconnect (before new orders), and every ``RECONCILE_EVERY`` bars
(on a bar with nothing to send, so that it stays off an order's path), every order of
mtbt's is brought up to date and positions are compared with Alpaca's:

- shares or contracts mtbt never traded are reported and left alone;
- an option contract mtbt traded today that Alpaca holds beyond mtbt's structures (a leg
  left alone by a partial fill or a broker-side liquidation) is an orphan: logged and closed
  at market;
- a position mtbt's books hold and Alpaca does not is reported.
"""
from __future__ import annotations

import logging
import warnings

from mtbt.alpaca import orders as wire
from mtbt.alpaca.books import FINAL
from mtbt.state import OrderRow

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
    from alpaca.common.exceptions import APIError

log = logging.getLogger("mtbt.live")


class Reconcile:
    """Mixin of ``AlpacaBroker`` (see the module docstring)."""

    def reconcile(self) -> None:
        """Bring every order of ours up to date and compare positions with Alpaca's (on
        start and after every reconnect, before new orders; every ``RECONCILE_EVERY`` bars,
        on a bar with nothing to send).

        Shares or contracts mtbt never traded are reported and left alone. An option
        contract mtbt traded today that Alpaca holds beyond mtbt's structures (a leg left
        alone by a partial fill or a broker-side liquidation) is an orphan: logged and
        closed at market. A structure mtbt's books hold and Alpaca does not is reported."""
        self._reconcile.clear()
        self._reconnected.clear()
        self._bars_unreconciled = 0
        if self.p.dry_run or self.p.store is None:
            return
        self.poll()
        held = {p.symbol: abs(float(p.qty)) * (1 if str(p.side.value) == "long" else -1)
                for p in self.p.store.trading.get_all_positions()}
        ours = self.positions_by_symbol()
        traded = {leg["symbol"] for row in self.state.orders(self.day.isoformat())
                  for leg in row.spec.get("legs", [])}
        moving = {leg["symbol"] for sent in self._sent.values() if sent.status not in FINAL
                  for leg in sent.row.spec.get("legs", [])}
        for symbol, qty in held.items():
            extra = qty - ours.get(symbol, 0)
            if abs(extra) < 1e-9 or symbol in moving:     # an order of ours is working on it
                continue
            if symbol in traded:
                log.error("ORPHAN %s: Alpaca holds %g, mtbt's structures %g: closing %g",
                          symbol, qty, ours.get(symbol, 0), extra)
                self.orphans.append(f"{symbol} {extra:+g}")
                self._close_orphan(symbol, extra)
                for callback in self.on_orphan:
                    callback(symbol, f"Alpaca holds {qty:g}, mtbt's structures "
                                     f"{ours.get(symbol, 0):g}: closing {extra:+g} at market")
            else:
                note = ("opened outside mtbt: left alone" if symbol not in ours
                        else f"mtbt holds {ours[symbol]:g}: the difference is not mtbt's")
                log.warning("POSITION %s %g at Alpaca, %s", symbol, qty, note)
        for symbol, mine in ours.items():
            if symbol not in held and mine:
                log.error("POSITION %s: mtbt's books hold %g, Alpaca holds none", symbol, mine)

    def _close_orphan(self, symbol: str, qty: float) -> None:
        """Close ``qty`` (signed, as held) of an orphan option contract at market."""
        side = "sell" if qty > 0 else "buy"
        spec = {"kind": "option", "symbol": symbol, "side": side, "qty": int(abs(qty)),
                "position_intent": f"{side}_to_close", "legs": []}
        client_id = wire.client_order_id(self.day, self._seq, None, "orphan")
        row = OrderRow(client_id, self._seq, self.day.isoformat(), None, "orphan", spec)
        self._seq += 1
        self.state.record_orders([row])
        try:
            self.p.store.trading.submit_order(wire.to_request(spec, client_id))
        except APIError as exc:
            log.error("ORPHAN %s: closing refused: HTTP %s %s", symbol, exc.status_code,
                      wire.error_text(exc))

    def positions_by_symbol(self) -> dict[str, float]:
        """What mtbt's books hold, by Alpaca symbol (shares and option contracts)."""
        out: dict[str, float] = {}
        for position in self.positions.values():
            if position.size:
                out[self.p.symbol] = out.get(self.p.symbol, 0) + position.size
        for held in self.structures.values():
            for leg in held.structure.legs:
                symbol = wire.occ_symbol(self.p.symbol, leg.expiry, leg.right, leg.strike)
                out[symbol] = out.get(symbol, 0) + leg.qty * held.contracts
        return out

    def working_orders(self) -> list[str]:
        """Client ids of the orders still working at Alpaca."""
        return [s.row.client_order_id for s in self._sent.values()
                if any(p.status not in FINAL for p in s.parts)]
