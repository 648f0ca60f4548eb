"""What the market says at a bar: the 1-minute bar itself (:class:`BarRow`) and the synthetic
option chain priced from it (:class:`OptionMarket`), as mtbt's backtests price options."""
from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pandas as pd

from mtbt.options import occ
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.occ import OCC
from mtbt.options.pricing import intrinsic
from mtbt.sim.calendar import SessionBook, naive_ny
from mtbt.sim.errors import unprocessable

__all__ = ["BarRow", "OptionMarket", "is_option", "parse_occ"]

_MINUTE = dt.timedelta(minutes=1)


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


def is_option(symbol: str) -> bool:
    """True for an OCC option symbol."""
    return bool(OCC.match(symbol))


def parse_occ(symbol: str) -> tuple[str, dt.date, str, float]:
    """(root, expiry, right "C"/"P", strike) of an OCC option symbol (422 if it is not one)."""
    parsed = occ.parse_occ(symbol)
    if parsed is None:
        raise unprocessable(f"invalid option symbol {symbol}")
    return parsed


class OptionMarket:
    """The synthetic chain (``model``) of one underlying, dated by the XNYS ``sessions``."""

    def __init__(self, model: ChainModel, sessions: SessionBook) -> None:
        self.model, self.sessions = model, sessions

    def chain(self, bar: BarRow, expiry: dt.date) -> SyntheticChain:
        """The chain as BacktestBroker builds it at this bar's open."""
        return SyntheticChain(self.model, bar.open, bar.vix, naive_ny(bar.start),
                              self.sessions.close_of(expiry))

    def fill_price(self, symbol: str, trade_qty: int, bar: BarRow) -> float:
        """The price ``trade_qty`` contracts (signed: + buys) of ``symbol`` fill at, at
        ``bar``'s open (BacktestBroker's honest price)."""
        _, expiry, right, strike = parse_occ(symbol)
        return self.chain(bar, expiry).fill(right, strike, trade_qty)

    def mark(self, symbol: str, bar: BarRow) -> float:
        """The chain's mid for ``symbol`` at ``bar``'s close."""
        _, expiry, right, strike = parse_occ(symbol)
        chain = SyntheticChain(self.model, bar.close, bar.vix, naive_ny(bar.end),
                               self.sessions.close_of(expiry))
        return float(chain.mid(right, strike))

    def intrinsic(self, symbol: str, spot: float) -> float:
        """``symbol``'s value at expiry with the underlying at ``spot``."""
        _, _, right, strike = parse_occ(symbol)
        return float(intrinsic(spot, strike, right))
