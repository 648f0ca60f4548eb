"""Scaling exits: hard stop, half at +tp1, stop to breakeven, trail, the rest at +tp2.

This module is pure: it says which exit orders a lot should have working and how its state
moves on fills and bars. ``strategies.base.ManagedStrategy`` turns that into real backtrader
orders; a live broker gets the same calls, so both venues exit identically.

Life of a long lot (shorts mirror it), prices rounded to the cent:

1. ``OPEN`` after the entry fill at E: a stop for the whole lot at E x (1 - stop_pct) and a
   limit for half (rounded down, at least one share) at E x (1 + tp1_pct), one cancelling
   the other. If a bar reaches both, the stop is assumed to come first.
2. ``SCALED`` after tp1 fills: the rest gets a stop at E (**breakeven**) and a limit at
   E x (1 + tp2_pct). On every bar close the stop ratchets to
   best_close x (1 - trail_pct) when that is above the current stop (**trail**); the best
   close counts from the tp1 bar on.
3. ``CLOSED`` when nothing remains. Orders exist from the bar after the fill that calls for
   them (backtrader activates an order on the next bar).

With ``use_scaling = false`` a lot has a plain bracket: the stop and a limit at +tp2 for all.
Exit reasons: stop, tp1, tp2, trail, breakeven; eod and risk come from the strategy.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    """Where a lot is in its life."""

    PENDING = "pending"   # entry order working
    OPEN = "open"         # filled, before tp1
    SCALED = "scaled"     # tp1 filled; the rest is protected at breakeven or better
    CLOSED = "closed"


@dataclass(frozen=True)
class ExitRules:
    """The ``[scaling_exits]`` settings (fractions: 0.01 is 1%)."""

    use_scaling: bool = True
    tp1_pct: float = 0.01
    tp2_pct: float = 0.02
    stop_pct: float = 0.007
    trail_pct: float = 0.005


@dataclass(frozen=True)
class ExitOrder:
    """One exit order a lot should have working: a stop or a limit for ``qty``."""

    reason: str
    kind: str   # "stop" | "limit"
    price: float
    qty: int


@dataclass
class Lot:
    """One entry and the exits that belong to it (one ``trade_id`` in trades.csv)."""

    trade_id: int
    side: int                 # +1 long, -1 short
    qty: int
    regime: str = ""
    risk: float = 0.0         # position cost: loss at the hard stop, costs included
    entry_price: float = math.nan
    entry_time: dt.datetime | None = None
    entry_comm: float = 0.0
    remaining: int = 0
    stage: Stage = Stage.PENDING
    stop: float = math.nan
    stop_reason: str = "stop"
    best_close: float = math.nan
    closing: bool = False     # a market close (eod, risk) is working
    structure: object = None  # the option structure (None: shares)
    position: object = None   # the broker's open structure position
    premium: float = math.nan  # the structure's entry premium per share (debit > 0)
    multiplier: int = 1       # shares per contract
    pending_exit: bool = False  # a structure close is working

    @property
    def tp1_qty(self) -> int:
        return max(1, self.qty // 2)


def price_at(entry: float, side: int, pct: float) -> float:
    """``entry`` moved by ``pct`` in the lot's favour (negative pct: against), to the cent."""
    return round(entry * (1.0 + side * pct), 2)


def on_entry_fill(rules: ExitRules, lot: Lot, price: float, when: dt.datetime,
                  comm: float) -> None:
    """The entry filled: the lot is open with its hard stop."""
    lot.entry_price, lot.entry_time, lot.entry_comm = price, when, comm
    lot.remaining, lot.stage = lot.qty, Stage.OPEN
    lot.stop, lot.stop_reason = price_at(price, lot.side, -rules.stop_pct), "stop"


def exit_orders(rules: ExitRules, lot: Lot) -> list[ExitOrder]:
    """The exit orders the lot should have working now (stop first: it wins a tie)."""
    if lot.stage is Stage.OPEN:
        if rules.use_scaling:
            target = ExitOrder("tp1", "limit", price_at(lot.entry_price, lot.side,
                                                        rules.tp1_pct), lot.tp1_qty)
        else:
            target = ExitOrder("tp2", "limit", price_at(lot.entry_price, lot.side,
                                                        rules.tp2_pct), lot.remaining)
    elif lot.stage is Stage.SCALED:
        target = ExitOrder("tp2", "limit", price_at(lot.entry_price, lot.side, rules.tp2_pct),
                           lot.remaining)
    else:
        return []
    return [ExitOrder(lot.stop_reason, "stop", lot.stop, lot.remaining), target]


def on_exit_fill(lot: Lot, reason: str, qty: int) -> None:
    """An exit filled ``qty``; after tp1 the stop moves to breakeven."""
    lot.remaining -= qty
    if lot.remaining <= 0:
        lot.stage = Stage.CLOSED
    elif reason == "tp1":
        lot.stage = Stage.SCALED
        lot.stop, lot.stop_reason = round(lot.entry_price, 2), "breakeven"


def ratchet(rules: ExitRules, lot: Lot, close: float) -> bool:
    """On a bar close, trail the stop of a scaled lot; True when the stop moved."""
    if lot.stage is not Stage.SCALED:
        return False
    side = lot.side
    if math.isnan(lot.best_close) or side * (close - lot.best_close) > 0:
        lot.best_close = close
    level = price_at(lot.best_close, side, -rules.trail_pct)
    if side * (level - lot.stop) > 0:
        lot.stop, lot.stop_reason = level, "trail"
        return True
    return False
