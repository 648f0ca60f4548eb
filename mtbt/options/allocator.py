"""Choose the option structure for a directional signal by expected value under the exits.

Candidates for ``side`` +1 are calls, for -1 their put twins. With ``L(o)`` the grid strike
nearest ``spot x (1 + side x o)`` for each placement ``o`` in ``offsets`` (default at the
money, +0.5%, +1%, +2%) and ``w`` the wing width:

* a long option at each ``L(o)``;
* a debit spread from each ``L(o)`` to each level further out;
* a butterfly centred on each ``L(o)`` with wings ``w``;
* a broken-wing butterfly centred on each ``L(o)``, near wing ``w``, far wing ``2w``.

Each is bought at the chain's executable prices (ask for longs, bid for shorts) and fees,
and a candidate that would sell a leg at a zero bid is dropped. On a chain of recorded prices
(``mtbt.options.recorded``) a candidate with a leg that has no recorded price now is dropped
(it would be priced by the model), and so is one with a leg that fails the liquidity rules
(``Liquidity``: ``max_spread_pct``, ``min_bid``, ``min_volume``; they apply to the model's
quotes too, where ``min_volume`` does not, the model having no volume). Each drop is named in
the candidate's ``reason`` and ``code``. The entry premium is then the recorded one, while
the exits along the paths (below) are valued on the model's quotes: a market priced below the
model shows up as edge, so read such runs with the calibration of the chain in mind.

Its **worst-case loss**
(``ev.worst_loss``: closed at its worst executable price while the strategy may hold it,
fees both ways) sizes it: ``contracts = floor(budget / worst-case per contract)``. Its
**expected value** is the mean net PnL of that position over simulated paths of the
underlying, closed where the strategy's exits would close it (``mtbt.options.paths``), at
the executable prices there. ``score = EV / worst-case loss`` (both for the position).

The pick is the best score among candidates no other candidate dominates (a higher EV with
an equal or smaller worst-case loss). When the best score is below ``min_edge`` there is no
pick (``fallback`` is set: the strategy then trades shares or skips, as configured).
``score="reward_risk"`` keeps the older rule for comparison: the mean payoff if tp1 and tp2
are reached, less premium and fees, over the worst-case loss; it ignores how likely the
targets are, and so favours cheap butterflies centred on them.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mtbt.exits import ExitRules
from mtbt.options import structures as st
from mtbt.options.chain import SyntheticChain
from mtbt.options.ev import Quotes, pnl_per_unit, worst_grid, worst_loss, years_after
from mtbt.options.paths import ExitEvents, PathModel, simulate
from mtbt.options.recorded import RecordedChain
from mtbt.options.structures import Leg, Structure

__all__ = ["Allocation", "AllocatorSettings", "Candidate", "Liquidity", "allocate",
           "candidates", "leg_problem"]

OFFSETS = (0.0, 0.005, 0.01, 0.02)
_RULES = ExitRules()


@dataclass(frozen=True)
class Liquidity:
    """What every leg of a structure to open must pass (0 switches a rule off).

    ``max_spread_pct``: the highest ``(ask - bid) / mid``, mid the middle of bid and ask (on
    recorded bars the spread is the modelled one, so this bites where the tick floor
    dominates); ``min_bid``: the lowest bid in dollars; ``min_volume``: the fewest contracts
    traded in the session before now (recorded bars only: the model has no volume).
    """

    max_spread_pct: float = 0.0
    min_bid: float = 0.0
    min_volume: int = 0

    @property
    def active(self) -> bool:
        return bool(self.max_spread_pct or self.min_bid or self.min_volume)


NO_RECORDED_PRICE = "no_recorded_price"


def leg_problem(chain: SyntheticChain, leg: Leg, rules: Liquidity) -> tuple[str, str] | None:
    """Why ``leg`` may not be opened on ``chain``: ``(code, text)``, code
    ``"no_recorded_price"`` or the liquidity rule's key; None when it may."""
    name = f"{leg.right}{leg.strike:g}"
    recorded = isinstance(chain, RecordedChain)
    if recorded and not chain.has_price(leg.right, leg.strike):
        return NO_RECORDED_PRICE, (f"no {chain.price_name} for {name} within "
                                   f"{chain.stale_minutes} min")
    if not rules.active:
        return None
    bid, ask = float(chain.bid(leg.right, leg.strike)), float(chain.ask(leg.right, leg.strike))
    if rules.min_bid and bid < rules.min_bid:
        return "min_bid", f"min_bid: {name} bid {bid:.2f} < {rules.min_bid:g}"
    if rules.max_spread_pct:
        mid = (bid + ask) / 2
        spread = (ask - bid) / mid if mid > 0 else math.inf
        if spread > rules.max_spread_pct + 1e-12:
            return "max_spread_pct", (f"max_spread_pct: {name} spread {bid:.2f}/{ask:.2f} = "
                                      f"{spread:.1%} > {rules.max_spread_pct:.1%}")
    if rules.min_volume and recorded:
        volume = chain.volume(leg.right, leg.strike)
        if volume < rules.min_volume:
            return "min_volume", (f"min_volume: {name} traded {volume:g} today < "
                                  f"{rules.min_volume}")
    return None


@dataclass(frozen=True)
class AllocatorSettings:
    """The ``[options]`` keys that steer the allocator (see ``runs/default.toml``).

    ``score``: "ev" or "reward_risk"; ``min_edge``: the lowest score to pick; ``fallback``:
    "shares" or "skip" when nothing reaches it (or, on recorded prices, when no candidate has
    a recorded price for every leg); ``paths``/``seed``: the Monte Carlo;
    ``vol_sessions``: sessions of 1-minute returns for the realised volatility; ``edge``:
    "none" (driftless) or "signals" (a drift measured from the run's earlier trades, shrunk by
    ``edge_shrink`` pseudo-trades); ``gap``: how far beyond the stop and tp2 the worst case
    looks (fraction of spot); ``liquidity``: the rules every leg must pass.
    """

    score: str = "ev"
    min_edge: float = 0.0
    fallback: str = "shares"
    paths: int = 2000
    seed: int = 7
    vol_sessions: int = 5
    edge: str = "none"
    edge_shrink: float = 20.0
    gap: float = 0.005
    liquidity: Liquidity = Liquidity()


@dataclass(frozen=True)
class Candidate:
    """A priced, sized and valued structure; ``reason`` says why it was dropped (None: kept)
    and ``code`` which rule dropped it where it is a price rule (``leg_problem``'s codes).

    ``premium`` is per share (debit > 0), ``fees`` dollars per unit per fill,
    ``worst_loss`` dollars per contract, ``ev`` dollars for the position of ``contracts``.
    """

    structure: Structure
    premium: float
    fees: float
    worst_loss: float
    contracts: int = 0
    ev: float = math.nan
    p_profit: float = math.nan
    score: float = math.nan
    reason: str | None = None
    code: str | None = None

    @property
    def kept(self) -> bool:
        return self.reason is None

    @property
    def position_worst(self) -> float:
        """Worst-case loss of the whole position in dollars."""
        return self.contracts * self.worst_loss

    def describe(self) -> str:
        if not self.kept:
            return f"{self.structure.label} dropped ({self.reason})"
        return (f"{self.structure.label} x{self.contracts} EV {self.ev:+,.2f} "
                f"P>0 {self.p_profit:.0%} worst ${self.position_worst:,.0f} "
                f"score {self.score:+.3f}")


@dataclass(frozen=True)
class Allocation:
    """The pick (``best``, None when none), every candidate and the paths' exit odds."""

    best: Candidate | None
    candidates: tuple[Candidate, ...]
    side: int
    underlying: float
    budget: float
    why: str
    fallback: bool = False      # kept candidates exist but none reached min_edge, or none
    #                             had a recorded price for every leg
    p_tp1: float = math.nan
    p_stop: float = math.nan
    no_recorded_price: bool = False   # no pick because legs lacked recorded prices

    def describe(self) -> str:
        """One journal line: the odds, the pick and why, every candidate's figures."""
        head = (f"{'long' if self.side > 0 else 'short'} @ {self.underlying:.2f}, budget "
                f"${self.budget:,.0f}, P(tp1) {self.p_tp1:.0%}, P(stop) {self.p_stop:.0%}: ")
        head += f"PICK {self.best.describe()}" if self.best else "NO PICK"
        return f"{head} ({self.why}) | " + "; ".join(c.describe() for c in self.candidates)


def candidates(side: int, chain: SyntheticChain, *, offsets: Sequence[float] = OFFSETS,
               width: float) -> list[Structure]:
    """The structures to consider for a signal (see the module docstring)."""
    exp, call = chain.expiry, side > 0
    levels = list(dict.fromkeys(chain.nearest_strike(chain.spot * (1 + side * o))
                                for o in sorted(offsets)))
    w = max(float(width), chain.model.strike_step)
    single, spread = (st.long_call, st.call_debit_spread) if call else (st.long_put,
                                                                         st.put_debit_spread)
    fly, bwb = (st.call_butterfly, st.call_bwb) if call else (st.put_butterfly, st.put_bwb)
    out = [single(exp, lv) for lv in levels]
    out += [spread(exp, a, b) for i, a in enumerate(levels) for b in levels[i + 1:]]
    out += [fly(exp, lv, w) for lv in levels if lv - w > 0]
    out += [bwb(exp, lv, w, 2 * w) for lv in levels if lv - 2 * w > 0]
    return out


def _price(s: Structure, chain: SyntheticChain, budget: float, now: Quotes, grid: Quotes,
           held: Mapping[tuple, int], liquidity: Liquidity) -> Candidate:
    premium, fees = float(now.open_premium(s)), s.fees(chain)
    worst = worst_loss(s, chain, premium, grid) * chain.model.multiplier
    c = Candidate(s, premium, fees, worst)
    for leg in s.legs:
        problem = leg_problem(chain, leg, liquidity)
        if problem is not None:
            return dataclasses.replace(c, code=problem[0], reason=problem[1])
    if any(leg.qty < 0 and now.leg(leg.right, leg.strike)[0] <= 0 for leg in s.legs):
        return dataclasses.replace(c, reason="sells a leg at a zero bid")
    for leg in s.legs:
        if held.get((leg.right, leg.strike, leg.expiry), 0) * leg.qty < 0:
            return dataclasses.replace(c, reason=f"{leg.right}{leg.strike:g} is held the "
                                                 "other way")
    if not worst > 0:
        return dataclasses.replace(c, reason="no risk at these quotes (crossed?)")
    contracts = int(math.floor(budget / worst + 1e-9))
    if contracts < 1:
        return dataclasses.replace(c, reason=f"one contract risks ${worst:,.2f} > budget "
                                             f"${budget:,.2f}")
    return dataclasses.replace(c, contracts=contracts)


def _value(c: Candidate, side: int, chain: SyntheticChain, events: ExitEvents, q1: Quotes,
           q2: Quotes | None, rules: ExitRules, score: str) -> Candidate:
    n, mult = c.contracts, chain.model.multiplier
    share = max(1, n // 2) / n if rules.use_scaling else 1.0
    pnl = pnl_per_unit(c.structure, chain, c.premium, events, q1, q2, share)
    ev = n * float(pnl.mean())
    if score == "reward_risk":
        targets = chain.spot * (1 + side * np.array([rules.tp1_pct, rules.tp2_pct]))
        reward = float(np.mean(c.structure.payoff(targets))) - c.premium - 2 * c.fees / mult
        value = reward * mult / c.worst_loss
    else:
        value = ev / c.position_worst
    return dataclasses.replace(c, ev=ev, p_profit=float(np.mean(pnl > 0)), score=value)


def _undominated(kept: list[Candidate]) -> list[Candidate]:
    return [a for a in kept if not any(b.ev > a.ev and b.position_worst <= a.position_worst
                                       + 1e-9 for b in kept)]


def allocate(side: int, chain: SyntheticChain, budget: float, *, bars: int, model: PathModel,
             rules: ExitRules = _RULES, offsets: Sequence[float] = OFFSETS,
             width: float | None = None, held: Mapping[tuple, int] | None = None,
             min_edge: float = 0.0, gap: float = 0.005, score: str = "ev",
             liquidity: Liquidity = Liquidity()) -> Allocation:
    """Price, size and value the candidates for a signal and pick one (module docstring).

    Parameters
    ----------
    side : +1 (calls) or -1 (puts).
    chain : quotes now, at the entry, for the expiry to trade (``chain.spot`` is the entry).
    budget : dollars the position may lose at most (worst case, all contracts together).
    bars : 1-minute bars from the entry to the options force close.
    model : the underlying's path model (realised volatility, drift, paths, seed).
    rules : the scaling exits the strategy will run.
    offsets : strike placements as fractions of spot in the signal's direction.
    width : butterfly wing in dollars; default ``spot x tp1_pct`` on the grid.
    held : contracts already held, ``(right, strike, expiry) -> signed qty``; a candidate
        that would trade one of them the other way is dropped.
    min_edge : the lowest score a pick may have.
    gap : how far beyond the stop and tp2 (fraction of spot) the worst case looks.
    score : "ev" (expected value over worst case) or "reward_risk" (the older rule).
    liquidity : the rules every leg must pass (``leg_problem``; off by default).
    """
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, got {side}")
    if not budget >= 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if score not in ("ev", "reward_risk"):
        raise ValueError(f"score must be 'ev' or 'reward_risk', got {score!r}")
    spot = chain.spot
    stop, tp2 = spot * (1 - side * rules.stop_pct), spot * (1 + side * rules.tp2_pct)
    lo, hi = sorted((stop, tp2))
    lo, hi = lo * (1 - gap), hi * (1 + gap)
    if width is None:
        width = chain.nearest_strike(spot * rules.tp1_pct)
    structures = candidates(side, chain, offsets=offsets, width=width)
    legs = [(leg.right, leg.strike) for s in structures for leg in s.legs]
    now = _quotes_now(chain, legs)
    grid = worst_grid(chain, legs, lo=lo, hi=hi, bars=bars)
    priced = [_price(s, chain, budget, now, grid, held or {}, liquidity) for s in structures]
    events, _ = simulate(rules, side, spot, bars, model)
    kept = [c for c in priced if c.kept]
    legs = [(leg.right, leg.strike) for c in kept for leg in c.structure.legs]
    q1 = Quotes(chain, events.spot1, years_after(chain, events.step1 + 1), legs)
    scaled = events.scaled
    q2 = Quotes(chain, events.spot2[scaled], years_after(chain, events.step2[scaled] + 1),
                legs) if scaled.any() else None
    valued = {id(c): _value(c, side, chain, events, q1, q2, rules, score) for c in kept}
    cands = tuple(valued.get(id(c), c) for c in priced)
    return _pick(cands, side, spot, budget, min_edge, score, events)


def _quotes_now(chain: SyntheticChain, legs: list[tuple[str, float]]) -> Quotes:
    """The legs' quotes now: the model's at the chain's spot and time, replaced by the
    chain's own where it has recorded prices."""
    now = Quotes(chain, chain.spot, chain.t, legs)
    if isinstance(chain, RecordedChain):
        for row, (right, strike) in enumerate(dict.fromkeys(legs)):   # Quotes' row order
            now.bid[row] = chain.bid(right, strike)
            now.ask[row] = chain.ask(right, strike)
    return now


def _pick(cands: tuple[Candidate, ...], side: int, spot: float, budget: float,
          min_edge: float, score: str, events: ExitEvents) -> Allocation:
    kept = [c for c in cands if c.kept]
    odds = dict(p_tp1=events.p_tp1, p_stop=events.p_stop)
    if not kept:
        if cands and any(c.code == NO_RECORDED_PRICE for c in cands):
            why = (f"no candidate fits ({sum(c.code == NO_RECORDED_PRICE for c in cands)} of "
                   f"{len(cands)} lack a recorded price)")
            return Allocation(None, cands, side, spot, budget, why, fallback=True,
                              no_recorded_price=True, **odds)
        return Allocation(None, cands, side, spot, budget, "no candidate fits", **odds)
    pool = _undominated(kept) if score == "ev" else kept
    best = max(pool, key=lambda c: c.score)
    if best.score < min_edge:
        why = f"best score {best.score:+.3f} ({best.structure.label}) < min_edge {min_edge:+.3f}"
        return Allocation(None, cands, side, spot, budget, why, fallback=True, **odds)
    why = (f"best {score} score of {len(pool)} undominated of {len(kept)} kept"
           if score == "ev" else f"best reward-to-risk of {len(kept)} kept")
    return Allocation(best, cands, side, spot, budget, why, **odds)
