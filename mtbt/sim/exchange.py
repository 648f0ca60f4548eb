"""The simulated venue: one account trading one underlying and its options (pure Python, no
I/O). It ties the parts together: :mod:`~mtbt.sim.intake` turns requests into orders,
:mod:`~mtbt.sim.book` keeps them, :mod:`~mtbt.sim.matching` fills them against each bar and
:mod:`~mtbt.sim.account` books the fills.

Every state change returns the trade_updates events it causes (``{"event", "order",
"timestamp", ...}`` dicts, the ``data`` of Alpaca's stream messages) for the caller to
deliver. Callers serialise access (the simulator holds one lock around every call).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import pandas as pd

from mtbt.options.chain import ChainModel
from mtbt.sim.account import Account
from mtbt.sim.book import OrderBook
from mtbt.sim.calendar import SessionBook, naive_ny
from mtbt.sim.errors import ApiError, not_found, unprocessable
from mtbt.sim.events import trade_update
from mtbt.sim.faults import Faults
from mtbt.sim.intake import Intake
from mtbt.sim.market import BarRow, OptionMarket, is_option
from mtbt.sim.matching import Matcher
from mtbt.sim.orders import SimOrder
from mtbt.sim.wire import account_json, position_json

__all__ = ["Exchange"]

log = logging.getLogger(__name__)

#: statuses Alpaca will not replace from (the order is still on its way somewhere)
_IN_FLIGHT = frozenset({"accepted", "pending_new", "pending_cancel", "pending_replace"})

_DAY = dt.timedelta(days=1)

Events = list[dict[str, Any]]


class Exchange:
    """Account state and matching for one underlying ``symbol`` and its options; ``now`` is
    the simulated time (New York), the end of the last bar worked; ``faults``: the matching
    and cancel fault knobs."""

    def __init__(self, symbol: str, cash: float, slippage: float, chain_model: ChainModel,
                 sessions: SessionBook, now: pd.Timestamp, faults: Faults | None = None) -> None:
        self.symbol, self.now, self.sessions = symbol, now, sessions
        faults = faults or Faults()
        self.options = OptionMarket(chain_model, sessions)
        self.book = OrderBook()
        self.account = Account(cash, chain_model.multiplier, chain_model.fee_per_contract)
        self.intake = Intake(symbol, sessions)
        self.matcher = Matcher(self.book, self.account, self.options, slippage,
                               faults.partial_fills, faults.slip, faults.slip_fill)
        self.last_bar: BarRow | None = None
        self.fill_on_cancel = faults.fill_on_cancel     # the fault knobs: once each
        self.pending_cancel = faults.pending_cancel
        self.pending_cancel_fills = faults.pending_cancel_fills
        self.pending_cancel_bars = faults.pending_cancel_bars
        self._pending: list[list] = []        # [order, its statuses before, bars left]

    # -- orders ------------------------------------------------------------------------------
    def submit(self, body: Any) -> tuple[SimOrder, Events]:
        """Validate and accept a ``POST /v2/orders`` body; the order and its ``new`` event."""
        cid = self.intake.client_id(body)
        self.book.check_client_id(cid)
        order = self.intake.order(body, cid, self.now)
        self.book.check_available(order, self._held())
        self.book.add(order)
        return order, [trade_update("new", order, self.now)]

    def replace(self, order_id: str, body: Any) -> tuple[SimOrder, Events]:
        """Replace an open order (or one leg of an open oco pair) with the changes of a
        ``PATCH /v2/orders/{id}`` body: the new order and the events (``replaced``, ``new``).
        404 for an unknown id, 422 for an order that is no longer open or still in flight,
        403 when the new qty is more than the position has available."""
        old = self.book.find(order_id)
        if old.status in _IN_FLIGHT:
            raise unprocessable(f'order in "{old.status}" state cannot be replaced yet')
        if not (old.is_open and old.top.is_open):
            raise unprocessable(f'order is already in "{old.status}" state')
        body = {} if body is None else body
        cid = self.intake.client_id(body)
        self.book.check_client_id(cid)
        new = self.intake.replacement(old, body, cid, self.now)
        if old.parent is None:
            self.book.check_available(new, self._held(), ignoring=old)
        return new, self.book.replace(old, new, self.now)

    def fill_before_cancel(self, order_id: str) -> Events:
        """The ``fill_on_cancel`` fault: an open equity order whose client id holds the
        knob's text fills at the last bar's close as its cancel arrives (once); the fill's
        events (the cancel then finds it filled: 422)."""
        order = self.book.find(order_id).top
        bar = self.last_bar
        if not self._knob_hits(self.fill_on_cancel, order) or bar is None:
            return []
        self.fill_on_cancel = ""
        return self.matcher.force(order, bar.close, bar)

    def cancel(self, order_id: str) -> Events:
        """Cancel an open order (the whole oco pair or mleg); 422 if it is no longer open.
        The ``pending_cancel`` fault holds the cancel instead (``_resolve_pending``)."""
        order = self.book.find(order_id).top
        if self._knob_hits(self.pending_cancel, order):
            self.pending_cancel = ""
            statuses = self.book.hold_cancel(order, self.now)
            self._pending.append([order, statuses, self.pending_cancel_bars])
            return [trade_update("pending_cancel", order, self.now)]
        return self.book.cancel(order_id, self.now)

    @staticmethod
    def _knob_hits(text: str, order: SimOrder) -> bool:
        """Whether a cancel fault knob's ``text`` picks the open equity ``order``."""
        return bool(text) and text in order.client_order_id and order.is_open and \
            order.asset_class != "us_option" and order.order_class != "mleg"

    def _resolve_pending(self) -> Events:
        """The held cancels, ``pending_cancel_bars`` bars on: each order fills at the last
        bar's close (its cancel reached the venue after it executed) or, with
        ``pending_cancel_fills`` off, is cancelled."""
        events: Events = []
        bar = self.last_bar
        for held in self._pending:
            held[2] -= 1
            if held[2] > 0:
                continue
            order, statuses, _ = held
            for part, status in statuses.items():
                part.status = status
            if self.pending_cancel_fills and bar is not None:
                events += self.matcher.force(order, bar.close, bar)
            else:
                events += self.book.close(order, "canceled", self.now)
        self._pending = [held for held in self._pending if held[2] > 0]
        return events

    def cancel_all(self) -> tuple[list[dict], Events]:
        """Cancel every open order: (207 body items, events)."""
        return self.book.cancel_all(self.now)

    def close_position(self, symbol: str, qty: float | None = None,
                       percentage: float | None = None) -> tuple[SimOrder, Events]:
        """A market order closing ``qty`` (or ``percentage``, or all) of a position."""
        pos = self.account.positions.get(symbol)
        if pos is None:
            raise not_found("position does not exist")
        size = abs(pos.qty)
        if qty is not None:
            size = qty
        elif percentage is not None:
            size = abs(pos.qty) * percentage / 100.0
            if pos.asset_class == "us_option":
                size = math.floor(size)
        if not size > 0:
            raise unprocessable("qty must be > 0")
        body = {"symbol": symbol, "qty": size, "side": "sell" if pos.qty > 0 else "buy",
                "type": "market", "time_in_force": "day"}
        if pos.asset_class == "us_option":
            body["position_intent"] = "sell_to_close" if pos.qty > 0 else "buy_to_close"
        return self.submit(body)

    def check_asset(self, symbol: str) -> None:
        """404 unless ``symbol`` is the underlying or one of its live options."""
        try:
            self.intake.check_symbol(symbol, self.now)
        except ApiError:
            raise not_found(f"asset not found for {symbol}") from None

    def _held(self) -> dict[str, float]:
        return {s: p.qty for s, p in self.account.positions.items()}

    # -- the bar -----------------------------------------------------------------------------
    def process_bar(self, bar: BarRow) -> Events:
        """Advance to ``bar``'s end: fill working orders against it in order of acceptance,
        expire day orders at the session close, settle expiring options."""
        self.now = bar.end
        day = naive_ny(bar.start).date()
        events = self._resolve_pending() + self.book.expire_day_orders(day - _DAY, self.now)
        for order in list(self.book.orders):
            if order.is_open:
                try:
                    events += self.matcher.work(order, bar)
                except (ApiError, ValueError) as exc:
                    log.warning("rejecting order %s: %s", order.id, exc)
                    events += self.book.reject(order, self.now)
        self.last_bar = bar
        if naive_ny(bar.end) >= self.sessions.close_of(day):
            events += self.book.expire_day_orders(day, self.now)
            self.account.settle(bar, day, self.now, self.options)
            self.account.last_equity = self.equity()
        return events

    # -- views -------------------------------------------------------------------------------
    def mark(self, symbol: str) -> float | None:
        """Per-share mark: the last close, or the chain mid at the last close for options."""
        bar = self.last_bar
        if bar is None:
            return None
        return self.options.mark(symbol, bar) if is_option(symbol) else bar.close

    def equity(self) -> float:
        return self.account.equity(self.mark)

    def account_json(self, account_id: str) -> dict[str, Any]:
        """The TradeAccount now."""
        long, short = self.account.market_values(self.mark)
        return account_json(account_id, self.account.cash, long, short,
                            self.account.last_equity)

    def position_json(self, symbol: str) -> dict[str, Any]:
        """The Position in ``symbol`` now (404 if flat)."""
        pos = self.account.positions.get(symbol)
        if pos is None:
            raise not_found("position does not exist")
        reserved = self.book.reserved(symbol, -1 if pos.qty > 0 else 1)
        return position_json(symbol, pos.qty, pos.avg_entry_price, pos.asset_class,
                             self.mark(symbol), self.account.available(pos, reserved),
                             self.account.multiplier_of(pos.asset_class))

    def positions_json(self) -> list[dict[str, Any]]:
        """Every open Position."""
        return [self.position_json(symbol) for symbol in self.account.positions]
