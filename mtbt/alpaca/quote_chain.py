"""Option prices from Alpaca's live quotes, for the paper trader: ``QuotePrices``, ``QuoteChain``.

With ``[options] prices`` "recorded" or "auto", ``mtbt paper`` chooses, sizes, marks and exits
option structures on the latest quotes (``mtbt.alpaca.quotes.OptionQuotes``, feed ``[options]
quotes_feed``) instead of the synthetic chain. ``QuotePrices`` is the price source the
broker's ``Ledger`` holds (as a backtest's holds ``RecordedPrices``); its ``chain`` gives a
``QuoteChain``, ``SyntheticChain``'s interface priced by the quotes.

The rules
---------
* **When.** The quotes of an expiry are asked once per bar, the first time a chain of that
  expiry is wanted at the bar's close: the ledger marks the structures held before the
  strategy decides, so on a bar with structures that is the marks' request and the strategy
  decides on the same quotes; a bar where nothing is priced asks nothing. Bars before the
  feed is live (the history of the warm-up or of a restart) are priced by the model: the
  quotes of now are not the prices of then.
* **Which contracts.** One request: the legs held of that expiry, and the strikes the
  allocator and the condor choose from, on the chain's strike grid: calls from ``spot x (1 -
  near)`` to ``spot x (1 + far)``, puts from ``spot x (1 - far)`` to ``spot x (1 + near)``
  (``quote_band``: about 60 to 90 symbols for SPY, Alpaca's limit being 100 a request). A
  contract outside them is asked on its own the first time it is priced on that bar.
* **Prices.** A quoted contract's bid and ask are the quote's and its mid their middle. A
  contract without a usable quote (``OptionQuotes``: absent, empty, older than
  ``stale_minutes``, or its request failed) is priced by the model; the ledger counts each
  mark by source (``PriceCounts``: ``"recorded"`` there means a live quote) and
  ``OptionQuotes`` logs each request's missing symbols in one line.
* **Entries.** As on recorded prices, a candidate with a leg that has no quote is dropped
  (``allocator.leg_problem``, code ``no_recorded_price``). ``max_spread_pct`` and ``min_bid``
  judge the real quotes; ``min_volume`` is not applied: latest quotes carry no volume (nor
  does alpaca-py's option snapshot), so the volume is unknown, as on the model.
* **Fills** are Alpaca's own. A chain asked for a fill (``at_open``: the ledger's fees) is the
  model's, and no quote is asked for it.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.occ import occ_symbol
from mtbt.options.recorded import PriceCounts, RecordedChain

if TYPE_CHECKING:
    from mtbt.alpaca.quotes import OptionQuote, OptionQuotes

__all__ = ["NEAR", "FAR", "QuoteChain", "QuotePrices", "quote_band"]

#: the band of strikes asked each bar, as fractions of spot (see ``quote_band``): the
#: allocator's candidates reach 2% beyond spot plus two butterfly wings of tp1 (1%) each way,
#: one wing behind it; the condor's shorts one expected move away and its wings beyond
NEAR, FAR = 0.015, 0.045
_DIGITS = 6
Key = tuple[str, float]              # (right, strike) within one expiry


def quote_band(spot: float, step: float, near: float = NEAR, far: float = FAR
               ) -> list[Key]:
    """The contracts asked each bar: calls from ``spot x (1 - near)`` to ``spot x (1 +
    far)``, puts from ``spot x (1 - far)`` to ``spot x (1 + near)``, on the ``step`` grid."""
    def grid(lo: float, hi: float) -> list[float]:
        first, last = math.floor(lo / step), math.ceil(hi / step)
        return [round(k * step, _DIGITS) for k in range(first, last + 1) if k * step > 0]

    return ([("C", k) for k in grid(spot * (1 - near), spot * (1 + far))]
            + [("P", k) for k in grid(spot * (1 - far), spot * (1 + near))])


class QuoteChain(RecordedChain):
    """``SyntheticChain``'s interface priced by live quotes (module docstring): ``bid``/``ask``
    the quote's, ``mid`` their middle; a contract without a quote is priced by the model.

    It is a ``RecordedChain`` to the allocator and the ledger: ``has_price`` says whether a
    contract is quoted (the allocator drops a candidate whose leg is not), ``source_of``
    counts a quoted price as ``"recorded"``. ``quote(right, strike)`` gives the
    ``OptionQuote`` or None.
    """

    price_name = "live quote"

    def __init__(self, model: ChainModel, spot: float, vix: float, now: dt.datetime,
                 expiry_close: dt.datetime, *,
                 quote: Callable[[str, float], OptionQuote | None],
                 stale_minutes: int) -> None:
        SyntheticChain.__init__(self, model, spot, vix, now, expiry_close)
        self.stale_minutes, self.at_open = int(stale_minutes), False
        self._quote = quote

    def quote(self, right: str, strike: float) -> OptionQuote | None:
        """The contract's latest quote at this bar, or None (missing)."""
        return self._quote(str(right), round(float(strike), _DIGITS))

    def price(self, right: str, strike: float) -> float | None:
        """The quote's mid, or None without a quote."""
        q = self.quote(right, strike)
        return None if q is None else round((q.bid + q.ask) / 2.0, 10)

    def volume(self, right: str, strike: float) -> float:
        """Unknown (quotes carry no volume): infinite, so ``min_volume`` never drops it."""
        return math.inf

    def bid(self, right: ArrayLike, strike: ArrayLike) -> float | np.ndarray:
        def one(r: str, k: float) -> float:
            q = self.quote(r, k)
            return float(SyntheticChain.bid(self, r, k)) if q is None else q.bid
        return self._each(right, strike, one)

    def ask(self, right: ArrayLike, strike: ArrayLike) -> float | np.ndarray:
        def one(r: str, k: float) -> float:
            q = self.quote(r, k)
            return float(SyntheticChain.ask(self, r, k)) if q is None else q.ask
        return self._each(right, strike, one)

    def __repr__(self) -> str:
        return f"Quote{SyntheticChain.__repr__(self)}"


class QuotePrices:
    """The paper trader's option price source: live quotes (module docstring).

    Parameters
    ----------
    quotes : latest quotes through the session's store (its ``max_age`` should be
        ``stale_minutes``).
    root : the underlying (the OCC root of its options).
    stale_minutes : named in the reason a leg without a quote is dropped.
    near, far : the band of strikes asked each bar (``quote_band``).
    counts : the session's ``PriceCounts`` (default: a new one, mode ``"quotes"``).

    The broker sets ``active`` (whether the feed is live: quotes are asked only then) and
    ``held`` (the legs held, ``(expiry, right, strike)``) when it starts.
    """

    def __init__(self, quotes: OptionQuotes, root: str, *, stale_minutes: int = 5,
                 near: float = NEAR, far: float = FAR,
                 counts: PriceCounts | None = None) -> None:
        if not (0 <= near and 0 <= far and near + far > 0):
            raise ValueError(f"near and far must be >= 0, not both 0: {near}, {far}")
        self.quotes, self.root = quotes, root
        self.stale_minutes, self.near, self.far = int(stale_minutes), near, far
        self.counts = counts or PriceCounts("quotes")
        self.active: Callable[[], bool] = lambda: True
        self.held: Callable[[], Iterable[tuple[dt.date, str, float]]] = lambda: ()
        self._now: dt.datetime | None = None
        self._books: dict[dt.date, dict[Key, OptionQuote | None]] = {}

    def chain(self, model: ChainModel, spot: float, vix: float, now: dt.datetime,
              expiry_close: dt.datetime, *, at_open: bool = False) -> SyntheticChain:
        """The chain at the close time ``now``: quoted while the feed is live, the model's
        for a fill (``at_open``) and before the feed is live."""
        if at_open or not self.active():
            return SyntheticChain(model, spot, vix, now, expiry_close)
        expiry = expiry_close.date()
        book = self._book(now, expiry, spot, model.strike_step)

        def quote(right: str, strike: float) -> OptionQuote | None:
            key = (right, strike)
            if key not in book:
                self._ask(now, expiry, [key], book)
            return book[key]

        return QuoteChain(model, spot, vix, now, expiry_close, quote=quote,
                          stale_minutes=self.stale_minutes)

    def stats(self) -> dict:
        """What the quotes cost and missed (summary.json's ``option_prices.quotes``)."""
        c = self.quotes.counts
        return {"feed": self.quotes.feed, "requests": int(c["requests"]),
                "failed_requests": int(c["failed_requests"]), "asked": int(c["asked"]),
                "quoted": int(c["quoted"]), "missing": int(c["missing"]),
                "missing_by_reason": {k.removeprefix("missing_"): int(v)
                                      for k, v in sorted(c.items())
                                      if k.startswith("missing_") and v}}

    # -- internals ---------------------------------------------------------------------------
    def _book(self, now: dt.datetime, expiry: dt.date, spot: float, step: float
              ) -> dict[Key, OptionQuote | None]:
        """This bar's quotes of ``expiry``, asked the first time they are wanted."""
        if now != self._now:
            self._now, self._books = now, {}
        if expiry not in self._books:
            book: dict[Key, OptionQuote | None] = {}
            held = [(r, round(float(k), _DIGITS)) for e, r, k in self.held() if e == expiry]
            self._ask(now, expiry, held + quote_band(spot, step, self.near, self.far), book)
            self._books[expiry] = book
        return self._books[expiry]

    def _ask(self, now: dt.datetime, expiry: dt.date, keys: list[Key],
             book: dict[Key, OptionQuote | None]) -> None:
        keys = list(dict.fromkeys(keys))
        symbols = [occ_symbol(self.root, expiry, r, k) for r, k in keys]
        got = self.quotes.latest(symbols, now=now)
        for key, symbol in zip(keys, symbols, strict=True):
            book[key] = got.get(symbol)
