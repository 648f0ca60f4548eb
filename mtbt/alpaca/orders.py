"""What an mtbt order looks like on Alpaca: client ids, order specs and alpaca-py requests.

A *spec* is the JSON-able description of one Alpaca order (recorded in the state file before
it is sent, and turned into an alpaca-py request here):

- ``{"kind": "market" | "limit" | "stop" | "trailing_stop", "symbol", "side", "qty",
  "limit_price"?, "stop_price"?, "trail_price" | "trail_percent"?}``: a simple equity order;
- ``{"kind": "oco", ..., "limit_price", "stop_price"}``: Alpaca's one-cancels-other pair (a
  take-profit limit, the parent, and a stop, its leg) for the same quantity;
- ``{"kind": "mleg", "qty", "legs": [{"symbol", "ratio_qty", "side", "position_intent"}]}``:
  an option structure as one multi-leg market order; a one-leg structure is
  ``{"kind": "option", "symbol", "side", "qty", "position_intent", "legs"}``. A structure's
  close with a limit (``StructureOrder.limit``, the least premium per share it may get) adds
  ``"limit_price"`` (Alpaca's price, see ``structure_limit_price``) and ``"structure_limit"``
  (mtbt's own, to rebuild the order after a restart): a limit order.
"""
from __future__ import annotations

import datetime as dt
import math
import warnings

from mtbt.options.occ import occ_symbol

with warnings.catch_warnings():     # alpaca-py 0.44 imports websockets.legacy
    warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
    from alpaca.trading.enums import OrderClass, OrderSide, PositionIntent, TimeInForce
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        OptionLegRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
        TrailingStopOrderRequest,
    )

def client_order_id(day: dt.date, seq: int, trade_id: int | None, role: str) -> str:
    """``mtbt-YYYYMMDD-SEQ-tTRADE-ROLE``: unique per day and sequence, readable in Alpaca's
    dashboard, and the same on every retry of one submit."""
    trade = "x" if trade_id is None else str(trade_id)
    return f"mtbt-{day:%Y%m%d}-{seq:04d}-t{trade}-{role}"


def structure_spec(root: str, structure, contracts: int, kind: str,
                   limit: float | None = None) -> dict:
    """The spec that opens (``kind`` "open") or closes a structure: one multi-leg order, or
    a simple option order for a one-leg structure (Alpaca's mleg needs 2 to 4 legs); a
    market order, or with ``limit`` (closes only) a limit order."""
    spec = _structure_spec(root, structure, contracts, kind)
    if limit is None:
        return spec
    if kind != "close":
        raise ValueError("a structure limit is the least premium a close gets")
    price = structure_limit_price(structure, limit)
    if price <= 0 and spec["kind"] == "option" and spec["side"] == "sell":
        return spec          # any bid reaches it, and Alpaca takes no price <= 0: market
    return spec | {"limit_price": price, "structure_limit": limit}


def structure_limit_price(structure, limit: float) -> float:
    """Alpaca's limit price for closing ``structure`` at a premium of at least ``limit``
    per share (``StructureOrder``'s convention: the structure's signed value, what a close
    gets; a condor's close is negative, it costs money).

    - **mleg**: the order's *net* price per unit, a debit positive and a credit negative:
      the simulator's convention (``mtbt.sim.matching.Matcher._work_mleg``: net = sum of
      sign x ratio x leg price, buys positive; it fills when net <= limit_price). Closing gets
      ``premium = -net``, so ``premium >= limit`` is ``net <= -limit``. shared/reference/
      alpaca_wire.md gives the field and a debit spread's example (+1.25) but not the sign
      rule; Alpaca's own MCP server describes it the same way (positive = debit, negative =
      credit). Not confirmed against a live Alpaca account.
    - **one leg** of ``q`` contracts per unit: premium = q x price, so the leg's price
      limit is ``limit / q`` (a sell of a long leg at least that, a buy of a short leg at
      most its absolute value).

    Rounded to the cent on the side that still honours ``limit``."""
    if len(structure.legs) == 1:
        qty = structure.legs[0].qty
        return _cents(limit / qty, up=qty > 0)          # a sell's floor, a buy's cap
    return _cents(-limit, up=False)                     # the most the close may pay


def _cents(price: float, up: bool) -> float:
    ticks = math.ceil(price * 100 - 1e-6) if up else math.floor(price * 100 + 1e-6)
    return round(ticks / 100, 2)


def _structure_spec(root: str, structure, contracts: int, kind: str) -> dict:
    legs = []
    for leg in structure.legs:
        buy = (leg.qty > 0) == (kind == "open")
        intent = ("buy" if buy else "sell") + ("_to_open" if kind == "open" else "_to_close")
        legs.append({"symbol": occ_symbol(root, leg.expiry, leg.right, leg.strike),
                     "ratio_qty": abs(leg.qty), "side": "buy" if buy else "sell",
                     "position_intent": intent})
    if len(legs) == 1:
        leg = legs[0]
        return {"kind": "option", "symbol": leg["symbol"], "side": leg["side"],
                "qty": contracts * leg["ratio_qty"], "position_intent": leg["position_intent"],
                "legs": legs}
    return {"kind": "mleg", "qty": contracts, "legs": legs}


def to_request(spec: dict, client_id: str):
    """The alpaca-py request for a spec (day orders)."""
    common = dict(qty=spec["qty"], time_in_force=TimeInForce.DAY, client_order_id=client_id)
    kind = spec["kind"]
    if kind in ("mleg", "option"):
        return _option_request(spec, common)
    common |= dict(symbol=spec["symbol"], side=OrderSide(spec["side"]))
    if kind == "market":
        return MarketOrderRequest(**common)
    if kind == "limit":
        return LimitOrderRequest(limit_price=spec["limit_price"], **common)
    if kind == "stop":
        return StopOrderRequest(stop_price=spec["stop_price"], **common)
    if kind == "trailing_stop":
        return TrailingStopOrderRequest(trail_price=spec.get("trail_price"),
                                        trail_percent=spec.get("trail_percent"), **common)
    if kind == "oco":
        return LimitOrderRequest(order_class=OrderClass.OCO,
                                 take_profit=TakeProfitRequest(limit_price=spec["limit_price"]),
                                 stop_loss=StopLossRequest(stop_price=spec["stop_price"]),
                                 **common)
    raise ValueError(f"unknown order kind {kind!r}")


def _option_request(spec: dict, common: dict):
    """A structure's request: market, or limit when the spec has a ``limit_price``."""
    if "limit_price" in spec:
        cls, common = LimitOrderRequest, common | {"limit_price": spec["limit_price"]}
    else:
        cls = MarketOrderRequest
    if spec["kind"] == "option":
        return cls(symbol=spec["symbol"], side=OrderSide(spec["side"]),
                   position_intent=PositionIntent(spec["position_intent"]), **common)
    legs = [OptionLegRequest(symbol=leg["symbol"], ratio_qty=leg["ratio_qty"],
                             side=OrderSide(leg["side"]),
                             position_intent=PositionIntent(leg["position_intent"]))
            for leg in spec["legs"]]
    return cls(order_class=OrderClass.MLEG, legs=legs, **common)


def describe(spec: dict) -> str:
    """One line for the session log, e.g. ``sell 50 SPY stop 512.30``."""
    if "legs" in spec:
        legs = " / ".join(f"{leg['side']} {leg['ratio_qty']} {leg['symbol']}"
                          for leg in spec["legs"])
        limit = f" limit {spec['limit_price']:.2f}" if "limit_price" in spec else ""
        return f"{spec['kind']} x{spec['qty']}{limit}: {legs}"
    text = f"{spec['side']} {spec['qty']} {spec['symbol']} {spec['kind']}"
    if "limit_price" in spec:
        text += f" limit {spec['limit_price']:.2f}"
    if "stop_price" in spec:
        text += f" stop {spec['stop_price']:.2f}"
    return text


def error_text(exc) -> str:
    """The message of an alpaca-py ``APIError`` (its body's, or the first 200 characters)."""
    try:
        return str(exc.message)
    except Exception:  # noqa: BLE001 - a body that is not Alpaca's JSON
        return str(exc)[:200]
