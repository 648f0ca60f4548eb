"""Lots traded as option structures (``instrument = "options"``), for ``ManagedStrategy``.

The broker opens and closes a whole structure at the next bar's open
(``broker.open_structure`` / ``close_structure``: the backtest broker prices it on the
synthetic chain; a live broker sends one multi-leg order). The scaling exits keep their
levels on the *underlying* (stop -0.7%, half the contracts at +1%, stop to breakeven, trail,
the rest at +2%) and are checked on each bar's close, as a live trader checks them on each
closed minute; trades.csv shows the structure's premiums.

Which structure: ``mtbt.options.allocate`` values every candidate along simulated paths of
the underlying closed by these same exits, sizes it on its worst-case loss and picks the
best expected value per dollar of worst case; when none reaches ``min_edge`` the signal is
traded as shares or skipped (``[options] fallback``), and so is it when, on recorded option
prices, no candidate has a recorded price for every leg (``SKIP``/``FALLBACK`` lines say so).
Candidates dropped for want of a recorded price or by the liquidity rules are named in the
``ALLOCATE`` line and counted in the broker's ``price_counts``. Each decision is one journal
line and one row of ``allocations`` (allocator.csv). Subclasses may choose the structure
(``choose_structure``) and their own exits (``manage_lot``).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from mtbt import exits
from mtbt.exits import Lot, Stage
from mtbt.options.allocator import NO_RECORDED_PRICE, Allocation, AllocatorSettings, allocate
from mtbt.options.chain import SESSION_MINUTES, TRADING_DAYS
from mtbt.options.paths import PathModel, edge_drift, realised_sigma
from mtbt.options.structures import Structure

_MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Choice:
    """A structure to open (``structure`` None: trade the signal as shares instead)."""

    structure: Structure | None
    contracts: int = 0
    risk: float = 0.0         # dollars the position may lose (what sizing capped)
    note: str = ""


class StructureLots:
    """Mixin of ``ManagedStrategy``: entries, exits and fills of structure lots."""

    def _init_structures(self) -> None:
        self.settings: AllocatorSettings = self.p.allocator or AllocatorSettings()
        self.allocations: list[dict] = []       # one row per options decision
        self._edge: tuple[list[float], list[float]] = ([], [])   # moves, minutes held

    # -- choosing ----------------------------------------------------------------------------
    def choose_structure(self, signal, chain, budget: float) -> Choice | None:
        """The allocator's pick for the signal, a shares fallback, or None (skip)."""
        s = self.settings
        model = self.path_model(chain)
        alloc = allocate(signal.side, chain, budget, bars=self.bars_to_force_close(),
                         model=model, rules=self.rules, held=self.held_contracts(),
                         min_edge=s.min_edge, gap=s.gap, score=s.score,
                         liquidity=s.liquidity)
        self._record(signal, alloc, model)
        self.note(f"ALLOCATE {signal.note}: {alloc.describe()}")
        self.count_drops(c.code for c in alloc.candidates)
        best = alloc.best
        if best is not None:
            return Choice(best.structure, best.contracts, best.position_worst,
                          f"EV {best.ev:+,.2f}, worst ${best.position_worst:,.2f}")
        if alloc.no_recorded_price:
            self.count_drops(["entries"])
        if alloc.fallback and s.fallback == "shares":
            self.note(f"FALLBACK {signal.note}: shares ({alloc.why})")
            return Choice(None)
        self.note(f"SKIP {signal.note}: {alloc.why}")
        return None

    def count_drops(self, codes) -> None:
        """Count candidates dropped for want of a recorded price (``"entries"``: a signal
        left without a structure for it) or by a liquidity rule, in the broker's
        ``price_counts`` (a broker without one counts nothing)."""
        counts = getattr(self.broker, "price_counts", None)
        if counts is None:
            return
        for code in codes:
            if code == NO_RECORDED_PRICE:
                counts.unpriced["candidates"] += 1
            elif code == "entries":
                counts.unpriced["entries"] += 1
            elif code is not None:
                counts.liquidity[code] += 1

    def path_model(self, chain) -> PathModel:
        """The underlying's model for this signal: realised 1-minute volatility of the last
        ``vol_sessions`` sessions (the ATM IV when too little history), the run's measured
        edge (``edge = "signals"``) or none, and a seed from the settings and the bar time
        (the same signal gets the same paths in every run and venue)."""
        s = self.settings
        n = min(len(self.data), s.vol_sessions * SESSION_MINUTES // self.p.bar_minutes)
        closes = np.asarray(self.data.close.get(size=n))
        days = np.asarray(self.data.datetime.get(size=n)).astype(int)
        sigma = realised_sigma(closes, days) * math.sqrt(1.0 / self.p.bar_minutes)
        if not sigma > 0:
            sigma = chain.atm_iv / math.sqrt(TRADING_DAYS * SESSION_MINUTES)
        drift = edge_drift(*self._edge, s.edge_shrink) if s.edge == "signals" else 0.0
        minute = round(self.data.datetime[0] * 1440)
        return PathModel(sigma, drift, s.paths, (s.seed * 1_000_003 + minute) % 2**63)

    def bars_to_force_close(self) -> int:
        """Bars from this bar's close to the options force close (the last one closes)."""
        close_t = self.data.datetime[0] + self._bar
        return max(1, round((self._force_opt_at - close_t) / self._bar))

    def _record(self, signal, alloc: Allocation, model: PathModel) -> None:
        best = alloc.best
        pick = best.structure.label if best else (
            "shares" if alloc.fallback and self.settings.fallback == "shares" else "skip")
        self.allocations.append({
            "time": self.data.datetime.datetime(0) + _MINUTE, "trade_id": self._next_id,
            "side": "long" if signal.side > 0 else "short", "underlying": alloc.underlying,
            "pick": pick, "contracts": best.contracts if best else 0,
            "ev": best.ev if best else None,
            "p_profit": best.p_profit if best else None, "p_tp1": alloc.p_tp1,
            "p_stop": alloc.p_stop, "worst_loss": best.position_worst if best else None,
            "score": best.score if best else None, "sigma_per_min": model.sigma,
            "drift_per_min": model.drift, "why": alloc.why, "entered": False})

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

    # -- entries and exits -------------------------------------------------------------------
    def _enter_structure(self, signal) -> bool:
        """Open the chosen structure; False when the signal should be traded as shares."""
        choice = self.choose_structure(signal, self.chain_now(), self.risk.entry_budget)
        if choice is None:
            return True
        if choice.structure is None:
            return False
        decision = self.risk.can_take_trade(choice.risk)
        if not decision or choice.contracts < 1:
            self.note(f"SKIP {signal.note}: {decision.reason or 'no contracts fit'}")
            return True
        lot = self._new_lot(signal, choice.contracts, choice.risk)
        lot.structure = choice.structure
        order = self.broker.open_structure(self, self.data, choice.structure, choice.contracts,
                                           lot=lot, role="entry")
        self._lot_orders[order.ref] = (lot, "entry", order)
        self.note(f"ENTRY #{lot.trade_id} {signal.note}: {choice.contracts} x "
                  f"{choice.structure.name} risk ${choice.risk:,.2f} ({choice.note})")
        return True

    def manage_structure(self, lot: Lot, close: float) -> None:
        """The scaling exits on the underlying's close: stop first, then the target."""
        exits.ratchet(self.rules, lot, close)
        for order in exits.exit_orders(self.rules, lot):
            beyond = lot.side * (close - order.price)
            if (beyond <= 0) if order.kind == "stop" else (beyond >= 0):
                self.close_structure(lot, order.qty, order.reason)
                return

    def close_structure(self, lot: Lot, contracts: int, reason: str,
                        limit: float | None = None) -> None:
        """Close ``contracts`` of the lot's structure at the next bar's open (no worse than
        ``limit`` per share, else not at all)."""
        lot.pending_exit = True
        order = self.broker.close_structure(self, lot.position, contracts, limit=limit,
                                            lot=lot, role=reason)
        self._lot_orders[order.ref] = (lot, reason, order)

    def _structure_notice(self, lot: Lot, role: str, order) -> None:
        if order.status != order.Completed:
            lot.pending_exit = False
            if role == "entry":
                self.note(f"ENTRY #{lot.trade_id} not filled: {order.getstatusname()}")
                self._drop(lot)
            elif order.status == order.Canceled and getattr(order, "limit", None) is not None:
                self.note(f"EXIT #{lot.trade_id} {role}: limit {order.limit:.2f} not reached")
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
        self.edge_sample(lot, self.data.open[0], qty, order.dt)
        exits.on_exit_fill(lot, role, qty)
        self.risk.update_pnl(pnl)
        self._log_alerts()
        self.note(f"FILL #{lot.trade_id} {role} {qty} x {lot.structure.name} @ "
                  f"{order.premium:.2f} pnl {pnl:+.2f}")
        if lot.stage is Stage.CLOSED:
            self._drop(lot)

    def edge_sample(self, lot: Lot, underlying: float, qty: int, when: dt.datetime) -> None:
        """Record an exit's move of the underlying in the lot's direction and the time
        held, weighted by the share of the lot it closed (for ``edge = "signals"``)."""
        if lot.entry_time is None or not lot.entry_price > 0:
            return
        share = qty / lot.qty
        self._edge[0].append(share * lot.side * (underlying / lot.entry_price - 1.0))
        self._edge[1].append(share * (when - lot.entry_time).total_seconds() / 60.0)

    def structure_mark(self, lot: Lot) -> float:
        """The lot's structure at the broker's mark of this bar's close, per share (NaN before
        its fill); the broker has priced it already, so this costs nothing."""
        return math.nan if lot.position is None else lot.position.mark
