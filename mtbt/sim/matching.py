"""Matching: which working orders fill against a bar, and at what price.

Equity orders fill with :mod:`mtbt.fills` (backtrader's rules; an oco pair's stop before its
limit); option orders fill each leg at the synthetic chain's honest price at the bar's open,
exactly as ``BacktestBroker._fill_legs`` prices them (an mleg limit on the legs' net price,
a debit positive)."""
from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

from mtbt.fills import limit_fill, market_fill, stop_fill
from mtbt.sim.account import Account
from mtbt.sim.book import OrderBook
from mtbt.sim.events import trade_update
from mtbt.sim.market import BarRow, OptionMarket
from mtbt.sim.orders import SimOrder
from mtbt.sim.wire import num

__all__ = ["Matcher"]

_EPS = 1e-9     # option prices are whole cents; a sum of them is off by float noise only


class Matcher:
    """Works the open orders of ``book`` against bars, booking fills into ``account``.

    ``slippage``: fixed per-share slippage of equity fills; ``partial_fills``: each equity
    order fills in two executions (the fault knob); ``slip``: the ``slip_fill``-th equity
    order to fill fills that much worse per share (the fault knob; each such fill is listed
    in ``slipped``)."""

    def __init__(self, book: OrderBook, account: Account, options: OptionMarket,
                 slippage: float = 0.0, partial_fills: bool = False, slip: float = 0.0,
                 slip_fill: int = 1) -> None:
        self.book, self.account, self.options = book, account, options
        self.slippage, self.partial_fills = float(slippage), partial_fills
        self.slip, self.slip_fill = float(slip), int(slip_fill)
        self.equity_fills = 0
        self.slipped: list[dict[str, Any]] = []     # client id, rules' price, price filled
        self.forced: Callable[[str], bool] | None = None    # ``Simulator.force_fills``

    def work(self, order: SimOrder, bar: BarRow) -> list[dict[str, Any]]:
        """Fill the open top-level ``order`` against ``bar`` if it trades there; its events."""
        if self.forced is not None and order.asset_class != "us_option" and \
                order.order_class != "mleg" and self.forced(order.client_order_id):
            return self.force(order, bar.open, bar)
        if order.order_class == "mleg":
            return self._work_mleg(order, bar)
        if order.asset_class == "us_option":
            price = self.options.fill_price(order.symbol, order.sign, bar)
            if order.type == "limit" and order.sign * (price - order.limit_price) > _EPS:
                return []
            return [self._execute(order, order.remaining, price, bar)]
        if order.order_class == "oco":
            leg = order.legs[0]
            price = stop_fill(leg.sign, leg.stop_price, bar.ohlc, self.slippage)
            if price is not None:        # backtrader's order: the stop before the limit
                return self._fill_equity(leg, price, bar) + self.book.close(order, "canceled",
                                                                            bar.end)
            price = limit_fill(order.sign, order.limit_price, bar.ohlc, self.slippage)
            if price is not None:
                return self._fill_equity(order, price, bar) + self.book.close(
                    order, "canceled", bar.end)
            return []
        if order.type == "market":
            price = market_fill(order.sign, bar.ohlc, self.slippage)
        elif order.type == "limit":
            price = limit_fill(order.sign, order.limit_price, bar.ohlc, self.slippage)
        else:
            price = stop_fill(order.sign, order.stop_price, bar.ohlc, self.slippage)
        return [] if price is None else self._fill_equity(order, price, bar)

    def force(self, order: SimOrder, price: float, bar: BarRow) -> list[dict[str, Any]]:
        """Fill the open top-level equity ``order`` (an oco by its stop leg) at ``price`` in
        ``bar``, its own price reached or not; its events."""
        if order.order_class == "oco":
            return self._fill_equity(order.legs[0], price, bar) + self.book.close(
                order, "canceled", bar.end)
        return self._fill_equity(order, price, bar)

    def _execute(self, order: SimOrder, qty: float, price: float, bar: BarRow
                 ) -> dict[str, Any]:
        # fills happen inside the bar: stamped at its start (Alpaca's filled_at), sent at its end
        return self.account.execute(order, qty, price, at=bar.start, now=bar.end)

    def _fill_equity(self, order: SimOrder, price: float, bar: BarRow) -> list[dict[str, Any]]:
        qty = order.remaining
        self.equity_fills += 1
        if self.slip and self.equity_fills == self.slip_fill:
            slipped = round(price + order.sign * self.slip, 6)
            self.slipped.append({"client_order_id": order.client_order_id, "side": order.side,
                                 "price": price, "filled": slipped})
            price = slipped
        if self.partial_fills and qty > 1:
            first = max(1.0, math.floor(qty / 2))
            return [self._execute(order, first, price, bar),
                    self._execute(order, qty - first, price, bar)]
        return [self._execute(order, qty, price, bar)]

    def _work_mleg(self, order: SimOrder, bar: BarRow) -> list[dict[str, Any]]:
        prices = [self.options.fill_price(leg.symbol, leg.sign * int(leg.ratio_qty), bar)
                  for leg in order.legs]
        net = 0.0
        for leg, price in zip(order.legs, prices, strict=True):
            net += leg.sign * leg.ratio_qty * price
        if order.type == "limit" and net - order.limit_price > _EPS:    # net: debit > 0
            return []
        events = [self._execute(leg, leg.remaining, price, bar)
                  for leg, price in zip(order.legs, prices, strict=True)]
        order.status, order.filled_qty, order.filled_avg_price = "filled", order.qty, net
        order.filled_at, order.updated_at = bar.start, bar.end
        events.append(trade_update("fill", order, bar.end, execution_id=str(uuid.uuid4()),
                                   price=num(net), qty=num(order.qty), position_qty=None))
        return events
