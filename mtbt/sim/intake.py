"""Order requests turned into orders: ``POST /v2/orders`` bodies (simple, oco and mleg option
orders) and ``PATCH /v2/orders/{id}`` bodies (the replacing order), validated the way Alpaca
refuses them (422), limited to what the simulator can fill."""
from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import pandas as pd

from mtbt.sim.calendar import SessionBook, naive_ny
from mtbt.sim.errors import unprocessable
from mtbt.sim.market import is_option, parse_occ
from mtbt.sim.orders import SimOrder

__all__ = ["Intake"]

#: the price fields each order type takes (a PATCH may change only those)
_PRICES = {"market": (), "limit": ("limit_price",), "stop": ("stop_price",)}


def _number(body: dict, key: str, required: bool = False) -> float | None:
    value = body.get(key)
    if value is None:
        if required:
            raise unprocessable(f"{key} is required")
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise unprocessable(f"invalid {key}: {value!r}") from None
    if not math.isfinite(out):
        raise unprocessable(f"invalid {key}: {value!r}")
    return out


def _check_body(body: Any) -> dict:
    if not isinstance(body, dict):
        raise unprocessable("request body must be a JSON object")
    return body


class Intake:
    """Validates order requests for ``symbol`` and its OCC options."""

    def __init__(self, symbol: str, sessions: SessionBook) -> None:
        self.symbol, self.sessions = symbol, sessions

    @staticmethod
    def client_id(body: Any) -> str:
        """The request's client_order_id, or a fresh UUID when it has none (422 if bad)."""
        cid = _check_body(body).get("client_order_id") or str(uuid.uuid4())
        if not isinstance(cid, str) or len(cid) > 128:
            raise unprocessable("client_order_id must be a string of at most 128 characters")
        return cid

    # -- POST /v2/orders ---------------------------------------------------------------------
    def order(self, body: Any, cid: str, now: pd.Timestamp) -> SimOrder:
        """The order a ``POST /v2/orders`` body asks for, accepted ``now`` (422 if refused)."""
        body = _check_body(body)
        order_class = body.get("order_class") or "simple"
        if order_class not in ("simple", "oco", "mleg"):
            raise unprocessable(f"order_class {order_class} is not supported by the simulator")
        if body.get("notional") is not None:
            raise unprocessable("notional orders are not supported by the simulator")
        if body.get("extended_hours"):
            raise unprocessable("extended hours orders are not supported by the simulator")
        qty = _number(body, "qty", required=True)
        if qty <= 0:
            raise unprocessable("qty must be > 0")
        tif = body.get("time_in_force")
        if tif not in ("day", "gtc"):
            raise unprocessable(f"time_in_force {tif} is not supported by the simulator")
        otype = body.get("type")
        if order_class == "mleg":
            return self._mleg(body, cid, qty, tif, otype, now)
        return self._single(body, cid, qty, tif, otype, order_class, now)

    def _base(self, cid: str, symbol: str, side: str, otype: str, tif: str, qty: float,
              now: pd.Timestamp, **extra: Any) -> SimOrder:
        return SimOrder(id=str(uuid.uuid4()), client_order_id=cid, symbol=symbol,
                        asset_class="us_option" if is_option(symbol) else "us_equity",
                        side=side, type=otype, time_in_force=tif, qty=qty, created_at=now,
                        updated_at=now, session=self.session(now), **extra)

    def session(self, now: pd.Timestamp) -> dt.date:
        """The session an order accepted ``now`` belongs to (the current or the next)."""
        return self.sessions.next_after(naive_ny(now)).date

    def check_symbol(self, symbol: Any, now: pd.Timestamp) -> bool:
        """True for a live option on the underlying, False for the underlying; else 422."""
        if symbol == self.symbol:
            return False
        if isinstance(symbol, str) and is_option(symbol):
            root, expiry = parse_occ(symbol)[:2]
            if root == self.symbol:
                if expiry < self.session(now):
                    raise unprocessable(f"option contract {symbol} has expired")
                return True
        raise unprocessable(f"asset {symbol} not found")

    def _single(self, body: dict, cid: str, qty: float, tif: str, otype: Any,
                order_class: str, now: pd.Timestamp) -> SimOrder:
        symbol, side = body.get("symbol"), body.get("side")
        option = self.check_symbol(symbol, now)
        if side not in ("buy", "sell"):
            raise unprocessable(f"invalid side {side!r}")
        if option and not qty.is_integer():
            raise unprocessable("qty must be a whole number of option contracts")
        limit = _number(body, "limit_price")
        stop = _number(body, "stop_price")
        if order_class == "oco":
            if otype != "limit" or option:
                raise unprocessable("oco orders must be equity limit orders")
            take = body.get("take_profit") or {}
            loss = body.get("stop_loss") or {}
            tp = _number(take, "limit_price", required=True)
            sp = _number(loss, "stop_price", required=True)
            if loss.get("limit_price") is not None:
                raise unprocessable("stop_loss.limit_price is not supported by the simulator")
            parent = self._base(cid, symbol, side, "limit", tif, qty, now, order_class="oco",
                                limit_price=tp)
            leg = self._base(str(uuid.uuid4()), symbol, side, "stop", tif, qty, now,
                             order_class="oco", stop_price=sp)
            leg.parent, parent.legs = parent, [leg]
            return parent
        allowed = ("market", "limit") if option else ("market", "limit", "stop")
        if otype not in allowed:
            raise unprocessable(f"order type {otype} is not supported by the simulator")
        if otype == "market" and (limit is not None or stop is not None):
            raise unprocessable("market orders take no limit_price or stop_price")
        if otype == "limit" and (limit is None or stop is not None):
            raise unprocessable("limit orders need limit_price (and no stop_price)")
        if otype == "stop" and (stop is None or limit is not None):
            raise unprocessable("stop orders need stop_price (and no limit_price)")
        if limit is not None and limit <= 0 or stop is not None and stop <= 0:
            raise unprocessable("prices must be > 0")
        return self._base(cid, symbol, side, otype, tif, qty, now, limit_price=limit,
                          stop_price=stop, position_intent=body.get("position_intent"))

    def _mleg(self, body: dict, cid: str, qty: float, tif: str, otype: Any,
              now: pd.Timestamp) -> SimOrder:
        """A multi-leg option order: a parent (no symbol or side) with 2 to 4 option legs of
        ``ratio_qty`` x ``qty`` contracts each."""
        if otype not in ("market", "limit"):
            raise unprocessable("mleg orders must be market or limit orders")
        if not qty.is_integer():
            raise unprocessable("qty must be a whole number of option contracts")
        limit = _number(body, "limit_price")
        if (otype == "limit") != (limit is not None):
            raise unprocessable("limit_price goes with (only) limit mleg orders")
        raw = body.get("legs")
        if not isinstance(raw, list) or not 2 <= len(raw) <= 4:
            raise unprocessable("mleg orders need 2 to 4 legs")
        parent = self._base(cid, "", "", otype, tif, qty, now, order_class="mleg",
                            limit_price=limit)
        parent.asset_class = ""
        seen: set[str] = set()
        for item in raw:
            if not isinstance(item, dict):
                raise unprocessable("each leg must be an object")
            symbol, intent = item.get("symbol"), item.get("position_intent")
            if not self.check_symbol(symbol, now):
                raise unprocessable(f"mleg legs must be options, got {symbol}")
            if symbol in seen:
                raise unprocessable("mleg leg symbols must be unique")
            seen.add(symbol)
            side = item.get("side") or (intent.split("_")[0] if isinstance(intent, str)
                                        else None)
            if side not in ("buy", "sell"):
                raise unprocessable(f"invalid leg side {side!r}")
            ratio = _number(item, "ratio_qty") or 1.0
            if ratio <= 0 or not ratio.is_integer():
                raise unprocessable("ratio_qty must be a positive whole number")
            leg = self._base(str(uuid.uuid4()), symbol, side, otype, tif, ratio * qty, now,
                             order_class="mleg", position_intent=intent, ratio_qty=ratio)
            leg.parent = parent
            parent.legs.append(leg)
        return parent

    # -- PATCH /v2/orders/{id} ---------------------------------------------------------------
    def replacement(self, old: SimOrder, body: Any, cid: str, now: pd.Timestamp) -> SimOrder:
        """The order that replaces the open order ``old``: ``old``'s attributes with those the
        PATCH ``body`` gives (qty, time_in_force, limit_price, stop_price, trail) overriding
        them, accepted ``now`` with nothing filled. 422 when a price field does not fit the
        order type, when nothing changes, or (the simulator's limits) for an mleg leg and for
        the qty or time in force of an oco order's two parts."""
        body = _check_body(body)
        if old.parent is not None and old.parent.order_class == "mleg":
            raise unprocessable("the legs of an mleg order cannot be replaced by the "
                                "simulator (replace the mleg order)")
        for key in ("limit_price", "stop_price", "trail"):
            if body.get(key) is not None and key not in _PRICES.get(old.type, ()):
                raise unprocessable(f"{old.type} orders must not have {key}")
        qty, limit, stop = (_number(body, k) for k in ("qty", "limit_price", "stop_price"))
        tif = body.get("time_in_force")
        changes = {k: v for k, v in (("qty", qty), ("time_in_force", tif),
                                     ("limit_price", limit), ("stop_price", stop))
                   if v is not None and v != getattr(old, k)}
        if not changes:
            raise unprocessable("order parameters are not changed")
        if old.order_class == "oco" and ({"qty", "time_in_force"} & set(changes)):
            raise unprocessable("the qty and time_in_force of an oco order cannot be replaced "
                                "by the simulator (only its prices)")
        qty = old.qty if qty is None else qty
        if qty <= 0:
            raise unprocessable("qty must be > 0")
        tif = old.time_in_force if tif is None else tif
        if tif not in ("day", "gtc"):
            raise unprocessable(f"time_in_force {tif} is not supported by the simulator")
        limit = old.limit_price if limit is None else limit
        stop = old.stop_price if stop is None else stop
        if old.order_class == "mleg":
            legs = [{"symbol": leg.symbol, "ratio_qty": leg.ratio_qty, "side": leg.side,
                     "position_intent": leg.position_intent} for leg in old.legs]
            return self._mleg({"limit_price": limit, "legs": legs}, cid, qty, tif, old.type,
                              now)
        new = self._single({"symbol": old.symbol, "side": old.side, "limit_price": limit,
                            "stop_price": stop, "position_intent": old.position_intent},
                           cid, qty, tif, old.type, "simple", now)
        new.order_class = old.order_class
        return new
