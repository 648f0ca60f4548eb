"""The account's money side: fills booked into cash and positions, expiring options settled,
and the marks, market values and equity read from them."""
from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mtbt.sim.events import trade_update
from mtbt.sim.market import BarRow, OptionMarket, parse_occ
from mtbt.sim.orders import SimOrder
from mtbt.sim.wire import num

__all__ = ["Account", "Execution", "Position"]

log = logging.getLogger(__name__)


@dataclass
class Position:
    """A signed position; ``avg_entry_price`` per share (per contract share for options)."""

    symbol: str
    qty: float
    avg_entry_price: float
    asset_class: str


@dataclass(frozen=True)
class Execution:
    """One fill."""

    execution_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    time: pd.Timestamp


class Account:
    """Cash, positions, the fills and the option settlements of the simulated account.

    ``multiplier`` and ``fee_per_contract`` apply to options (the chain model's)."""

    def __init__(self, cash: float, multiplier: int, fee_per_contract: float) -> None:
        self.cash = float(cash)
        self.multiplier, self.fee_per_contract = multiplier, fee_per_contract
        self.positions: dict[str, Position] = {}
        self.executions: list[Execution] = []
        self.settlements: list[dict[str, Any]] = []
        self.last_equity = float(cash)

    def multiplier_of(self, asset_class: str) -> int:
        return self.multiplier if asset_class == "us_option" else 1

    def held(self, symbol: str) -> float:
        """The signed position in ``symbol`` (0 when flat)."""
        pos = self.positions.get(symbol)
        return pos.qty if pos else 0.0

    # -- fills -------------------------------------------------------------------------------
    def execute(self, order: SimOrder, qty: float, price: float, at: pd.Timestamp,
                now: pd.Timestamp) -> dict[str, Any]:
        """Book one execution of ``qty`` at ``price`` (filled ``at``, reported ``now``): cash,
        position, the order's fill state, the record; its fill or partial_fill event."""
        option = order.asset_class == "us_option"
        self._move(order.symbol, order.sign * qty, price, self.multiplier_of(order.asset_class),
                   order.asset_class)
        if option:
            self.cash -= self.fee_per_contract * qty
        done = order.filled_qty
        order.filled_avg_price = price if not done else (
            (order.filled_avg_price * done + price * qty) / (done + qty))
        order.filled_qty = done + qty
        order.updated_at = now
        if order.remaining <= 1e-9:
            order.status, order.filled_at, event = "filled", at, "fill"
        else:
            order.status, event = "partially_filled", "partial_fill"
        execution = Execution(str(uuid.uuid4()), order.id, order.client_order_id, order.symbol,
                              order.side, qty, price, at)
        self.executions.append(execution)
        return trade_update(event, order, now, execution_id=execution.execution_id,
                            price=num(price), qty=num(qty),
                            position_qty=num(self.held(order.symbol)))

    def _move(self, symbol: str, delta: float, price: float, mult: int,
              asset_class: str) -> None:
        self.cash -= delta * price * mult
        pos = self.positions.get(symbol)
        old = pos.qty if pos else 0.0
        new = old + delta
        if abs(new) < 1e-9:
            self.positions.pop(symbol, None)
            return
        if old == 0 or (old > 0) == (delta > 0):
            avg = price if old == 0 else (abs(old) * pos.avg_entry_price
                                          + abs(delta) * price) / abs(new)
        elif (old > 0) == (new > 0):
            avg = pos.avg_entry_price
        else:
            avg = price
        self.positions[symbol] = Position(symbol, new, avg, asset_class)

    def settle(self, bar: BarRow, day: Any, now: pd.Timestamp, options: OptionMarket) -> None:
        """Cash-settle option positions expiring on ``day`` (or before) at intrinsic value on
        ``bar``'s close."""
        for symbol, pos in list(self.positions.items()):
            if pos.asset_class != "us_option":
                continue
            if parse_occ(symbol)[1] > day:
                continue
            value = options.intrinsic(symbol, bar.close)
            self.cash += value * self.multiplier * pos.qty
            del self.positions[symbol]
            self.settlements.append({"symbol": symbol, "qty": pos.qty, "value": value,
                                     "spot": bar.close, "time": now})
            log.info("settled %s x%g at intrinsic %.2f (spot %.2f)", symbol, pos.qty, value,
                     bar.close)

    # -- views -------------------------------------------------------------------------------
    def market_values(self, mark: Callable[[str], float | None]) -> tuple[float, float]:
        """(long, short) market value of all positions at ``mark`` (per share; the entry
        price where it has none)."""
        long = short = 0.0
        for pos in self.positions.values():
            price = mark(pos.symbol)
            value = (pos.qty * (pos.avg_entry_price if price is None else price)
                     * self.multiplier_of(pos.asset_class))
            if value >= 0:
                long += value
            else:
                short += value
        return long, short

    def equity(self, mark: Callable[[str], float | None]) -> float:
        long, short = self.market_values(mark)
        return self.cash + long + short

    def available(self, pos: Position, reserved: float) -> float:
        """The signed qty of ``pos`` not held by open orders reducing it (``reserved``)."""
        return math.copysign(max(abs(pos.qty) - reserved, 0.0), pos.qty)
