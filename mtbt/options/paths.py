"""The underlying under the strategy's own exits: where and when each simulated path exits.

The allocator values a structure where the scaling exits would close it, so it needs, for
each path of the underlying, the exit events that ``mtbt.exits`` and the strategy produce
on 1-minute closes (``StructureLots.manage_structure``):

1. ``OPEN``: on each close, the hard stop first (``side x (close - stop) <= 0``: all
   contracts, reason ``stop``), then tp1 (``side x (close - tp1) >= 0``: ``tp1_qty``
   contracts, reason ``tp1``; with ``use_scaling`` off the target is tp2 for all).
2. ``SCALED`` from the close after tp1: the stop is at the entry (``breakeven``) and
   ratchets to ``best close x (1 - side x trail_pct)`` (``trail``) once that is beyond it;
   then the stop, then tp2 for the rest.
3. The close at or after the options force close: everything left (``eod``).

A decision on a close fills at the next bar's open, taken to be that close (a continuous
path), at the next bar's time. Levels are rounded to the cent as ``mtbt.exits`` does.

The path model (``PathModel``) is a stated assumption: log returns per minute, normal with
the *realised* 1-minute volatility of recent sessions (not VIX) and a drift in the signal's
direction that is zero unless the run has measured an edge from its own earlier trades
(``edge_drift``). Draws are antithetic and seeded, so a signal gets the same paths in every
run and venue.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mtbt.exits import ExitRules

__all__ = ["ExitEvents", "PathModel", "edge_drift", "exit_events", "realised_sigma",
           "simulate"]

#: Exit reason codes in ``ExitEvents``.
REASONS = ("none", "stop", "tp1", "tp2", "breakeven", "trail", "eod")
_CODE = {name: i for i, name in enumerate(REASONS)}


@dataclass(frozen=True)
class PathModel:
    """Per-minute log-return model of the underlying for one signal.

    Attributes
    ----------
    sigma : standard deviation of a 1-minute log return (realised, e.g. 0.0005).
    drift : mean 1-minute log return in the signal's direction (0: driftless).
    paths : number of simulated paths (even: half are the mirror of the other half).
    seed : the random seed (the same seed gives the same paths).
    """

    sigma: float
    drift: float = 0.0
    paths: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise ValueError(f"sigma must be positive, got {self.sigma}")
        if self.paths < 2:
            raise ValueError(f"paths must be at least 2, got {self.paths}")


@dataclass(frozen=True)
class ExitEvents:
    """Each path's exits (arrays over paths).

    ``step1``/``spot1``/``reason1``: the first exit (the bar index from 0 that decided it,
    the underlying there, a code of ``REASONS``); ``step2``/``spot2``/``reason2``: the exit
    of what remains after tp1 (reason ``none`` and NaN spot where the first exit took all).
    The exit at step k fills ``k + 1`` minutes after the entry.
    """

    step1: np.ndarray
    spot1: np.ndarray
    reason1: np.ndarray
    step2: np.ndarray
    spot2: np.ndarray
    reason2: np.ndarray

    def share(self, reason: str, first: bool = True) -> float:
        """Fraction of paths whose first (or second) exit has ``reason``."""
        codes = self.reason1 if first else self.reason2
        return float(np.mean(codes == _CODE[reason]))

    @property
    def scaled(self) -> np.ndarray:
        """Paths whose first exit is tp1 (the rest exits at the second event)."""
        return self.reason1 == _CODE["tp1"]

    def reasons(self, first: bool = True) -> np.ndarray:
        """The exit reasons as names."""
        return np.asarray(REASONS)[self.reason1 if first else self.reason2]

    @property
    def p_tp1(self) -> float:
        """P(tp1 is reached before the hard stop and the force close)."""
        return self.share("tp1")

    @property
    def p_stop(self) -> float:
        """P(the hard stop closes everything before tp1)."""
        return self.share("stop")


def _first(hit: np.ndarray, default: int) -> np.ndarray:
    """Index of the first True along axis 1, ``default`` where there is none."""
    any_hit = hit.any(axis=1)
    return np.where(any_hit, hit.argmax(axis=1), default)


def _cents(x: np.ndarray | float) -> np.ndarray:
    return np.round(np.asarray(x, dtype=float), 2)


def exit_events(rules: ExitRules, side: int, entry: float, closes: np.ndarray) -> ExitEvents:
    """The exits of a lot entered at ``entry`` along each row of ``closes``.

    ``closes`` is (paths, K): the closes of the K bars after the entry; the last one is the
    bar at the options force close, where whatever is left closes (``eod``). See the module
    docstring for the rules.
    """
    c = np.asarray(closes, dtype=float)
    if c.ndim != 2 or c.shape[1] < 1:
        raise ValueError("closes must be a 2-d array (paths, bars) with at least one bar")
    n, k = c.shape
    last = k - 1
    none = np.full(n, -1), np.full(n, np.nan), np.full(n, _CODE["none"])
    if last == 0:                                          # the entry bar is the force close
        return ExitEvents(np.zeros(n, int), c[:, 0].copy(), np.full(n, _CODE["eod"]), *none)
    stop = _cents(entry * (1 - side * rules.stop_pct))
    tp1 = _cents(entry * (1 + side * (rules.tp1_pct if rules.use_scaling else rules.tp2_pct)))
    tp2 = _cents(entry * (1 + side * rules.tp2_pct))
    live = c[:, :last]
    hit_stop = side * (live - stop) <= 0
    hit_tp = side * (live - tp1) >= 0
    step1 = _first(hit_stop | hit_tp, last)
    rows = np.arange(n)
    took = step1 < last
    stopped = took & hit_stop[rows, np.minimum(step1, last - 1)]
    reason1 = np.full(n, _CODE["eod"])
    reason1[took] = _CODE["tp1" if rules.use_scaling else "tp2"]
    reason1[stopped] = _CODE["stop"]
    spot1 = c[rows, step1]
    step2, spot2, reason2 = none
    scaled = rules.use_scaling & (reason1 == _CODE["tp1"])
    if scaled.any():
        s2, sp2, r2 = _scaled(rules, side, entry, c[scaled], step1[scaled], tp2)
        step2[scaled], spot2[scaled], reason2[scaled] = s2, sp2, r2
    return ExitEvents(step1, spot1, reason1, step2, spot2, reason2)


def _scaled(rules: ExitRules, side: int, entry: float, c: np.ndarray, start: np.ndarray,
            tp2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exit of the rest after tp1 was decided at ``start`` (per row)."""
    n, k = c.shape
    last = k - 1
    cols = np.arange(k)
    after = cols[None, :] > start[:, None]
    fav = np.where(after, side * c, -np.inf)               # favourable direction is up
    best = side * np.maximum.accumulate(fav, axis=1)       # best close since the tp1 fill
    breakeven = _cents(entry)
    level = _cents(best * (1 - side * rules.trail_pct))
    moved = side * (level - breakeven) > 0
    stop = np.where(moved, level, breakeven)
    live = after[:, :last]
    hit_stop = live & (side * (c[:, :last] - stop[:, :last]) <= 0)
    hit_tp2 = live & (side * (c[:, :last] - tp2) >= 0)
    step = _first(hit_stop | hit_tp2, last)
    rows = np.arange(n)
    spot = c[rows, step]
    reason = np.full(n, _CODE["eod"])
    took = step < last
    at = np.minimum(step, last - 1)
    reason[took] = _CODE["tp2"]
    stopped = took & hit_stop[rows, at]
    reason[stopped] = np.where(moved[rows, at], _CODE["trail"], _CODE["breakeven"])[stopped]
    return step, spot, reason


def simulate(rules: ExitRules, side: int, entry: float, bars: int,
             model: PathModel) -> tuple[ExitEvents, np.ndarray]:
    """Simulate ``model.paths`` paths of ``bars`` 1-minute closes from ``entry`` and their
    exits; returns the events and the closes (paths, bars)."""
    if bars < 1:
        raise ValueError(f"bars must be >= 1, got {bars}")
    half = (model.paths + 1) // 2
    rng = np.random.default_rng(model.seed)
    z = rng.standard_normal((half, bars), dtype=np.float32)
    z *= np.float32(model.sigma)
    z.cumsum(axis=1, out=z)                                # float32: ample for 390 steps
    closes = np.empty((2 * half, bars))
    np.exp(z, out=closes[:half])
    np.divide(1.0, closes[:half], out=closes[half:])       # antithetic: the mirrored path
    closes *= entry * np.exp(side * model.drift * np.arange(1, bars + 1))
    return exit_events(rules, side, entry, closes), closes


def realised_sigma(closes: np.ndarray, days: np.ndarray, *, min_returns: int = 30) -> float:
    """Standard deviation of 1-minute log returns within sessions (overnight moves left
    out); NaN with fewer than ``min_returns`` returns. ``days`` labels each close's session."""
    c, d = np.asarray(closes, dtype=float), np.asarray(days)
    if len(c) < 2:
        return math.nan
    r = np.diff(np.log(c))[d[1:] == d[:-1]]
    r = r[np.isfinite(r)]
    return float(np.sqrt(np.mean(r**2))) if len(r) >= min_returns else math.nan


def edge_drift(moves: list[float], minutes: list[float], shrink: float) -> float:
    """Per-minute drift in the signals' direction measured from earlier trades.

    ``moves`` are the underlying's relative moves in each trade's direction from entry to
    its exits (weighted by the share each exit closed) and ``minutes`` the time held, the
    same way. By Wald's identity the expected move of a stopped driftless path is zero and
    with drift mu it is mu x E[time held], so ``sum(moves) / sum(minutes)`` estimates mu
    whatever the exits; it is shrunk towards zero by ``n / (n + shrink)`` for n trades.
    """
    n = len(moves)
    total = float(np.sum(minutes)) if n else 0.0
    if n == 0 or total <= 0:
        return 0.0
    return float(np.sum(moves)) / total * n / (n + shrink)
