"""Choose the option structure for a directional signal: best reward-to-risk within a budget.

Candidates for ``side`` +1 are calls, for -1 their put twins. With ``atm`` the grid strike
nearest the underlying, ``L1, L2, ...`` the grid strikes nearest the target levels
``underlying x (1 + side x tp)`` and ``w`` the wing ``width``:

* ``long_call`` / ``long_put`` at ``atm``;
* ``*_debit_spread`` from ``atm`` to each target level ``Li`` (skipped when ``Li == atm``);
* ``*_butterfly`` centred on each ``Li`` with wings ``w``;
* ``*_bwb`` centred on each ``Li``, the near wing ``w`` towards spot and the far wing ``2w``
  beyond the target.

Each is priced at honest fills (buy at the ask, sell at the bid) plus fees. Scores per
share, the fees of opening AND closing included (mtbt's strategies close every structure
before its expiry, at the options force close at the latest): ``reward`` = mean over the
target moves of ``payoff - premium - 2 fees/multiplier``; ``risk`` = ``max_loss(premium) +
2 fees/multiplier``; ``reward_risk = reward / risk``. The reward assumes the targets are
reached and is not weighted by how likely that is, which favours cheap butterflies centred
on them (the issue asks for exactly this score). ``contracts = floor(budget / max loss per
contract in dollars)``; a candidate that cannot fit one contract, or whose loss is unbounded or
non-positive, is dropped with a ``reason``.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mtbt.options import structures as st
from mtbt.options.chain import SyntheticChain
from mtbt.options.structures import Structure

__all__ = ["Allocation", "Candidate", "allocate"]


@dataclass(frozen=True)
class Candidate:
    """A priced structure and its scores; ``reason`` says why it was dropped (None: kept).

    ``premium``, ``reward`` and ``risk`` are per share; ``fees`` and
    ``max_loss_per_contract`` are dollars per unit (one contract of each leg).
    """

    structure: Structure
    premium: float
    fees: float
    reward: float
    risk: float
    max_loss_per_contract: float
    contracts: int
    reward_risk: float
    reason: str | None = None

    @property
    def kept(self) -> bool:
        """Whether the candidate fits the budget and has a bounded, positive risk."""
        return self.reason is None


@dataclass(frozen=True)
class Allocation:
    """The chosen candidate (``best``, None when none is kept) and all candidates."""

    best: Candidate | None
    candidates: tuple[Candidate, ...]
    side: int = 0
    underlying: float = math.nan
    budget: float = math.nan

    def describe(self) -> str:
        """One line: the choice and every candidate's score (for the journal and log)."""
        head = f"{'long' if self.side > 0 else 'short'} @ {self.underlying:.2f}, " \
               f"budget ${self.budget:,.0f}: "
        if self.best is None:
            head += "no structure fits"
        else:
            b = self.best
            head += (f"{b.structure.label} x{b.contracts} at {b.premium:+.2f}/sh, max loss "
                     f"${b.max_loss_per_contract * b.contracts:,.0f}, R:R {b.reward_risk:.2f}")
        scores = "; ".join(
            f"{c.structure.label} {c.reward_risk:.2f}" if c.kept
            else f"{c.structure.label} dropped ({c.reason})" for c in self.candidates)
        return f"{head} | {scores}"


def _candidates(side: int, underlying: float, chain: SyntheticChain,
                targets: Sequence[float], width: float | None) -> list[Structure]:
    exp, right_call = chain.expiry, side > 0
    atm = chain.nearest_strike(underlying)
    levels = list(dict.fromkeys(chain.nearest_strike(underlying * (1 + side * tp))
                                for tp in targets))
    if width is None:
        width = chain.nearest_strike(underlying * min(targets))
    w = max(float(width), chain.model.strike_step)
    out = [st.long_call(exp, atm) if right_call else st.long_put(exp, atm)]
    spread = st.call_debit_spread if right_call else st.put_debit_spread
    out += [spread(exp, atm, lv) for lv in levels if lv != atm]
    fly = st.call_butterfly if right_call else st.put_butterfly
    bwb = st.call_bwb if right_call else st.put_bwb
    out += [fly(exp, lv, w) for lv in levels if lv - w > 0]
    out += [bwb(exp, lv, w, 2 * w) for lv in levels if lv - 2 * w > 0]
    return out


def _score(s: Structure, chain: SyntheticChain, moves: np.ndarray, budget: float) -> Candidate:
    mult = chain.model.multiplier
    premium, fees = s.fill(chain), s.fees(chain)
    cost = premium + 2 * fees / mult
    reward = float(np.mean(s.payoff(moves))) - cost
    risk = s.max_loss(premium) + 2 * fees / mult
    mlpc = risk * mult
    rr = reward / risk if math.isfinite(risk) and risk > 0 else math.nan
    reason = None
    if not math.isfinite(risk):
        reason = "unbounded loss"
    elif risk <= 0:
        reason = "no risk at these fills (quotes look crossed)"
    elif mlpc > budget:
        reason = f"one contract risks ${mlpc:,.2f} > budget ${budget:,.2f}"
    contracts = int(math.floor(budget / mlpc + 1e-9)) if reason is None else 0
    return Candidate(s, premium, fees, reward, risk, mlpc, contracts, rr, reason)


def _crossing(c: Candidate, held: Mapping[tuple, int]) -> Candidate:
    for leg in c.structure.legs:
        qty = held.get((leg.right, leg.strike, leg.expiry), 0)
        if qty * leg.qty < 0 and c.kept:
            return dataclasses.replace(
                c, contracts=0, reason=f"{leg.right}{leg.strike:g} is held the other way")
    return c


def allocate(side: int, underlying: float, chain: SyntheticChain, budget: float, *,
             targets: Sequence[float] = (0.01, 0.02), width: float | None = None,
             held: Mapping[tuple, int] | None = None) -> Allocation:
    """Build, price and score the candidates for a signal; pick the best reward-to-risk.

    Parameters
    ----------
    side : +1 (calls) or -1 (puts).
    underlying : the underlying price the targets are measured from.
    chain : quotes for the expiry to trade.
    budget : dollars the position may lose at most (all contracts together).
    targets : take-profit moves as fractions of ``underlying`` (tp1, tp2, ...).
    width : butterfly wing in dollars; default ``underlying x min(targets)`` on the strike
        grid (at least one strike step).
    held : contracts already held, ``(right, strike, expiry) -> signed qty``; a candidate
        that would trade one of them the other way is dropped (a broker nets each contract,
        so one cannot be held long and short at once).

    Returns
    -------
    Allocation with ``best`` the kept candidate of highest ``reward_risk`` (first on ties).
    """
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, got {side}")
    if not targets or any(not tp > 0 for tp in targets):
        raise ValueError(f"targets must be positive fractions, got {targets}")
    if not (underlying > 0 and budget >= 0):
        raise ValueError(f"underlying must be > 0 and budget >= 0, got {underlying}, {budget}")
    moves = underlying * (1 + side * np.asarray(targets, dtype=float))
    cands = tuple(_crossing(_score(s, chain, moves, budget), held or {})
                  for s in _candidates(side, underlying, chain, targets, width))
    kept = [c for c in cands if c.kept]
    best = max(kept, key=lambda c: c.reward_risk) if kept else None
    return Allocation(best, cands, side, float(underlying), float(budget))
