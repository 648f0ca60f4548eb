"""Option structures: legs, payoffs at expiry, honest fills and their risk figures.

Prices are per share (premium points); a contract is ``multiplier`` shares. A leg's ``qty``
is its signed number of contracts per unit of the structure (+1 long, -1 short; a
butterfly is +1, -2, +1). A net ``premium`` is per share per unit: a debit paid is
positive, a credit received negative. Profit and loss at expiry is ``payoff(S) - premium``.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from mtbt.options.pricing import intrinsic

if TYPE_CHECKING:
    from mtbt.options.chain import SyntheticChain

__all__ = ["Leg", "Structure", "call_bwb", "call_butterfly", "call_debit_spread",
           "iron_condor", "long_call", "long_put", "put_bwb", "put_butterfly",
           "put_debit_spread"]


@dataclass(frozen=True)
class Leg:
    """One option line of a structure: ``qty`` contracts (signed) of ``right`` at ``strike``."""

    right: str
    strike: float
    qty: int
    expiry: dt.date

    def __post_init__(self) -> None:
        if self.right not in ("C", "P"):
            raise ValueError(f"right must be 'C' or 'P', got {self.right!r}")
        if not self.strike > 0:
            raise ValueError(f"strike must be positive, got {self.strike}")
        if not isinstance(self.qty, int | np.integer) or self.qty == 0:
            raise ValueError(f"qty must be a non-zero integer, got {self.qty!r}")

    def fill(self, chain: SyntheticChain) -> float:
        """Signed per-share premium of this leg at honest fills (paid > 0, received < 0)."""
        return self.qty * chain.fill(self.right, self.strike, self.qty)


@dataclass(frozen=True)
class Structure:
    """A named set of legs with one expiry; ``name`` is the builder's name."""

    name: str
    legs: tuple[Leg, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "legs", tuple(self.legs))
        if not self.legs:
            raise ValueError("a structure needs at least one leg")
        if len({leg.expiry for leg in self.legs}) != 1:
            raise ValueError("all legs of a structure must share one expiry")

    def to_dict(self) -> dict:
        """JSON-able form (``from_dict`` reads it back)."""
        return {"name": self.name, "legs": [[leg.right, leg.strike, int(leg.qty),
                                             leg.expiry.isoformat()] for leg in self.legs]}

    @classmethod
    def from_dict(cls, body: dict) -> Structure:
        return cls(body["name"], tuple(Leg(r, s, q, dt.date.fromisoformat(e))
                                       for r, s, q, e in body["legs"]))

    @property
    def expiry(self) -> dt.date:
        """The legs' common expiry date."""
        return self.legs[0].expiry

    @property
    def contracts(self) -> int:
        """Contracts per unit: the sum of ``|qty|``."""
        return sum(abs(leg.qty) for leg in self.legs)

    @property
    def label(self) -> str:
        """Name and strikes, e.g. ``call_debit_spread 645/651``."""
        return f"{self.name} " + "/".join(f"{leg.strike:g}" for leg in self.legs)

    def payoff(self, spot: ArrayLike) -> float | np.ndarray:
        """Value at expiry per share per unit (vectorised over ``spot``)."""
        s = np.asarray(spot, dtype=float)
        total = sum(leg.qty * intrinsic(s, leg.strike, leg.right) for leg in self.legs)
        return float(total) if np.ndim(total) == 0 else total

    def _check(self, chain: SyntheticChain) -> None:
        if chain.expiry != self.expiry:
            raise ValueError(f"{self.name} expires {self.expiry}, the chain {chain.expiry}")

    def value(self, chain: SyntheticChain) -> float:
        """Model mid value now per share per unit."""
        self._check(chain)
        return float(sum(leg.qty * chain.mid(leg.right, leg.strike) for leg in self.legs))

    def fill(self, chain: SyntheticChain) -> float:
        """Net per-share premium at honest fills: the sum of the legs' fills (debit > 0)."""
        self._check(chain)
        return float(sum(leg.fill(chain) for leg in self.legs))

    def fees(self, chain: SyntheticChain) -> float:
        """Dollars of fees per unit for one fill of every leg."""
        return chain.model.fee_per_contract * self.contracts

    # -- risk figures from the piecewise-linear payoff (kinks at the strikes) -------------
    def _kinks(self, premium: float) -> tuple[np.ndarray, np.ndarray, float]:
        """P&L at S = 0 and at every strike, and the slope beyond the highest strike."""
        xs = np.unique(np.r_[0.0, [leg.strike for leg in self.legs]])
        ys = np.asarray(self.payoff(xs)) - premium
        slope = float(sum(leg.qty for leg in self.legs if leg.right == "C"))
        return xs, ys, slope

    def max_loss(self, premium: float) -> float:
        """Largest loss per share at expiry (positive; ``math.inf`` when unbounded)."""
        _, ys, slope = self._kinks(premium)
        return math.inf if slope < 0 else float(-ys.min())

    def max_gain(self, premium: float) -> float:
        """Largest gain per share at expiry (``math.inf`` when unbounded)."""
        _, ys, slope = self._kinks(premium)
        return math.inf if slope > 0 else float(ys.max())

    def breakevens(self, premium: float) -> tuple[float, ...]:
        """Underlying prices (> 0) at expiry where P&L is zero, ascending."""
        xs, ys, slope = self._kinks(premium)
        roots = [float(x) for x, y in zip(xs[1:], ys[1:], strict=True) if abs(y) < 1e-12]
        for x0, x1, y0, y1 in zip(xs[:-1], xs[1:], ys[:-1], ys[1:], strict=True):
            if y0 * y1 < 0:
                roots.append(float(x0 - y0 * (x1 - x0) / (y1 - y0)))
        if slope != 0 and -ys[-1] / slope > 0:
            roots.append(float(xs[-1] - ys[-1] / slope))
        return tuple(sorted({round(r, 9) for r in roots if r > 0}))


# -- builders: each Structure's name is its builder's name ----------------------------------
def _positive(**widths: float) -> None:
    for name, w in widths.items():
        if not w > 0:
            raise ValueError(f"{name} must be positive, got {w}")


def long_call(expiry: dt.date, strike: float) -> Structure:
    """Buy one call."""
    return Structure("long_call", (Leg("C", strike, 1, expiry),))


def long_put(expiry: dt.date, strike: float) -> Structure:
    """Buy one put."""
    return Structure("long_put", (Leg("P", strike, 1, expiry),))


def call_debit_spread(expiry: dt.date, long_strike: float, short_strike: float) -> Structure:
    """Buy the ``long_strike`` call, sell the higher ``short_strike`` call."""
    _positive(width=short_strike - long_strike)
    return Structure("call_debit_spread", (Leg("C", long_strike, 1, expiry),
                                           Leg("C", short_strike, -1, expiry)))


def put_debit_spread(expiry: dt.date, long_strike: float, short_strike: float) -> Structure:
    """Buy the ``long_strike`` put, sell the lower ``short_strike`` put."""
    _positive(width=long_strike - short_strike)
    return Structure("put_debit_spread", (Leg("P", long_strike, 1, expiry),
                                          Leg("P", short_strike, -1, expiry)))


def _fly(name: str, right: str, expiry: dt.date, center: float, lower: float,
         upper: float) -> Structure:
    _positive(lower_width=lower, upper_width=upper)
    return Structure(name, (Leg(right, center - lower, 1, expiry), Leg(right, center, -2, expiry),
                            Leg(right, center + upper, 1, expiry)))


def call_butterfly(expiry: dt.date, center: float, width: float) -> Structure:
    """Long call butterfly: +1 ``center - width``, -2 ``center``, +1 ``center + width``."""
    return _fly("call_butterfly", "C", expiry, center, width, width)


def put_butterfly(expiry: dt.date, center: float, width: float) -> Structure:
    """Long put butterfly: +1 ``center + width``, -2 ``center``, +1 ``center - width``."""
    return _fly("put_butterfly", "P", expiry, center, width, width)


def call_bwb(expiry: dt.date, center: float, near_width: float, far_width: float) -> Structure:
    """Call broken-wing butterfly: +1 ``center - near_width``, -2 ``center``,
    +1 ``center + far_width`` (the far, upper wing is the wider: loss above it)."""
    _positive(far_minus_near=far_width - near_width)
    return _fly("call_bwb", "C", expiry, center, near_width, far_width)


def put_bwb(expiry: dt.date, center: float, near_width: float, far_width: float) -> Structure:
    """Put broken-wing butterfly: +1 ``center + near_width``, -2 ``center``,
    +1 ``center - far_width`` (the far, lower wing is the wider: loss below it)."""
    _positive(far_minus_near=far_width - near_width)
    return _fly("put_bwb", "P", expiry, center, far_width, near_width)


def iron_condor(expiry: dt.date, put_short: float, call_short: float, width: float) -> Structure:
    """Short iron condor: sell the ``put_short`` put and ``call_short`` call, buy the wings
    ``width`` further out (+1 put ``put_short - width``, +1 call ``call_short + width``)."""
    _positive(width=width)
    if call_short < put_short:
        raise ValueError(f"call_short {call_short} is below put_short {put_short}")
    return Structure("iron_condor", (Leg("P", put_short - width, 1, expiry),
                                     Leg("P", put_short, -1, expiry),
                                     Leg("C", call_short, -1, expiry),
                                     Leg("C", call_short + width, 1, expiry)))
