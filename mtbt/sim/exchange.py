"""The simulated account: orders, positions, cash and the fill engine (pure Python, no I/O).

Every state change returns the trade_updates events it causes (``{"event", "order",
"timestamp", ...}`` dicts, the ``data`` of Alpaca's stream messages) for the caller to
deliver. Equity orders fill with :mod:`mtbt.fills` (backtrader's rules); option orders fill
each leg at the synthetic chain's honest price at the bar's open, exactly as
``BacktestBroker._fill_legs`` prices them, and pay ``fee_per_contract`` per contract.
Callers serialise access (the simulator holds one lock around every call).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pandas as pd

from mtbt.fills import limit_fill, market_fill, stop_fill
from mtbt.options import occ
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.occ import OCC
from mtbt.options.pricing import intrinsic
from mtbt.sim.calendar import SessionBook, naive_ny
from mtbt.sim.wire import asset_id, iso, num, order_json

__all__ = ["ApiError", "BarRow", "Exchange", "Execution", "Position", "SimOrder"]

log = logging.getLogger(__name__)

OPEN_STATUSES = frozenset({"new", "partially_filled", "accepted", "pending_new", "held"})
_MINUTE = dt.timedelta(minutes=1)
_EPS = 1e-9     # option prices are whole cents; a sum of them is off by float noise only


class ApiError(Exception):
    """An Alpaca-shaped error answer: HTTP ``status`` with body ``{"code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, 42210000, message)


class BarRow(NamedTuple):
    """One 1-minute bar; ``start`` is tz-aware (America/New_York)."""

    start: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float
    vix: float

    @property
    def end(self) -> pd.Timestamp:
        return self.start + _MINUTE

    @property
    def ohlc(self) -> tuple[float, float, float, float]:
        return (self.open, self.high, self.low, self.close)


@dataclass(eq=False)
class SimOrder:
    """An accepted order (or a leg of one)."""

    id: str
    client_order_id: str
    symbol: str
    asset_class: str
    side: str
    type: str
    time_in_force: str
    qty: float
    created_at: pd.Timestamp
    session: dt.date
    order_class: str = "simple"
    limit_price: float | None = None
    stop_price: float | None = None
    position_intent: str | None = None
    ratio_qty: float | None = None
    status: str = "new"
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    updated_at: pd.Timestamp | None = None
    filled_at: pd.Timestamp | None = None
    canceled_at: pd.Timestamp | None = None
    expired_at: pd.Timestamp | None = None
    failed_at: pd.Timestamp | None = None
    legs: list[SimOrder] = field(default_factory=list)
    parent: SimOrder | None = field(default=None, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> float:
        return self.qty - self.filled_qty

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1

    def json(self, nested: bool = True) -> dict[str, Any]:
        return order_json(self, nested)


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


def parse_occ(symbol: str) -> tuple[str, dt.date, str, float]:
    """(root, expiry, right "C"/"P", strike) of an OCC option symbol (422 if it is not one)."""
    parsed = occ.parse_occ(symbol)
    if parsed is None:
        raise _unprocessable(f"invalid option symbol {symbol}")
    return parsed


def _number(body: dict, key: str, required: bool = False) -> float | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _unprocessable(f"{key} is required")
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _unprocessable(f"invalid {key}: {value!r}") from None
    if not math.isfinite(out):
        raise _unprocessable(f"invalid {key}: {value!r}")
    return out


class Exchange:
    """Account state and matching for one underlying ``symbol`` and its options."""

    def __init__(self, symbol: str, cash: float, slippage: float, chain_model: ChainModel,
                 book: SessionBook, now: pd.Timestamp, partial_fills: bool = False) -> None:
        self.symbol, self.cash, self.slippage = symbol, float(cash), float(slippage)
        self.chain_model, self.book, self.now = chain_model, book, now
        self.fill_time = now
        self.partial_fills = partial_fills
        self.positions: dict[str, Position] = {}
        self.orders: list[SimOrder] = []              # top-level, in order of acceptance
        self.by_id: dict[str, SimOrder] = {}          # legs included
        self.by_client: dict[str, SimOrder] = {}
        self.executions: list[Execution] = []
        self.settlements: list[dict[str, Any]] = []
        self.last_bar: BarRow | None = None
        self.last_equity = float(cash)

    # -- orders ------------------------------------------------------------------------------
    def submit(self, body: Any) -> tuple[SimOrder, list[dict]]:
        """Validate and accept a ``POST /v2/orders`` body; the order and its ``new`` events."""
        if not isinstance(body, dict):
            raise _unprocessable("request body must be a JSON object")
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if not isinstance(cid, str) or len(cid) > 128:
            raise _unprocessable("client_order_id must be a string of at most 128 characters")
        if cid in self.by_client:
            raise _unprocessable("client_order_id must be unique")
        order_class = body.get("order_class") or "simple"
        if order_class not in ("simple", "oco", "mleg"):
            raise _unprocessable(f"order_class {order_class} is not supported by the simulator")
        if body.get("notional") is not None:
            raise _unprocessable("notional orders are not supported by the simulator")
        if body.get("extended_hours"):
            raise _unprocessable("extended hours orders are not supported by the simulator")
        qty = _number(body, "qty", required=True)
        if qty <= 0:
            raise _unprocessable("qty must be > 0")
        tif = body.get("time_in_force")
        if tif not in ("day", "gtc"):
            raise _unprocessable(f"time_in_force {tif} is not supported by the simulator")
        otype = body.get("type")
        if order_class == "mleg":
            order = self._mleg(body, cid, qty, tif, otype)
        else:
            order = self._single(body, cid, qty, tif, otype, order_class)
        self._check_available(order)
        self._register(order)
        return order, [self._event("new", order)]

    def _base(self, cid: str, symbol: str, side: str, otype: str, tif: str, qty: float,
              **extra: Any) -> SimOrder:
        option = bool(OCC.match(symbol))
        return SimOrder(id=str(uuid.uuid4()), client_order_id=cid, symbol=symbol,
                        asset_class="us_option" if option else "us_equity", side=side,
                        type=otype, time_in_force=tif, qty=qty, created_at=self.now,
                        updated_at=self.now, session=self._session(), **extra)

    def _session(self) -> dt.date:
        return self.book.next_after(naive_ny(self.now)).date

    def _check_symbol(self, symbol: Any) -> bool:
        """True for an option on the underlying, False for the underlying; else 422."""
        if symbol == self.symbol:
            return False
        if isinstance(symbol, str) and OCC.match(symbol):
            root, expiry = parse_occ(symbol)[:2]
            if root == self.symbol:
                if expiry < self._session():
                    raise _unprocessable(f"option contract {symbol} has expired")
                return True
        raise _unprocessable(f"asset {symbol} not found")

    def _single(self, body: dict, cid: str, qty: float, tif: str, otype: Any,
                order_class: str) -> SimOrder:
        symbol, side = body.get("symbol"), body.get("side")
        option = self._check_symbol(symbol)
        if side not in ("buy", "sell"):
            raise _unprocessable(f"invalid side {side!r}")
        if option and not qty.is_integer():
            raise _unprocessable("qty must be a whole number of option contracts")
        limit = _number(body, "limit_price")
        stop = _number(body, "stop_price")
        if order_class == "oco":
            if otype != "limit" or option:
                raise _unprocessable("oco orders must be equity limit orders")
            take = body.get("take_profit") or {}
            loss = body.get("stop_loss") or {}
            tp = _number(take, "limit_price", required=True)
            sp = _number(loss, "stop_price", required=True)
            if loss.get("limit_price") is not None:
                raise _unprocessable("stop_loss.limit_price is not supported by the simulator")
            parent = self._base(cid, symbol, side, "limit", tif, qty, order_class="oco",
                                limit_price=tp)
            leg = self._base(str(uuid.uuid4()), symbol, side, "stop", tif, qty,
                             order_class="oco", stop_price=sp)
            leg.parent, parent.legs = parent, [leg]
            return parent
        allowed = ("market", "limit") if option else ("market", "limit", "stop")
        if otype not in allowed:
            raise _unprocessable(f"order type {otype} is not supported by the simulator")
        if otype == "market" and (limit is not None or stop is not None):
            raise _unprocessable("market orders take no limit_price or stop_price")
        if otype == "limit" and (limit is None or stop is not None):
            raise _unprocessable("limit orders need limit_price (and no stop_price)")
        if otype == "stop" and (stop is None or limit is not None):
            raise _unprocessable("stop orders need stop_price (and no limit_price)")
        if limit is not None and limit <= 0 or stop is not None and stop <= 0:
            raise _unprocessable("prices must be > 0")
        return self._base(cid, symbol, side, otype, tif, qty, limit_price=limit,
                          stop_price=stop, position_intent=body.get("position_intent"))

    def _mleg(self, body: dict, cid: str, qty: float, tif: str, otype: Any) -> SimOrder:
        if otype not in ("market", "limit"):
            raise _unprocessable("mleg orders must be market or limit orders")
        if not qty.is_integer():
            raise _unprocessable("qty must be a whole number of option contracts")
        limit = _number(body, "limit_price")
        if (otype == "limit") != (limit is not None):
            raise _unprocessable("limit_price goes with (only) limit mleg orders")
        raw = body.get("legs")
        if not isinstance(raw, list) or not 2 <= len(raw) <= 4:
            raise _unprocessable("mleg orders need 2 to 4 legs")
        parent = self._base(cid, "", "", otype, tif, qty, order_class="mleg",
                            limit_price=limit)
        parent.asset_class = ""
        seen: set[str] = set()
        for item in raw:
            if not isinstance(item, dict):
                raise _unprocessable("each leg must be an object")
            symbol, intent = item.get("symbol"), item.get("position_intent")
            if not self._check_symbol(symbol):
                raise _unprocessable(f"mleg legs must be options, got {symbol}")
            if symbol in seen:
                raise _unprocessable("mleg leg symbols must be unique")
            seen.add(symbol)
            side = item.get("side") or (intent.split("_")[0] if isinstance(intent, str)
                                        else None)
            if side not in ("buy", "sell"):
                raise _unprocessable(f"invalid leg side {side!r}")
            ratio = _number(item, "ratio_qty") or 1.0
            if ratio <= 0 or not ratio.is_integer():
                raise _unprocessable("ratio_qty must be a positive whole number")
            leg = self._base(str(uuid.uuid4()), symbol, side, otype, tif, ratio * qty,
                             order_class="mleg", position_intent=intent, ratio_qty=ratio)
            leg.parent = parent
            parent.legs.append(leg)
        return parent

    def _register(self, order: SimOrder) -> None:
        self.orders.append(order)
        self.by_client[order.client_order_id] = order
        self.by_id[order.id] = order
        for leg in order.legs:
            self.by_id[leg.id] = leg

    def _working(self) -> list[SimOrder]:
        """Open orders that hold position qty: simple ones, oco parents, mleg legs."""
        out = []
        for order in self.orders:
            if not order.is_open:
                continue
            out.extend(order.legs if order.order_class == "mleg" else [order])
        return out

    def _check_available(self, order: SimOrder) -> None:
        """Alpaca's qty_available rule for orders that reduce a position."""
        parts = order.legs if order.order_class == "mleg" else [order]
        for part in parts:
            pos = self.positions.get(part.symbol)
            held_now = pos.qty if pos else 0.0
            if held_now == 0 or (held_now > 0) == (part.sign > 0):
                continue
            reserved = sum(o.remaining for o in self._working()
                           if o.symbol == part.symbol and o.sign == part.sign)
            available = max(abs(held_now) - reserved, 0.0)
            if part.qty > available:
                raise ApiError(403, 40310000, "insufficient qty available for order "
                               f"(requested: {num(part.qty)}, available: {num(available)})")

    def find(self, order_id: str) -> SimOrder:
        order = self.by_id.get(order_id)
        if order is None:
            raise ApiError(404, 40410000, f"order not found for {order_id}")
        return order

    def cancel(self, order_id: str) -> list[dict]:
        """Cancel an open order (the whole oco pair or mleg); 422 if it is no longer open."""
        order = self.find(order_id)
        top = order.parent or order
        if not top.is_open:
            raise _unprocessable(f'order is already in "{order.status}" state')
        return self._cancel_tree(top)

    def _cancel_tree(self, top: SimOrder, event: str = "canceled") -> list[dict]:
        events = []
        for part in [*top.legs, top]:
            if part.is_open:
                part.status = event
                part.updated_at = self.now
                if event == "canceled":
                    part.canceled_at = self.now
                else:
                    part.expired_at = self.now
                if part is top or top.order_class == "oco":
                    events.append(self._event(event, part))
        return events

    def cancel_all(self) -> tuple[list[dict], list[dict]]:
        """Cancel every open order: (207 body items, events)."""
        items, events = [], []
        for order in self.orders:
            if order.is_open:
                events += self._cancel_tree(order)
                items.append({"id": order.id, "status": 200})
        return items, events

    def close_position(self, symbol: str, qty: float | None = None,
                       percentage: float | None = None) -> tuple[SimOrder, list[dict]]:
        """A market order closing ``qty`` (or ``percentage``, or all) of a position."""
        pos = self.positions.get(symbol)
        if pos is None:
            raise ApiError(404, 40410000, "position does not exist")
        size = abs(pos.qty)
        if qty is not None:
            size = qty
        elif percentage is not None:
            size = abs(pos.qty) * percentage / 100.0
            if pos.asset_class == "us_option":
                size = math.floor(size)
        if not size > 0:
            raise _unprocessable("qty must be > 0")
        body = {"symbol": symbol, "qty": size, "side": "sell" if pos.qty > 0 else "buy",
                "type": "market", "time_in_force": "day"}
        if pos.asset_class == "us_option":
            body["position_intent"] = "sell_to_close" if pos.qty > 0 else "buy_to_close"
        return self.submit(body)

    # -- the bar -----------------------------------------------------------------------------
    def process_bar(self, bar: BarRow) -> list[dict]:
        """Advance to ``bar``'s end: fill working orders against it in order of acceptance,
        expire day orders at the session close, settle expiring options."""
        self.now = bar.end
        self.fill_time = bar.start      # fills happen inside the bar: stamped at its start
        events: list[dict] = []
        day = naive_ny(bar.start).date()
        for order in self.orders:
            if order.is_open and order.time_in_force == "day" and order.session < day:
                events += self._cancel_tree(order, "expired")
        for order in list(self.orders):
            if order.is_open:
                try:
                    events += self._work(order, bar)
                except (ApiError, ValueError) as exc:
                    log.warning("rejecting order %s: %s", order.id, exc)
                    events += self._reject(order)
        self.last_bar = bar
        close = self.book.close_of(day)
        if naive_ny(bar.end) >= close:
            for order in self.orders:
                if order.is_open and order.time_in_force == "day" and order.session <= day:
                    events += self._cancel_tree(order, "expired")
            self._settle(bar, day)
            self.last_equity = self.equity()
        return events

    def _reject(self, order: SimOrder) -> list[dict]:
        for part in [*order.legs, order]:
            part.status, part.failed_at, part.updated_at = "rejected", self.now, self.now
        return [self._event("rejected", order)]

    def _work(self, order: SimOrder, bar: BarRow) -> list[dict]:
        if order.order_class == "mleg":
            return self._work_mleg(order, bar)
        if order.asset_class == "us_option":
            price = self._chain(bar, parse_occ(order.symbol)[1]).fill(
                parse_occ(order.symbol)[2], parse_occ(order.symbol)[3], order.sign)
            if order.type == "limit" and order.sign * (price - order.limit_price) > _EPS:
                return []
            return self._execute(order, order.remaining, price)
        if order.order_class == "oco":
            leg = order.legs[0]
            price = stop_fill(leg.sign, leg.stop_price, bar.ohlc, self.slippage)
            if price is not None:        # backtrader's order: the stop before the limit
                return self._fill_equity(leg, price) + self._cancel_tree(order)
            price = limit_fill(order.sign, order.limit_price, bar.ohlc, self.slippage)
            if price is not None:
                return self._fill_equity(order, price) + self._cancel_tree(order)
            return []
        if order.type == "market":
            price = market_fill(order.sign, bar.ohlc, self.slippage)
        elif order.type == "limit":
            price = limit_fill(order.sign, order.limit_price, bar.ohlc, self.slippage)
        else:
            price = stop_fill(order.sign, order.stop_price, bar.ohlc, self.slippage)
        return [] if price is None else self._fill_equity(order, price)

    def _fill_equity(self, order: SimOrder, price: float) -> list[dict]:
        qty = order.remaining
        if self.partial_fills and qty > 1:
            first = max(1.0, math.floor(qty / 2))
            return self._execute(order, first, price) + self._execute(order, qty - first, price)
        return self._execute(order, qty, price)

    def _chain(self, bar: BarRow, expiry: dt.date) -> SyntheticChain:
        """The chain as BacktestBroker builds it at this bar's open."""
        return SyntheticChain(self.chain_model, bar.open, bar.vix, naive_ny(bar.start),
                              self.book.close_of(expiry))

    def _work_mleg(self, order: SimOrder, bar: BarRow) -> list[dict]:
        prices = []
        for leg in order.legs:
            _, expiry, right, strike = parse_occ(leg.symbol)
            trade_qty = leg.sign * int(leg.ratio_qty)
            prices.append(self._chain(bar, expiry).fill(right, strike, trade_qty))
        net = 0.0
        for leg, price in zip(order.legs, prices, strict=True):
            net += leg.sign * leg.ratio_qty * price
        if order.type == "limit" and net - order.limit_price > _EPS:    # net: debit > 0
            return []
        events = []
        for leg, price in zip(order.legs, prices, strict=True):
            events += self._execute(leg, leg.remaining, price)
        order.status, order.filled_qty, order.filled_avg_price = "filled", order.qty, net
        order.filled_at, order.updated_at = self.fill_time, self.now
        events.append(self._event("fill", order, execution_id=str(uuid.uuid4()),
                                  price=num(net), qty=num(order.qty), position_qty=None))
        return events

    def _execute(self, order: SimOrder, qty: float, price: float) -> list[dict]:
        """Book one execution of ``qty`` at ``price``: cash, position, order, record, event."""
        option = order.asset_class == "us_option"
        mult = self.chain_model.multiplier if option else 1
        self._move(order.symbol, order.sign * qty, price, mult, order.asset_class)
        if option:
            self.cash -= self.chain_model.fee_per_contract * qty
        done = order.filled_qty
        order.filled_avg_price = price if not done else (
            (order.filled_avg_price * done + price * qty) / (done + qty))
        order.filled_qty = done + qty
        order.updated_at = self.now
        if order.remaining <= 1e-9:
            order.status, order.filled_at, event = "filled", self.fill_time, "fill"
        else:
            order.status, event = "partially_filled", "partial_fill"
        execution = Execution(str(uuid.uuid4()), order.id, order.client_order_id, order.symbol,
                              order.side, qty, price, self.fill_time)
        self.executions.append(execution)
        pos = self.positions.get(order.symbol)
        return [self._event(event, order, execution_id=execution.execution_id,
                            price=num(price), qty=num(qty),
                            position_qty=num(pos.qty if pos else 0.0))]

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

    def _settle(self, bar: BarRow, day: dt.date) -> None:
        """Cash-settle option positions expiring today at intrinsic value on the close."""
        for symbol, pos in list(self.positions.items()):
            if pos.asset_class != "us_option":
                continue
            _, expiry, right, strike = parse_occ(symbol)
            if expiry > day:
                continue
            value = float(intrinsic(bar.close, strike, right))
            self.cash += value * self.chain_model.multiplier * pos.qty
            del self.positions[symbol]
            record = {"symbol": symbol, "qty": pos.qty, "value": value, "spot": bar.close,
                      "time": self.now}
            self.settlements.append(record)
            log.info("settled %s x%g at intrinsic %.2f (spot %.2f)", symbol, pos.qty, value,
                     bar.close)

    # -- views -------------------------------------------------------------------------------
    def mark(self, symbol: str) -> float | None:
        """Per-share mark: the last close, or the chain mid at the last close for options."""
        bar = self.last_bar
        if bar is None:
            return None
        if not OCC.match(symbol):
            return bar.close
        _, expiry, right, strike = parse_occ(symbol)
        chain = SyntheticChain(self.chain_model, bar.close, bar.vix, naive_ny(bar.end),
                               self.book.close_of(expiry))
        return float(chain.mid(right, strike))

    def position_json(self, pos: Position) -> dict[str, Any]:
        option = pos.asset_class == "us_option"
        mult = self.chain_model.multiplier if option else 1
        mark = self.mark(pos.symbol)
        price = pos.avg_entry_price if mark is None else mark
        cost = pos.qty * pos.avg_entry_price * mult
        value = pos.qty * price * mult
        return {"asset_id": asset_id(pos.symbol), "symbol": pos.symbol,
                "exchange": "" if option else "ARCA", "asset_class": pos.asset_class,
                "asset_marginable": not option, "avg_entry_price": num(pos.avg_entry_price),
                "qty": num(pos.qty), "qty_available": num(self._available(pos)),
                "side": "long" if pos.qty > 0 else "short", "market_value": num(value),
                "cost_basis": num(cost), "unrealized_pl": num(value - cost),
                "unrealized_plpc": num((value - cost) / abs(cost) if cost else 0.0),
                "unrealized_intraday_pl": num(value - cost),
                "unrealized_intraday_plpc": num((value - cost) / abs(cost) if cost else 0.0),
                "current_price": num(price), "lastday_price": num(price),
                "change_today": "0"}

    def _available(self, pos: Position) -> float:
        sign = -1 if pos.qty > 0 else 1
        reserved = sum(o.remaining for o in self._working()
                       if o.symbol == pos.symbol and o.sign == sign)
        return math.copysign(max(abs(pos.qty) - reserved, 0.0), pos.qty)

    def market_values(self) -> tuple[float, float]:
        """(long, short) market value of all positions."""
        long = short = 0.0
        for pos in self.positions.values():
            mult = self.chain_model.multiplier if pos.asset_class == "us_option" else 1
            mark = self.mark(pos.symbol)
            value = pos.qty * (pos.avg_entry_price if mark is None else mark) * mult
            if value >= 0:
                long += value
            else:
                short += value
        return long, short

    def equity(self) -> float:
        long, short = self.market_values()
        return self.cash + long + short

    def account_json(self, account_id: str) -> dict[str, Any]:
        long, short = self.market_values()
        equity = self.cash + long + short
        gross = long - short
        power = max(4 * equity - gross, 0.0)
        return {"id": account_id, "account_number": "SIM000001", "status": "ACTIVE",
                "crypto_status": "INACTIVE", "currency": "USD", "cash": num(self.cash),
                "portfolio_value": num(equity), "equity": num(equity),
                "last_equity": num(self.last_equity), "long_market_value": num(long),
                "short_market_value": num(short), "buying_power": num(power),
                "regt_buying_power": num(max(2 * equity - gross, 0.0)),
                "daytrading_buying_power": num(power),
                "non_marginable_buying_power": num(max(self.cash, 0.0)),
                "options_buying_power": num(max(self.cash, 0.0)),
                "initial_margin": num(gross / 2), "maintenance_margin": num(gross / 4),
                "sma": "0", "multiplier": "4", "daytrade_count": 0,
                "pattern_day_trader": False, "trading_blocked": False,
                "transfers_blocked": False, "account_blocked": False,
                "trade_suspended_by_user": False, "shorting_enabled": True,
                "options_approved_level": 3, "options_trading_level": 3,
                "created_at": "2020-01-01T00:00:00Z", "accrued_fees": "0",
                "pending_transfer_in": "0"}

    def _event(self, event: str, order: SimOrder, **extra: Any) -> dict[str, Any]:
        data: dict[str, Any] = {"event": event, "timestamp": iso(self.now),
                                "order": order.json()}
        data.update({k: v for k, v in extra.items() if v is not None})
        return data
