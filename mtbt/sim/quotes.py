"""The option quotes the simulator serves (``GET /v1beta1/options/quotes/latest``): from the
synthetic chain, or from one session of recorded option bars.

**Model quotes** (no recorded bars given): at the simulator's ``now`` (the end of the last
emitted bar) a contract's quote is the synthetic chain's bid and ask with the underlying at
that bar's close, the bar's VIX and ``now`` as the clock: ``SyntheticChain(model, close, vix,
now, expiry close).bid/.ask``, the chain :class:`~mtbt.sim.market.OptionMarket` marks with.

**Recorded quotes** (``bars``: a frame of the options bar store's contract,
``feeds/options_store.py``): the last bar of the contract among the bars of the
``stale_minutes`` minutes before ``now`` (complete at ``now``: its minute started at least a
minute before; not older: its minute started at most ``stale_minutes`` before ``now``, so with
5 a quote at 10:00 reads the bars of 09:55 to 09:59) gives ``bid = close - h`` and ``ask =
close + h``, ``h = max(half_spread_pct x close, tick)``, the bid rounded down and the ask up
to the tick and the bid never below zero (the chain's half-spread rule,
:func:`mtbt.options.chain.bid_of`). That is exactly the price a backtest with ``[options]
prices = "recorded"`` decides on at the close ``now`` (``mtbt.options.recorded``), so a
replayed day decides on the same prices. Bars carry trades, not quotes: this spread is an
assumption, not data. The quote's time is the bar's end. A contract with no such bar has no
quote.

Either way a symbol that is not an OCC option on the underlying, one whose expiry session has
closed, and (model) any symbol before the first bar has no quote: it is left out of the
answer, as Alpaca leaves out symbols it has nothing for. Quote sizes are a constant
``QUOTE_SIZE`` contracts a side (neither the model nor trade bars have depth), and the
optional exchange and condition keys (``bx``, ``ax``, ``c``) are not sent: no exchange quoted.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from mtbt.options import occ
from mtbt.options.chain import ChainModel, SyntheticChain, ask_of, bid_of
from mtbt.sessions import NY
from mtbt.sim.calendar import naive_ny
from mtbt.sim.market import BarRow, OptionMarket
from mtbt.sim.wire import iso

__all__ = ["QUOTE_SIZE", "OptionQuoteBook"]

#: contracts quoted on each side (the simulator's quotes have no depth)
QUOTE_SIZE = 100
_MINUTE_NS = 60_000_000_000
_BAR_COLUMNS = ("timestamp", "contract", "close")


class OptionQuoteBook:
    """Latest option quotes of one underlying (see the module docstring).

    Parameters
    ----------
    market : the simulator's synthetic chain and sessions.
    symbol : the underlying.
    bars : recorded 1-minute option bars of the day (the options store's columns; at least
        ``timestamp`` tz-aware, ``contract``, ``close``), or None for model quotes.
    half_spread_pct : recorded quotes' half spread as a fraction of the close (default: the
        chain's ``half_spread_pct``); the chain's ``tick`` is the floor and the rounding step.
    stale_minutes : a recorded bar's close is a quote while its minute is one of the
        ``stale_minutes`` minutes before now.
    """

    def __init__(self, market: OptionMarket, symbol: str, bars: pd.DataFrame | None = None,
                 half_spread_pct: float | None = None, stale_minutes: float = 5.0) -> None:
        if not stale_minutes >= 0:
            raise ValueError(f"stale_minutes must be >= 0, got {stale_minutes}")
        self.market, self.symbol = market, symbol
        model = market.model
        self.spread_model: ChainModel = model if half_spread_pct is None else \
            dataclasses.replace(model, half_spread_pct=float(half_spread_pct))
        self.stale_ns = int(round(stale_minutes * _MINUTE_NS))
        self._recorded = None if bars is None else _index(bars)

    @property
    def source(self) -> str:
        """``"recorded"`` or ``"model"``."""
        return "model" if self._recorded is None else "recorded"

    def latest(self, symbols: Iterable[str], now: pd.Timestamp, last_bar: BarRow | None
               ) -> dict[str, dict[str, Any]]:
        """``{symbol: quote JSON}`` at ``now`` for the symbols that have a quote (module
        docstring); ``last_bar`` is the last bar emitted (its end is ``now``)."""
        out: dict[str, dict[str, Any]] = {}
        today = naive_ny(now)
        for symbol in dict.fromkeys(symbols):
            parsed = _parse(symbol)
            if parsed is None or parsed[0] != self.symbol:
                continue
            close = self.market.sessions.close_of(parsed[1])
            if today >= close:
                continue
            if self._recorded is None:
                quote = self._model(parsed[2], parsed[3], close, now, last_bar)
            else:
                quote = self._bar(symbol, now)
            if quote is not None:
                out[symbol] = quote
        return out

    def _model(self, right: str, strike: float, expiry_close: Any, now: pd.Timestamp,
               bar: BarRow | None) -> dict[str, Any] | None:
        if bar is None:
            return None
        chain = SyntheticChain(self.market.model, bar.close, bar.vix, naive_ny(now),
                               expiry_close)
        return _quote(now, float(chain.bid(right, strike)), float(chain.ask(right, strike)))

    def _bar(self, symbol: str, now: pd.Timestamp) -> dict[str, Any] | None:
        found = self._recorded.get(symbol)
        if found is None:
            return None
        ends, closes = found
        now_ns = now.as_unit("ns").value
        i = int(np.searchsorted(ends, now_ns, "right")) - 1     # complete at now
        if i < 0 or now_ns - (ends[i] - _MINUTE_NS) > self.stale_ns:   # started too early
            return None
        close = float(closes[i])
        bid = float(bid_of(self.spread_model, close))
        ask = float(ask_of(self.spread_model, close))
        return _quote(pd.Timestamp(int(ends[i]), tz="UTC"), bid, ask)


def _parse(symbol: Any) -> tuple[str, Any, str, float] | None:
    """(root, expiry, right, strike) of an OCC symbol; None for anything else."""
    try:
        return occ.parse_occ(symbol) if isinstance(symbol, str) else None
    except ValueError:                  # six digits that are no date
        return None


def _quote(t: pd.Timestamp, bid: float, ask: float) -> dict[str, Any]:
    """A Quote as Alpaca's latest-quote route sends it (numbers as JSON numbers)."""
    return {"t": iso(t), "bp": bid, "bs": QUOTE_SIZE, "ap": ask, "as": QUOTE_SIZE}


def _index(bars: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{contract: (bar ends in ns, sorted; closes)} of recorded bars."""
    missing = [c for c in _BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"option bars lack columns {missing}")
    ts = bars["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise ValueError("option bars need a tz-aware 'timestamp' column")
    frame = pd.DataFrame({
        "contract": bars["contract"].astype(str).str.removeprefix("O:").to_numpy(),
        "end": pd.DatetimeIndex(ts).tz_convert(NY).as_unit("ns").asi8 + _MINUTE_NS,
        "close": bars["close"].to_numpy(dtype="float64")})
    frame = frame[np.isfinite(frame["close"]) & (frame["close"] > 0)]
    frame = frame.sort_values(["contract", "end"], kind="stable")
    return {str(c): (g["end"].to_numpy(), g["close"].to_numpy())
            for c, g in frame.groupby("contract", sort=False)}
