"""Option prices from recorded 1-minute option bars, with the synthetic chain where none exist.

``[options] prices`` chooses where a run's option prices come from: ``"model"`` (the
synthetic chain, ``mtbt.options.chain``), ``"recorded"`` (a session's recorded bars, every
traded session covered) or ``"auto"`` (recorded where the store covers the session, the
model elsewhere). ``RecordedPrices`` is the price source a broker's ``Ledger`` holds; its
``chain`` gives, for a moment and an expiry, a ``RecordedChain`` on a covered session and
the ``SyntheticChain`` otherwise. The bars come in as DataFrames of the options bar store's
contract (``feeds/options_store.py``: one row per contract and minute with trades, the
minute's start in New York time); this module reads no file.

The rules
---------
* **Price of a contract.** Bars carry trades, not quotes, so a recorded trade price is
  taken as the *mid* and the quotes are ``price -/+ max(recorded_half_spread_pct x price,
  tick)``, the bid rounded down and the ask up to the tick (the chain's rounding, with its
  tick as the floor). That spread is an assumption, not data.
* **Fills** (at the next bar's open, minute ``T``): the open of the contract's bar of minute
  ``T`` (its first trade of the minute); without one, the last close of its bars of the
  ``stale_minutes`` minutes before ``T``.
* **Marks and decisions** (at a bar's close, time ``C``): the last close of the contract's
  bars of the ``stale_minutes`` minutes before ``C`` (the bar of minute ``C - 1`` first).
* **Staleness.** A contract with no such bar has no recorded price there: that price is the
  model's (``SyntheticChain``), and the ledger counts it (``PriceCounts``).
* **Volume** (``volume``) is the contracts traded in the session before the moment: the sum
  of the contract's bar volumes of the minutes before ``now`` (fills: before ``T``; decisions:
  up to and including the bar that just closed). The model has no volume (None).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from mtbt.options.chain import ChainModel, SyntheticChain, ask_of, bid_of

__all__ = ["PRICE_MODES", "PriceCounts", "RecordedChain", "RecordedPrices", "SessionBars",
           "source_of"]

PRICE_MODES = ("model", "recorded", "auto")
_KEY_DIGITS = 6
_NS_PER_MINUTE = 60_000_000_000


def _key(expiry: dt.date, right: str, strike: float) -> tuple[dt.date, str, float]:
    return expiry, right, round(float(strike), _KEY_DIGITS)


def _minute(when: dt.datetime) -> int:
    """Minutes since the epoch of a naive New York datetime (the store's minutes, alike)."""
    return int(np.datetime64(when.replace(tzinfo=None), "m").astype(np.int64))


@dataclass
class PriceCounts:
    """What priced a run's options, counted (``summary.json``'s ``option_prices``).

    ``fills``/``marks``: leg prices by source, ``"recorded"`` or ``"model"`` (a leg marked at
    one bar's close is one mark); ``sessions``: traded sessions by source; ``unpriced``:
    ``"candidates"`` (structures not entered because a leg had no recorded price) and
    ``"entries"`` (signals no structure could be entered for, for that reason);
    ``liquidity``: candidates dropped per rule (``max_spread_pct``, ``min_bid``,
    ``min_volume``).
    """

    mode: str = "model"
    fills: Counter = field(default_factory=Counter)
    marks: Counter = field(default_factory=Counter)
    sessions: Counter = field(default_factory=Counter)
    unpriced: Counter = field(default_factory=Counter)
    liquidity: Counter = field(default_factory=Counter)

    def recorded_share(self) -> float | None:
        """The share of leg fills at recorded prices (None before any fill)."""
        total = self.fills["recorded"] + self.fills["model"]
        return self.fills["recorded"] / total if total else None

    def as_dict(self) -> dict:
        """JSON-ready counts."""
        def two(c: Counter) -> dict:
            return {"recorded": int(c["recorded"]), "model": int(c["model"])}

        share = self.recorded_share()
        return {"mode": self.mode, "fills": two(self.fills), "marks": two(self.marks),
                "recorded_fill_share": None if share is None else round(share, 4),
                "sessions": two(self.sessions),
                "skipped_no_recorded_price": {"candidates": int(self.unpriced["candidates"]),
                                              "entries": int(self.unpriced["entries"])},
                "liquidity_drops": {rule: int(self.liquidity[rule])
                                    for rule in ("max_spread_pct", "min_bid", "min_volume")}}


class SessionBars:
    """One session's recorded bars, indexed by contract for minute lookups.

    ``frame`` has the store's columns (at least ``timestamp``, ``expiry``, ``right``,
    ``strike``, ``open``, ``close``, ``volume``), ``timestamp`` tz-aware or naive New York.
    """

    def __init__(self, frame) -> None:
        ts = frame["timestamp"]
        stamps = ts.dt.tz_convert("America/New_York").dt.tz_localize(None) \
            if getattr(ts.dt, "tz", None) is not None else ts
        minutes = stamps.to_numpy("datetime64[m]").astype(np.int64)
        self._by: dict[tuple, tuple[np.ndarray, ...]] = {}
        keys = list(zip(frame["expiry"], frame["right"].astype(str),
                        frame["strike"].astype(float), strict=True))
        groups: dict[tuple, list[int]] = {}
        for i, (e, r, k) in enumerate(keys):
            e = e if isinstance(e, dt.date) else dt.date.fromisoformat(str(e)[:10])
            groups.setdefault(_key(e, r, k), []).append(i)
        opens, closes = frame["open"].to_numpy(float), frame["close"].to_numpy(float)
        volume = frame["volume"].to_numpy(float)
        for key, rows in groups.items():
            rows = np.asarray(rows)
            order = rows[np.argsort(minutes[rows], kind="stable")]
            self._by[key] = (minutes[order], opens[order], closes[order],
                             np.cumsum(volume[order]))

    def __contains__(self, key: tuple) -> bool:
        return key in self._by

    def price(self, key: tuple, minute: int, stale: int, at_open: bool) -> float | None:
        """The recorded price of a contract at ``minute`` (see the module docstring): the
        open of that minute's bar when ``at_open``, else (or without one) the last close of
        the bars of the ``stale`` minutes before it; None when there is none."""
        found = self._by.get(key)
        if found is None:
            return None
        minutes, opens, closes, _ = found
        i = int(np.searchsorted(minutes, minute, side="left"))
        if at_open and i < len(minutes) and minutes[i] == minute:
            return float(opens[i])
        if i > 0 and minutes[i - 1] >= minute - stale:
            return float(closes[i - 1])
        return None

    def volume(self, key: tuple, minute: int) -> float:
        """Contracts traded in the bars of the minutes before ``minute``."""
        found = self._by.get(key)
        if found is None:
            return 0.0
        minutes, _, _, cumulative = found
        i = int(np.searchsorted(minutes, minute, side="left"))
        return float(cumulative[i - 1]) if i else 0.0


class RecordedChain(SyntheticChain):
    """``SyntheticChain``'s interface with recorded prices (module docstring): ``mid`` is the
    recorded price, ``bid``/``ask`` that price -/+ the modelled half spread; a contract
    without a recorded price here is priced by the model. ``at_open``: a fill at the open of
    the minute ``now`` (else a mark or decision at the close time ``now``)."""

    recorded = True
    price_name = "recorded price"      # what a missing price is called in the allocator's text

    def __init__(self, model: ChainModel, spot: float, vix: float, now: dt.datetime,
                 expiry_close: dt.datetime, *, bars: SessionBars, stale_minutes: int,
                 half_spread_pct: float, at_open: bool = False) -> None:
        super().__init__(model, spot, vix, now, expiry_close)
        self.bars, self.stale_minutes, self.at_open = bars, int(stale_minutes), at_open
        self.quote_model = dataclasses.replace(model, half_spread_pct=half_spread_pct)
        self._minute = _minute(now)
        self._prices: dict[tuple, float | None] = {}

    def price(self, right: str, strike: float) -> float | None:
        """The contract's recorded price here, or None (no bar within ``stale_minutes``)."""
        key = _key(self.expiry, right, strike)
        if key not in self._prices:
            self._prices[key] = self.bars.price(key, self._minute, self.stale_minutes,
                                                self.at_open)
        return self._prices[key]

    def has_price(self, right: str, strike: float) -> bool:
        return self.price(right, strike) is not None

    def volume(self, right: str, strike: float) -> float:
        """Contracts of this one traded in the session before now (module docstring)."""
        return self.bars.volume(_key(self.expiry, right, strike), self._minute)

    def _each(self, right: ArrayLike, strike: ArrayLike,
              one: Callable[[str, float], float]) -> float | np.ndarray:
        if isinstance(right, str) and np.ndim(strike) == 0:
            return one(right, float(strike))
        r, k = np.broadcast_arrays(np.asarray(right), np.asarray(strike, dtype=float))
        return np.array([one(str(a), float(b)) for a, b in zip(r.ravel(), k.ravel(),
                                                                strict=True)]).reshape(r.shape)

    def mid(self, right: ArrayLike, strike: ArrayLike) -> float | np.ndarray:
        def one(r: str, k: float) -> float:
            p = self.price(r, k)
            return float(SyntheticChain.mid(self, r, k)) if p is None else p
        return self._each(right, strike, one)

    def bid(self, right: ArrayLike, strike: ArrayLike) -> float | np.ndarray:
        def one(r: str, k: float) -> float:
            p = self.price(r, k)
            return float(SyntheticChain.bid(self, r, k) if p is None
                         else bid_of(self.quote_model, p))
        return self._each(right, strike, one)

    def ask(self, right: ArrayLike, strike: ArrayLike) -> float | np.ndarray:
        def one(r: str, k: float) -> float:
            p = self.price(r, k)
            return float(SyntheticChain.ask(self, r, k) if p is None
                         else ask_of(self.quote_model, p))
        return self._each(right, strike, one)

    def __repr__(self) -> str:
        return f"Recorded{super().__repr__()}"


Mode = Literal["model", "recorded", "auto"]


class RecordedPrices:
    """A run's option price source: recorded bars on the sessions in ``days``, the model
    elsewhere (``mode`` "auto"; "recorded" runs were checked to cover every traded session).

    ``load(day)`` gives a session's bars (a DataFrame of the store's contract); sessions are
    loaded when first priced and the last two kept. ``counts`` is the run's ``PriceCounts``.
    """

    def __init__(self, mode: Mode, days: Iterable[dt.date], load: Callable[[dt.date], object],
                 *, stale_minutes: int = 5, half_spread_pct: float = 0.01,
                 counts: PriceCounts | None = None) -> None:
        if mode not in PRICE_MODES:
            raise ValueError(f"mode must be one of {PRICE_MODES}, got {mode!r}")
        if stale_minutes < 1:
            raise ValueError(f"stale_minutes must be >= 1, got {stale_minutes}")
        self.mode, self.days, self.load = mode, frozenset(days), load
        self.stale_minutes, self.half_spread_pct = stale_minutes, half_spread_pct
        self.counts = counts or PriceCounts(mode)
        self._cache: dict[dt.date, SessionBars] = {}

    def covers(self, day: dt.date) -> bool:
        return self.mode != "model" and day in self.days

    def session(self, day: dt.date) -> SessionBars:
        if day not in self._cache:
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[day] = SessionBars(self.load(day))
        return self._cache[day]

    def chain(self, model: ChainModel, spot: float, vix: float, now: dt.datetime,
              expiry_close: dt.datetime, *, at_open: bool = False) -> SyntheticChain:
        """The chain at ``now``: recorded on a covered session, the model's otherwise."""
        if not self.covers(now.date()):
            return SyntheticChain(model, spot, vix, now, expiry_close)
        return RecordedChain(model, spot, vix, now, expiry_close, bars=self.session(now.date()),
                             stale_minutes=self.stale_minutes,
                             half_spread_pct=self.half_spread_pct, at_open=at_open)


def source_of(chain: SyntheticChain, right: str, strike: float) -> str:
    """``"recorded"`` when ``chain`` prices the contract from a recorded bar, else
    ``"model"``."""
    return "recorded" if isinstance(chain, RecordedChain) and chain.has_price(right, strike) \
        else "model"
