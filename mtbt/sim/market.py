"""What the market says at a bar: the 1-minute bar itself (:class:`BarRow`) and the option
chain priced from it (:class:`OptionMarket`), as mtbt's backtests price options: the synthetic
chain, or (``OptionMarket.use_recorded``, a ``--replay`` on a recorded options store) recorded
option bars by the backtest's own rules (``mtbt.options.recorded``: a fill at minute ``T``
takes the contract's bar open of ``T``, else the last close of the ``stale_minutes`` minutes
before ``T``, else the model; a mark at close time ``C`` the last close of the
``stale_minutes`` minutes before ``C``, else the model; bid and ask the price -/+ the
assumed half spread)."""
from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pandas as pd

from mtbt.options import occ
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.occ import OCC
from mtbt.options.pricing import intrinsic
from mtbt.options.recorded import RecordedPrices
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
    """The option chain of one underlying, dated by the XNYS ``sessions``: the synthetic one
    (``model``), or recorded bars where ``use_recorded`` gave them (``prices``)."""

    def __init__(self, model: ChainModel, sessions: SessionBook) -> None:
        self.model, self.sessions = model, sessions
        self.prices: RecordedPrices | None = None

    def use_recorded(self, bars: pd.DataFrame, stale_minutes: int,
                     half_spread_pct: float) -> None:
        """Price fills and marks on the sessions of ``bars`` (a frame of the options bar
        store's contract, ``feeds/options_store.py``) from those bars, as a backtest with
        ``[options] prices = "recorded"`` does (``RecordedPrices``: the same rules, the
        same code); other sessions keep the model."""
        stamps = pd.DatetimeIndex(bars["timestamp"])
        stamps = stamps.tz_convert("America/New_York") if stamps.tz is not None else stamps
        days = {d.date() for d in stamps.normalize().unique()}
        self.prices = RecordedPrices("recorded", days, lambda day: bars,
                                     stale_minutes=stale_minutes,
                                     half_spread_pct=half_spread_pct)

    def chain(self, bar: BarRow, expiry: dt.date) -> SyntheticChain:
        """The chain as the backtest broker builds it for a fill at this bar's open."""
        if self.prices is not None:
            return self.prices.chain(self.model, bar.open, bar.vix, naive_ny(bar.start),
                                     self.sessions.close_of(expiry), at_open=True)
        return SyntheticChain(self.model, bar.open, bar.vix, naive_ny(bar.start),
                              self.sessions.close_of(expiry))

    def fill_price(self, symbol: str, trade_qty: int, bar: BarRow) -> float:
        """The price ``trade_qty`` contracts (signed: + buys) of ``symbol`` fill at, at
        ``bar``'s open (BacktestBroker's honest price)."""
        _, expiry, right, strike = parse_occ(symbol)
        return self.chain(bar, expiry).fill(right, strike, trade_qty)

    def mark(self, symbol: str, bar: BarRow) -> float:
        """The chain's mid for ``symbol`` at ``bar``'s close (the last recorded close within
        ``stale_minutes`` where recorded bars are in use)."""
        _, expiry, right, strike = parse_occ(symbol)
        close = self.sessions.close_of(expiry)
        if self.prices is not None:
            chain = self.prices.chain(self.model, bar.close, bar.vix, naive_ny(bar.end), close)
        else:
            chain = SyntheticChain(self.model, bar.close, bar.vix, naive_ny(bar.end), close)
        return float(chain.mid(right, strike))

    def intrinsic(self, symbol: str, spot: float) -> float:
        """``symbol``'s value at expiry with the underlying at ``spot``."""
        _, _, right, strike = parse_occ(symbol)
        return float(intrinsic(spot, strike, right))
