"""What a structure is worth under the strategy's exits: executable closes, worst case, EV.

Everything is per share per unit of the structure unless it says dollars; a contract is
``multiplier`` shares. Closing a structure sells its long legs at the bid and buys its short
legs back at the ask (``close_value``); fees are paid per contract on opening and again on
closing.

- **Worst-case loss** (``worst_loss``): the premium paid, less the lowest executable close
  value the structure can have while the strategy may still hold it, plus fees both ways.
  "May still hold it" is the underlying anywhere from a gap of ``gap`` beyond the hard stop to
  a gap of ``gap`` beyond tp2 (the exits close it before it goes further, unless the market
  jumps more than that between two minutes), at any time from the entry to the options force
  close. It is a cap on what a trade can lose under the chain model, and what sizing uses.
- **Expected value** (``pnl_per_unit``): the structure closed at the exit events of the
  simulated paths (``mtbt.options.paths``), tp1's share at the tp1 event and the rest at the
  second, each at the executable close value at that spot and time, less the entry premium
  and the fees.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike

from mtbt.options.chain import SESSION_MINUTES, TRADING_DAYS, SyntheticChain, quotes
from mtbt.options.paths import ExitEvents
from mtbt.options.structures import Structure

__all__ = ["Quotes", "close_value", "pnl_per_unit", "worst_grid", "worst_loss", "years_after"]

_YEAR_MINUTES = TRADING_DAYS * SESSION_MINUTES


class Quotes:
    """Bid and ask of a set of contracts at many (spot, time to expiry) points at once.

    ``spot`` and ``years`` broadcast together; ``legs`` are the (right, strike) pairs wanted
    (priced in one vectorised call per set).
    """

    def __init__(self, chain: SyntheticChain, spot: ArrayLike, years: ArrayLike,
                 legs: Iterable[tuple[str, float]]) -> None:
        spot, years = np.broadcast_arrays(np.asarray(spot, float), np.asarray(years, float))
        self.shape = spot.shape
        keys = list(dict.fromkeys(legs))
        self._row = {key: i for i, key in enumerate(keys)}
        if not keys:
            self.bid = self.ask = np.zeros((0, *self.shape))
            return
        lead = (len(keys),) + (1,) * spot.ndim
        rights = np.array([r for r, _ in keys]).reshape(lead)
        strikes = np.array([k for _, k in keys], dtype=float).reshape(lead)
        self.bid, self.ask = quotes(chain.model, chain.vix, spot[None], years[None], rights,
                                    strikes)

    def leg(self, right: str, strike: float) -> tuple[np.ndarray, np.ndarray]:
        """(bid, ask) of one contract at every point."""
        i = self._row[right, strike]
        return self.bid[i], self.ask[i]

    def close_value(self, structure: Structure) -> np.ndarray:
        """What closing one unit gets (per share; negative: closing costs money)."""
        return self._net(structure, closing=True)

    def open_premium(self, structure: Structure) -> np.ndarray:
        """What opening one unit costs (per share; buy at the ask, sell at the bid)."""
        return self._net(structure, closing=False)

    def _net(self, structure: Structure, closing: bool) -> np.ndarray:
        """Sum of qty x price: longs at the bid and shorts at the ask when closing, the
        other way round when opening."""
        total = np.zeros(self.shape)
        for leg in structure.legs:
            bid, ask = self.leg(leg.right, leg.strike)
            total = total + leg.qty * (bid if (leg.qty > 0) == closing else ask)
        return total


def close_value(structure: Structure, chain: SyntheticChain) -> float:
    """Executable value of closing one unit now (per share): sell longs at the bid, buy
    shorts back at the ask."""
    return float(sum(leg.qty * chain.fill(leg.right, leg.strike, -leg.qty)
                     for leg in structure.legs))


def years_after(chain: SyntheticChain, minutes: ArrayLike) -> np.ndarray:
    """Time to expiry ``minutes`` after the chain's moment (same session), trading years."""
    return np.maximum(chain.t - np.asarray(minutes, dtype=float) / _YEAR_MINUTES, 0.0)


def worst_grid(chain: SyntheticChain, legs: Iterable[tuple[str, float]], *, lo: float,
               hi: float, bars: int, points: int = 61) -> Quotes:
    """Quotes of ``legs`` for the underlying in ``[lo, hi]`` (and at every strike there)
    at 7 times from now to ``bars`` minutes on: where ``worst_loss`` looks."""
    legs = list(legs)
    strikes = [k for _, k in legs if lo < k < hi]
    spots = np.unique(np.r_[np.linspace(lo, hi, points), strikes])
    minutes = np.linspace(0, bars, 7)
    grid_s, grid_t = np.meshgrid(spots, years_after(chain, minutes))
    return Quotes(chain, grid_s, grid_t, legs)


def worst_loss(structure: Structure, chain: SyntheticChain, premium: float,
               grid: Quotes) -> float:
    """Worst-case loss per share (positive) of one unit bought at ``premium``: closed at its
    lowest executable value on ``grid`` (``worst_grid``), plus fees to open and to close."""
    fees = 2 * structure.fees(chain) / chain.model.multiplier
    return float(premium - grid.close_value(structure).min() + fees)


def pnl_per_unit(structure: Structure, chain: SyntheticChain, premium: float,
                 events: ExitEvents, quotes1: Quotes, quotes2: Quotes | None,
                 tp1_share: float) -> np.ndarray:
    """Net dollars per unit on each path: ``tp1_share`` of the unit closed at the tp1 event
    (all of it at a stop or the force close) and the rest at the second event.

    ``quotes1``/``quotes2`` hold the contracts' quotes at the first and second events of the
    paths (``quotes2`` at the scaled paths only, in their order)."""
    mult = chain.model.multiplier
    fees = 2 * structure.fees(chain)
    first = quotes1.close_value(structure) - premium
    scaled = events.scaled
    share = np.where(scaled, tp1_share, 1.0)
    pnl = share * first
    if quotes2 is not None and tp1_share < 1 and scaled.any():
        pnl[scaled] += (1 - tp1_share) * (quotes2.close_value(structure) - premium)
    return mult * pnl - fees
