"""Lots traded as option structures (``instrument = "options"``), for ``ManagedStrategy``.

The broker opens and closes a whole structure at the next bar's open
(``broker.open_structure`` / ``close_structure``: the backtest broker prices it on the
synthetic chain; a live broker sends one multi-leg order). The scaling exits keep their
levels on the *underlying* (stop -0.7%, half the contracts at +1%, stop to breakeven, trail,
the rest at +2%) and are checked on each bar's close, as a live trader checks them on each
closed minute; trades.csv shows the structure's premiums. Subclasses may choose the
structure (``choose_structure``) and their own exits (``manage_lot``).
"""
from __future__ import annotations

import datetime as dt
import math

from mtbt import exits
from mtbt.exits import Lot, Stage
from mtbt.options.allocator import allocate

_MINUTE = dt.timedelta(minutes=1)


class StructureLots:
    """Mixin of ``ManagedStrategy``: entries, exits and fills of structure lots."""

    def choose_structure(self, signal, chain, budget: float):
        """(structure, contracts, position cost in dollars, note) or None: the best
        reward-to-risk structure for the signal from ``mtbt.options.allocate``."""
        rules = self.rules
        allocation = allocate(signal.side, chain.spot, chain, budget,
                              targets=(rules.tp1_pct, rules.tp2_pct), held=self.held_contracts())
        best = allocation.best
        if best is None:
            self.note(f"SKIP {signal.note}: {allocation.describe()}")
            return None
        return (best.structure, best.contracts, best.contracts * best.max_loss_per_contract,
                allocation.describe())

    def held_contracts(self) -> dict[tuple, int]:
        """Contracts the open structure lots hold (or are opening), ``(right, strike,
        expiry) -> signed qty``: a new structure must not trade one the other way."""
        held: dict[tuple, int] = {}
        for lot in self._lots.values():
            for leg in lot.structure.legs if lot.structure is not None else ():
                key = (leg.right, leg.strike, leg.expiry)
                held[key] = held.get(key, 0) + leg.qty * (lot.remaining or lot.qty)
        return held

    def chain_now(self, expiry: dt.date | None = None):
        """The broker's chain at this bar's close, for ``expiry`` (default: the traded one)."""
        now = self.data.datetime.datetime(0) + _MINUTE
        return self.broker.chain(self.data, now, self.data.close[0],
                                 expiry or self.expiry_date())

    def expiry_date(self) -> dt.date:
        """Today (0DTE) or the session ``expiry_sessions`` later."""
        today = self.data.datetime.date(0)
        ahead = [d for d in sorted(self._sessions) if d >= today]
        n = self.p.expiry_sessions
        return ahead[n] if n < len(ahead) else today + dt.timedelta(days=n)

    def _enter_structure(self, signal) -> None:
        chosen = self.choose_structure(signal, self.chain_now(), self.risk.risk_budget)
        if chosen is None:
            return
        structure, contracts, cost, why = chosen
        decision = self.risk.can_take_trade(cost)
        if not decision or contracts < 1:
            self.note(f"SKIP {signal.note}: {decision.reason or 'no contracts fit'}")
            return
        lot = self._new_lot(signal, contracts, cost)
        lot.structure = structure
        order = self.broker.open_structure(self, self.data, structure, contracts, lot=lot,
                                           role="entry")
        self._lot_orders[order.ref] = (lot, "entry", order)
        self.note(f"ENTRY #{lot.trade_id} {signal.note}: {contracts} x {structure.name} "
                  f"risk ${cost:,.2f} ({why})")

    def manage_structure(self, lot: Lot, close: float) -> None:
        """The scaling exits on the underlying's close: stop first, then the target."""
        exits.ratchet(self.rules, lot, close)
        for order in exits.exit_orders(self.rules, lot):
            beyond = lot.side * (close - order.price)
            if (beyond <= 0) if order.kind == "stop" else (beyond >= 0):
                self.close_structure(lot, order.qty, order.reason)
                return

    def close_structure(self, lot: Lot, contracts: int, reason: str) -> None:
        """Close ``contracts`` of the lot's structure at the next bar's open."""
        lot.pending_exit = True
        order = self.broker.close_structure(self, lot.position, contracts, lot=lot, role=reason)
        self._lot_orders[order.ref] = (lot, reason, order)

    def _structure_notice(self, lot: Lot, role: str, order) -> None:
        if order.status != order.Completed:
            lot.pending_exit = False
            if role == "entry":
                self.note(f"ENTRY #{lot.trade_id} not filled: {order.getstatusname()}")
                self._drop(lot)
            return
        if role == "entry":
            lot.position, lot.premium, lot.multiplier = order.position, order.premium, \
                order.multiplier
            exits.on_entry_fill(self.rules, lot, self.data.open[0], order.dt, order.fees)
            self.note(f"FILL #{lot.trade_id} {lot.structure.name} x {lot.qty} @ "
                      f"{lot.premium:.2f}; underlying {lot.entry_price:.2f}, "
                      f"stop {lot.stop:.2f}")
            return
        lot.pending_exit = False
        qty = order.contracts
        pnl = ((order.premium - lot.premium) * lot.multiplier * qty - order.fees
               - lot.entry_comm * qty / lot.qty)
        order.info["pnl"], order.info["role"] = pnl, role
        exits.on_exit_fill(lot, role, qty)
        self.risk.update_pnl(pnl)
        self._log_alerts()
        self.note(f"FILL #{lot.trade_id} {role} {qty} x {lot.structure.name} @ "
                  f"{order.premium:.2f} pnl {pnl:+.2f}")
        if lot.stage is Stage.CLOSED:
            self._drop(lot)

    def structure_mark(self, lot: Lot) -> float:
        """The lot's structure at the broker's mark of this bar's close, per share (NaN before
        its fill); the broker has priced it already, so this costs nothing."""
        return math.nan if lot.position is None else lot.position.mark
