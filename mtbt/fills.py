"""Fill rules of backtrader 1.9.78's BackBroker, as pure functions.

mtbt configures BackBroker with ``set_slippage_fixed(slippage, slip_open=True,
slip_limit=False, slip_match=True, slip_out=False)``; these functions give the same price
(the same float, operation for operation) for an order that is working when ``bar`` arrives,
or ``None`` where BackBroker leaves it unfilled on that bar. ``bar`` is (open, high, low,
close) and ``side`` is +1 to buy, -1 to sell. Slippage 0 turns slippage off, as in
backtrader (a falsy ``slip_fixed``).

The rules, in words: a market order fills at the open, slipped against the trader but never
beyond the bar's high (buy) or low (sell). A stop fills at the open if the open gapped
through the trigger, else at the trigger if the bar reached it, slipped the same way. A
limit fills at the open (slipped, capped by the limit and the high for a buy; for a sell
backtrader floors the slip at the limit only) if the open is at or better than the limit,
else at the limit if the bar reached it (no slippage).
"""
from __future__ import annotations

__all__ = ["Bar", "limit_fill", "market_fill", "stop_fill"]

Bar = tuple[float, float, float, float]


def _slip_up(pmax: float, price: float, slippage: float) -> float:
    """BackBroker._slip_up with slip_fixed, slip_match=True, slip_out=False."""
    if not slippage:
        return price
    pslip = price + slippage
    if pslip <= pmax:
        return pslip
    return pmax


def _slip_down(pmin: float, price: float, slippage: float) -> float:
    """BackBroker._slip_down with slip_fixed, slip_match=True, slip_out=False."""
    if not slippage:
        return price
    pslip = price - slippage
    if pslip >= pmin:
        return pslip
    return pmin


def _check_side(side: int) -> None:
    if side not in (1, -1):
        raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side!r}")


def market_fill(side: int, bar: Bar, slippage: float = 0.0) -> float:
    """Price of a market order on ``bar`` (BackBroker._try_exec_market, coc off)."""
    _check_side(side)
    popen, phigh, plow, _ = bar
    if side > 0:
        return _slip_up(phigh, popen, slippage)
    return _slip_down(plow, popen, slippage)


def stop_fill(side: int, stop_price: float, bar: Bar, slippage: float = 0.0) -> float | None:
    """Price of a stop (market on trigger) order on ``bar``, or None (_try_exec_stop)."""
    _check_side(side)
    popen, phigh, plow, _ = bar
    if side > 0:
        if popen >= stop_price:
            return _slip_up(phigh, popen, slippage)
        if phigh >= stop_price:
            return _slip_up(phigh, stop_price, slippage)
        return None
    if popen <= stop_price:
        return _slip_down(plow, popen, slippage)
    if plow <= stop_price:
        return _slip_down(plow, stop_price, slippage)
    return None


def limit_fill(side: int, limit_price: float, bar: Bar, slippage: float = 0.0) -> float | None:
    """Price of a limit order on ``bar``, or None (_try_exec_limit).

    Slippage applies only when the open is already through the limit (slip_open=True).
    """
    _check_side(side)
    popen, phigh, plow, _ = bar
    if side > 0:
        if limit_price >= popen:
            return _slip_up(min(phigh, limit_price), popen, slippage)
        if limit_price >= plow:
            return limit_price
        return None
    if limit_price <= popen:
        # backtrader passes the limit (not max(low, limit)) as the floor here
        return _slip_down(limit_price, popen, slippage)
    if limit_price <= phigh:
        return limit_price
    return None
