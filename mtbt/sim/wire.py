"""JSON shapes Alpaca's API speaks (see shared/reference/alpaca_wire.md): numbers, times,
orders, positions, account, clock, calendar, assets and error bodies. Pure functions of the
values they are given."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

import pandas as pd

from mtbt.options.occ import OCC
from mtbt.sessions import NY
from mtbt.sim.orders import SimOrder

if TYPE_CHECKING:
    from mtbt.sessions import Session
    from mtbt.sim.calendar import SessionBook

__all__ = ["OCC", "account_json", "asset_id", "asset_json", "calendar_json", "clock_json",
           "error", "iso", "num", "order_json", "parse_time", "position_json"]

_NS = uuid.UUID("6f1b2d1e-5a57-4c55-9f65-6d7462740000")


def num(x: float | None) -> str | None:
    """A number as Alpaca writes it: a string, integral values without ``.0``, floats exact
    (``repr``, so ``float(num(x)) == x``)."""
    if x is None:
        return None
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def iso(t: dt.datetime | pd.Timestamp | None) -> str | None:
    """RFC 3339 UTC with microseconds and ``Z``."""
    if t is None:
        return None
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_ny(t: dt.datetime) -> str:
    """A naive New York datetime as ISO with its UTC offset (Alpaca's clock style)."""
    return pd.Timestamp(t).tz_localize(NY).isoformat()


def parse_time(text: str) -> pd.Timestamp:
    """An RFC 3339 time or YYYY-MM-DD date (naive = UTC) as a tz-aware Timestamp."""
    t = pd.Timestamp(text.replace(" ", "+") if "T" in text else text)
    return t.tz_localize("UTC") if t.tz is None else t


def error(code: int, message: str) -> dict[str, Any]:
    """Alpaca's error body."""
    return {"code": code, "message": message}


def asset_id(symbol: str) -> str:
    """A stable UUID per symbol."""
    return str(uuid.uuid5(_NS, symbol))


def asset_json(symbol: str) -> dict[str, Any]:
    """An Asset: ``us_option`` for OCC symbols, else a shortable ARCA ``us_equity``."""
    option = OCC.match(symbol) is not None
    return {"id": asset_id(symbol), "class": "us_option" if option else "us_equity",
            "exchange": "" if option else "ARCA", "symbol": symbol, "name": symbol,
            "status": "active", "tradable": True, "marginable": not option,
            "shortable": not option, "easy_to_borrow": not option,
            "fractionable": not option, "maintenance_margin_requirement": 30.0,
            "attributes": []}


def order_json(order: SimOrder, nested: bool = True) -> dict[str, Any]:
    """An Order (legs included when ``nested``)."""
    mleg = order.order_class == "mleg"
    body: dict[str, Any] = {
        "id": order.id, "client_order_id": order.client_order_id,
        "created_at": iso(order.created_at), "updated_at": iso(order.updated_at),
        "submitted_at": iso(order.created_at), "filled_at": iso(order.filled_at),
        "expired_at": iso(order.expired_at), "canceled_at": iso(order.canceled_at),
        "failed_at": iso(order.failed_at), "replaced_at": iso(order.replaced_at),
        "replaced_by": order.replaced_by, "replaces": order.replaces, "expires_at": None,
        "asset_id": "" if mleg else asset_id(order.symbol),
        "symbol": order.symbol, "asset_class": order.asset_class,
        "notional": None, "qty": num(order.qty), "filled_qty": num(order.filled_qty),
        "filled_avg_price": num(order.filled_avg_price),
        "order_class": "" if order.order_class == "simple" else order.order_class,
        "order_type": order.type, "type": order.type, "side": order.side,
        "position_intent": order.position_intent, "time_in_force": order.time_in_force,
        "limit_price": num(order.limit_price), "stop_price": num(order.stop_price),
        "status": order.status, "extended_hours": False, "trail_percent": None,
        "trail_price": None, "hwm": None, "ratio_qty": num(order.ratio_qty),
        "legs": [order_json(leg) for leg in order.legs] if (nested and order.legs) else None,
    }
    return body


def position_json(symbol: str, qty: float, avg_entry_price: float, asset_class: str,
                  mark: float | None, available: float, multiplier: int) -> dict[str, Any]:
    """A Position; ``mark`` per share (the entry price when unknown), ``available`` the signed
    qty not held by open orders, ``multiplier`` shares per contract (1 for equities)."""
    option = asset_class == "us_option"
    price = avg_entry_price if mark is None else mark
    cost = qty * avg_entry_price * multiplier
    value = qty * price * multiplier
    plpc = num((value - cost) / abs(cost) if cost else 0.0)
    return {"asset_id": asset_id(symbol), "symbol": symbol,
            "exchange": "" if option else "ARCA", "asset_class": asset_class,
            "asset_marginable": not option, "avg_entry_price": num(avg_entry_price),
            "qty": num(qty), "qty_available": num(available),
            "side": "long" if qty > 0 else "short", "market_value": num(value),
            "cost_basis": num(cost), "unrealized_pl": num(value - cost),
            "unrealized_plpc": plpc, "unrealized_intraday_pl": num(value - cost),
            "unrealized_intraday_plpc": plpc, "current_price": num(price),
            "lastday_price": num(price), "change_today": "0"}


def account_json(account_id: str, cash: float, long: float, short: float,
                 last_equity: float) -> dict[str, Any]:
    """A TradeAccount (a 4x margin account) from cash and the long and short market values."""
    equity = cash + long + short
    gross = long - short
    power = max(4 * equity - gross, 0.0)
    return {"id": account_id, "account_number": "SIM000001", "status": "ACTIVE",
            "crypto_status": "INACTIVE", "currency": "USD", "cash": num(cash),
            "portfolio_value": num(equity), "equity": num(equity),
            "last_equity": num(last_equity), "long_market_value": num(long),
            "short_market_value": num(short), "buying_power": num(power),
            "regt_buying_power": num(max(2 * equity - gross, 0.0)),
            "daytrading_buying_power": num(power),
            "non_marginable_buying_power": num(max(cash, 0.0)),
            "options_buying_power": num(max(cash, 0.0)),
            "initial_margin": num(gross / 2), "maintenance_margin": num(gross / 4),
            "sma": "0", "multiplier": "4", "daytrade_count": 0,
            "pattern_day_trader": False, "trading_blocked": False,
            "transfers_blocked": False, "account_blocked": False,
            "trade_suspended_by_user": False, "shorting_enabled": True,
            "options_approved_level": 3, "options_trading_level": 3,
            "created_at": "2020-01-01T00:00:00Z", "accrued_fees": "0",
            "pending_transfer_in": "0"}


def clock_json(now: pd.Timestamp, book: SessionBook) -> dict[str, Any]:
    """The Clock at ``now``."""
    t = pd.Timestamp(now).tz_convert(NY).tz_localize(None).to_pydatetime()
    current = book.next_after(t)
    is_open = current.open <= t < current.close
    if is_open or t >= current.open:
        nxt = book.next_after(current.close)
    else:
        nxt = current
    return {"timestamp": pd.Timestamp(now).tz_convert(NY).isoformat(), "is_open": is_open,
            "next_open": iso_ny(nxt.open),
            "next_close": iso_ny(current.close if is_open else nxt.close)}


def calendar_json(found: list[Session]) -> list[dict[str, Any]]:
    """Calendar items: HH:MM open and close (early closes as they are)."""
    return [{"date": s.date.isoformat(), "open": s.open.strftime("%H:%M"),
             "close": s.close.strftime("%H:%M"), "session_open": "0400",
             "session_close": "2000", "settlement_date": s.date.isoformat()} for s in found]
