"""A synthetic 0DTE option chain for SPY/QQQ when no option data exists.

The model
---------
* **Clock.** Time to expiry is counted in *trading years* up to the expiry session's
  close: remaining regular-session minutes / (252 x 390) (:func:`years_to_close`). VIX and
  implied vols annualise over about 252 trading days and intraday variance lives in trading
  hours, so an early close counts its shorter session and nights, weekends and holidays
  count nothing.
* **Volatility.** The at-the-money IV is ``atm_iv_ratio`` x the *prior* session's VIX close
  (the only VIX a bar may see), floored at ``iv_floor``. Strikes are placed by moneyness in
  expected moves, ``z = ln(K/S) / (atm_iv * sqrt(t))``, clipped to +/-``z_cap``, and
  ``iv(K) = max(iv_floor, atm_iv * (1 - skew*z + smile*z**2))``: the index put skew makes IV
  rise below spot, fall for a while above it and turn up again in the far call wing.
* **Prices.** Mids are Black-Scholes (``rate``, no dividends) on that IV. Quotes are
  ``mid -/+ max(half_spread_pct x mid, tick)``, the bid rounded down and the ask up to the
  tick and the bid never below zero; buying pays the ask, selling gets the bid, and every
  contract pays ``fee_per_contract`` dollars.

What it means for trusting the numbers
--------------------------------------
The chain is a model, not market data: no intraday IV changes, no event premia, no term
structure, no quotes of its own. Its one check against reality (``tests/test_options_chain.py``)
uses ten SPY contracts traded 2025-08-29 and expiring 2025-09-02, the underlying inferred by
put-call parity at 625, the chain built at the parity minutes nearest 10:00, 11:00, 12:00,
15:00 and 15:30 and compared with each contract's nearest trade (VWAP, within 5 minutes) for
strikes within $15 of spot (the file has none closer than about $9). Measured: 18 pairs,
median |model - trade| **$0.21**, max $0.49; the test asserts a median of at most **$0.35**
(room for trade-price noise, while a model with 1.5x the IV fails at about $0.72; an IV
that is too low would pass, as these out-of-the-money prices are cents).
Read it with care: trades are not mids; the spot is inferred from two trades; expiry was one
trading day plus a holiday weekend away (variance the trading clock does not count); the
in-the-money calls are mostly intrinsic value and so look good whatever the IV; the
out-of-the-money ones (655 C, 635 P) cost cents and came out 2-10x the traded price (median
3.5x, +$0.25 on average): VIX (14.43, a 30-day variance-swap level) was well above that day's
near-term at-the-money IV (about 11-12% on this clock). The default keeps IV = VIX, which is
rich for buyers (conservative for debit structures) and flatters sold premium (credits of
condors); ``mtbt options calibrate`` fits that day at ``atm_iv_ratio`` 0.69, ``skew`` 0.17
(README: what the fit can and cannot tell), and one day is no calibration. Use
the chain to compare structures, not to predict fills to the cent.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from numpy.typing import ArrayLike

from mtbt.options.pricing import Greeks, bs_greeks, bs_price, bs_price_one
from mtbt.sessions import sessions

__all__ = ["ChainModel", "SyntheticChain", "quotes", "years_to_close", "TRADING_DAYS",
           "SESSION_MINUTES"]

TRADING_DAYS = 252
SESSION_MINUTES = 390


@dataclass(frozen=True)
class ChainModel:
    """Settings of the synthetic chain (see the module docstring for the model).

    Attributes
    ----------
    strike_step : strike grid spacing ($1 for SPY/QQQ).
    iv_floor : lowest IV any strike gets (0.08).
    atm_iv_ratio : ATM IV as a multiple of the prior VIX close (1.0: VIX itself).
    skew : IV change per expected move of moneyness, as a fraction of ATM IV (0.15).
    smile : curvature per squared expected move (0.03), turns the far call wing up.
    z_cap : moneyness beyond +/- this many expected moves is treated as the cap (4).
    half_spread_pct : half the bid-ask spread as a fraction of mid (0.03).
    tick : price increment and the smallest half spread ($0.01).
    fee_per_contract : dollars per contract per fill (0.65).
    multiplier : shares per contract (100).
    rate : continuously compounded risk-free rate (0.0).
    """

    strike_step: float = 1.0
    iv_floor: float = 0.08
    atm_iv_ratio: float = 1.0
    skew: float = 0.15
    smile: float = 0.03
    z_cap: float = 4.0
    half_spread_pct: float = 0.03
    tick: float = 0.01
    fee_per_contract: float = 0.65
    multiplier: int = 100
    rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("strike_step", "iv_floor", "atm_iv_ratio", "z_cap", "tick", "multiplier"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ChainModel.{name} must be positive")
        for name in ("skew", "smile", "half_spread_pct", "fee_per_contract"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ChainModel.{name} must be >= 0")


def years_to_close(now: dt.datetime, close: dt.datetime) -> float:
    """Regular-session time from ``now`` to ``close`` in trading years.

    Sums, over the XNYS sessions from ``now``'s date to ``close``'s date, the minutes of
    each session that fall between ``now`` and ``close`` (so today counts from ``now``, full
    sessions count 390 minutes or their early close's fewer, and the expiry session counts
    to ``close``), divided by 252 x 390. Both are naive New York datetimes.
    """
    if close <= now:
        return 0.0
    seconds = 0.0
    for s_open, s_close in _spans(now.date(), close.date()):
        seconds += max((min(s_close, close) - max(s_open, now)).total_seconds(), 0.0)
    return seconds / 60.0 / (TRADING_DAYS * SESSION_MINUTES)


@lru_cache(maxsize=4096)
def _spans(first: dt.date, last: dt.date) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
    """(open, close) of the sessions from ``first`` to ``last`` (cached: called per bar)."""
    return tuple((s.open, s.close) for s in sessions(first, last).values())


def _out(x: np.ndarray) -> float | np.ndarray:
    """A float for 0-d results, the array otherwise."""
    return float(x) if np.ndim(x) == 0 else x


def quotes(model: ChainModel, vix: float, spot: ArrayLike, t: ArrayLike, right: ArrayLike,
           strike: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Model (bid, ask) per share, vectorised over spot, time to expiry (trading years),
    right and strike: the chain's quotes at many moments at once (the allocator values
    structures along simulated paths with it). ``SyntheticChain`` uses the same formula."""
    atm = atm_iv(model, vix)
    m = mid(model, atm, spot, t, right, strike)
    return bid_of(model, m), ask_of(model, m)


def atm_iv(model: ChainModel, vix: float) -> float:
    """At-the-money IV: ``atm_iv_ratio`` x the VIX close (points), floored."""
    return max(model.iv_floor, model.atm_iv_ratio * vix / 100.0)


def moneyness(model: ChainModel, atm: float, spot: ArrayLike, t: ArrayLike,
              strike: ArrayLike) -> np.ndarray:
    """``ln(K/S)`` in ATM expected moves to expiry, clipped to +/- ``z_cap``."""
    k, s = np.asarray(strike, dtype=float), np.asarray(spot, dtype=float)
    sd = atm * np.sqrt(np.maximum(np.asarray(t, dtype=float), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, np.log(k / s) / np.where(sd > 0, sd, 1.0), np.sign(k - s) * np.inf)
    return np.clip(np.nan_to_num(z, nan=0.0), -model.z_cap, model.z_cap)


def implied_vol(model: ChainModel, atm: float, spot: ArrayLike, t: ArrayLike,
                strike: ArrayLike) -> np.ndarray:
    """IV of a strike: skew and smile around the ATM IV by moneyness, then the floor."""
    z = moneyness(model, atm, spot, t, strike)
    return np.maximum(model.iv_floor, atm * (1 - model.skew * z + model.smile * z**2))


def mid(model: ChainModel, atm: float, spot: ArrayLike, t: ArrayLike, right: ArrayLike,
        strike: ArrayLike) -> np.ndarray:
    """Black-Scholes mid per share on the model IV."""
    return bs_price(spot, strike, t, implied_vol(model, atm, spot, t, strike), right, model.rate)


def mid_one(model: ChainModel, atm: float, spot: float, t: float, right: str,
            strike: float) -> float:
    """``mid`` for one contract in plain floats (the same formula, much faster)."""
    sd = atm * math.sqrt(max(t, 0.0))
    if sd > 0:
        z = math.log(strike / spot) / sd
    else:
        z = 0.0 if strike == spot else math.copysign(math.inf, strike - spot)
    z = min(max(z, -model.z_cap), model.z_cap)
    vol = max(model.iv_floor, atm * (1 - model.skew * z + model.smile * z * z))
    if right not in ("C", "P", "c", "p"):
        raise ValueError(f"right must be 'C' or 'P', got {right!r}")
    return bs_price_one(spot, strike, t, vol, right in ("C", "c"), model.rate)


def _half_spread(model: ChainModel, m: np.ndarray) -> np.ndarray:
    return np.maximum(model.half_spread_pct * m, model.tick)


def bid_of(model: ChainModel, m: ArrayLike) -> np.ndarray:
    """Bid for mid ``m``: mid - half spread, rounded down to the tick, never below 0."""
    m = np.asarray(m, dtype=float)
    ticks = np.floor((m - _half_spread(model, m)) / model.tick + 1e-9)
    return np.maximum(np.round(ticks * model.tick, 10), 0.0)


def ask_of(model: ChainModel, m: ArrayLike) -> np.ndarray:
    """Ask for mid ``m``: mid + half spread, rounded up to the tick."""
    m = np.asarray(m, dtype=float)
    ticks = np.ceil((m + _half_spread(model, m)) / model.tick - 1e-9)
    return np.round(ticks * model.tick, 10)


class SyntheticChain:
    """Model quotes for one expiry at one moment.

    Parameters
    ----------
    model : the chain's settings.
    spot : underlying price now.
    vix : the prior session's VIX close in points (15.0 = 15%).
    now, expiry_close : naive New York datetimes; the option expires at ``expiry_close``.
    """

    def __init__(self, model: ChainModel, spot: float, vix: float, now: dt.datetime,
                 expiry_close: dt.datetime) -> None:
        if not (spot > 0 and vix > 0):
            raise ValueError(f"spot and vix must be positive, got {spot} and {vix}")
        self.model, self.spot, self.vix = model, float(spot), float(vix)
        self.now, self.expiry_close = now, expiry_close

    @cached_property
    def t(self) -> float:
        """Time to expiry in trading years."""
        return years_to_close(self.now, self.expiry_close)

    @property
    def expiry(self) -> dt.date:
        """The expiry date (the date of ``expiry_close``)."""
        return self.expiry_close.date()

    @property
    def atm_iv(self) -> float:
        """At-the-money IV: ``atm_iv_ratio`` x prior VIX close, floored."""
        return atm_iv(self.model, self.vix)

    def moneyness(self, strike: ArrayLike) -> float | np.ndarray:
        """``ln(K/S)`` in ATM expected moves, clipped to +/- ``z_cap``."""
        return _out(moneyness(self.model, self.atm_iv, self.spot, self.t, strike))

    def iv(self, strike: ArrayLike) -> float | np.ndarray:
        """Model IV of a strike (skew and smile around the ATM IV, then the floor)."""
        return _out(implied_vol(self.model, self.atm_iv, self.spot, self.t, strike))

    def expected_move(self) -> float:
        """One standard deviation of the underlying to expiry: spot x ATM IV x sqrt(t)."""
        return self.spot * self.atm_iv * math.sqrt(self.t)

    def strikes(self, n: int) -> np.ndarray:
        """``2n + 1`` grid strikes centred on the grid strike nearest spot."""
        if n < 0:
            raise ValueError("n must be >= 0")
        centre = self.nearest_strike(self.spot)
        return np.round(centre + self.model.strike_step * np.arange(-n, n + 1), 10)

    def nearest_strike(self, price: float) -> float:
        """The grid strike nearest ``price``."""
        step = self.model.strike_step
        return float(np.round(round(price / step) * step, 10))

    def mid(self, right: ArrayLike, strike: ArrayLike) -> float | np.ndarray:
        """Model mid price per share."""
        if isinstance(right, str) and np.ndim(strike) == 0:
            return mid_one(self.model, self.atm_iv, self.spot, self.t, right, float(strike))
        return _out(mid(self.model, self.atm_iv, self.spot, self.t, right, strike))

    def greeks(self, right: ArrayLike, strike: ArrayLike) -> Greeks:
        """Greeks per share; theta per trading day (the chain's clock)."""
        return bs_greeks(self.spot, strike, self.t, self.iv(strike), right, self.model.rate,
                         days_per_year=TRADING_DAYS)

    def bid(self, right: ArrayLike, strike: ArrayLike) -> float | np.ndarray:
        """Model bid: mid - half spread, rounded down to the tick, never below 0."""
        return _out(bid_of(self.model, self.mid(right, strike)))

    def ask(self, right: ArrayLike, strike: ArrayLike) -> float | np.ndarray:
        """Model ask: mid + half spread, rounded up to the tick."""
        return _out(ask_of(self.model, self.mid(right, strike)))

    def fill(self, right: str, strike: float, qty: int) -> float:
        """Per-share price paid (``qty > 0``: at the ask) or received (``qty < 0``: the bid)."""
        if qty == 0:
            raise ValueError("qty must be non-zero")
        return float(self.ask(right, strike) if qty > 0 else self.bid(right, strike))

    def __repr__(self) -> str:
        return (f"SyntheticChain(spot={self.spot:.2f}, vix={self.vix:.2f}, now={self.now}, "
                f"expiry_close={self.expiry_close}, t={self.t:.6f})")
