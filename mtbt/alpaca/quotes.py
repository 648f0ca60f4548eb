"""Live option quotes: the latest bid and ask of each contract from Alpaca's market data.

:class:`OptionQuotes` asks alpaca-py's ``OptionHistoricalDataClient.get_option_latest_quote``
(``GET /v1beta1/options/quotes/latest?symbols=...&feed=indicative|opra``) for a list of OCC
symbols, at most :data:`MAX_SYMBOLS` a request (Alpaca's limit), and answers ``{symbol:
OptionQuote or None}``. Latest quotes rather than snapshots (``get_option_snapshot``): a
quote is all the paper trader prices with (its greeks and IV come from mtbt's own chain), the
answer is a fraction of a snapshot's size (no trade, greeks or IV per contract), and the
route has no paging to follow; a snapshot's quote is the same latest quote.

A quote is **missing** (``None``) when Alpaca sends nothing for the symbol (``absent``), when
its ask is zero or absent or below its bid (``empty``: no offer, no price to mark or buy at; a
zero bid under a positive ask is a quote, of a contract nobody bids for), when it is older
than ``max_age`` (``stale``), when the symbol is not an OCC option symbol (``invalid``, never
sent) or when its request failed after the retries (``failed``). Each :meth:`latest` call logs
one line for its missing quotes (how many, why, the first few symbols), never one per symbol,
and counts them (:attr:`counts`); keys are never logged.

Requests go through the store's client (``AlpacaStore.option_client``: the data URL of the
store's ``Endpoints``, so ``MTBT_ALPACA_DATA_URL`` points it at the local simulator, and
``mtbt.http``'s session: a timeout on every call, 429, 5xx, timeouts and dropped connections
retried with backoff). A 401 or 403 raises :class:`~mtbt.errors.BrokerError` in one line (the
keys, or a feed the account may not use: ``opra`` needs Alpaca's options data subscription);
another refusal (400, 404, 422) too; a request whose retries ran out leaves its symbols
missing for this call.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import requests

from feeds._fetch import clean
from mtbt.alpaca.orders import error_text
from mtbt.errors import BrokerError, ConfigError
from mtbt.http import RETRY_STATUSES
from mtbt.options.occ import parse_occ
from mtbt.sessions import NY

with warnings.catch_warnings():     # alpaca-py 0.44 imports websockets.legacy
    warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.historical import OptionHistoricalDataClient
    from alpaca.data.requests import OptionLatestQuoteRequest

if TYPE_CHECKING:
    from mtbt.alpaca.store import AlpacaStore

__all__ = ["FEEDS", "MAX_SYMBOLS", "OptionQuote", "OptionQuotes"]

log = logging.getLogger("mtbt.live")

#: symbols one latest-quote request may name (Alpaca: "a limit of 100")
MAX_SYMBOLS = 100
#: the option data feeds: ``indicative`` (free, delayed trades, modified quotes), ``opra``
FEEDS = ("indicative", "opra")
_SHOWN = 3      # symbols named in a missing-quotes line


@dataclass(frozen=True)
class OptionQuote:
    """One contract's latest quote: prices per share, sizes in contracts, ``time`` tz-aware
    (UTC, as Alpaca sends it)."""

    symbol: str
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    time: pd.Timestamp

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


class OptionQuotes:
    """Latest option quotes through one ``OptionHistoricalDataClient`` (module docstring).

    Parameters
    ----------
    client : the option data client (hardened with ``mtbt.http.harden``, as the store's is).
    feed : ``"indicative"`` or ``"opra"``.
    max_age : a quote older than this at the ``now`` of :meth:`latest` is missing.
    batch_size : symbols a request (1 to :data:`MAX_SYMBOLS`).
    url : the data URL, for error messages.
    secrets : strings scrubbed from anything logged or raised (the keys).
    """

    def __init__(self, client: OptionHistoricalDataClient, *, feed: str = "indicative",
                 max_age: dt.timedelta = dt.timedelta(minutes=5),
                 batch_size: int = MAX_SYMBOLS, url: str = "",
                 secrets: tuple[str, ...] = ()) -> None:
        if feed not in FEEDS:
            raise ConfigError(f"option quotes feed {feed!r} is not one of "
                              f"{', '.join(FEEDS)}")
        if not 1 <= batch_size <= MAX_SYMBOLS:
            raise ValueError(f"batch_size must be 1 to {MAX_SYMBOLS}, got {batch_size}")
        if max_age < dt.timedelta(0):
            raise ValueError("max_age must be >= 0")
        self.client, self.feed, self.max_age = client, feed, max_age
        self.batch_size, self.url, self._secrets = batch_size, url or "Alpaca", secrets
        #: running totals: asked, quoted, missing, missing_<reason>, requests, failed_requests
        self.counts: Counter[str] = Counter()
        #: {symbol: reason} of the last call's missing quotes
        self.last_missing: dict[str, str] = {}

    @classmethod
    def from_store(cls, store: AlpacaStore, **kwargs) -> OptionQuotes:
        """Quotes through ``store``'s option client (its data endpoint, timeouts, retries)."""
        return cls(store.option_client, url=store.endpoints.data, secrets=store.secrets(),
                   **kwargs)

    def latest(self, symbols: Iterable[str], now: dt.datetime | pd.Timestamp | None = None
               ) -> dict[str, OptionQuote | None]:
        """``{symbol: its latest quote, or None when missing}`` for each distinct symbol.

        ``now`` (default: the wall clock) is the moment ``max_age`` is measured from; a naive
        value is New York time (backtrader's clock; a replay passes the simulator's bar
        time). Raises ``BrokerError`` on 401, 403 and other refusals (module docstring).
        """
        wanted = list(dict.fromkeys(symbols))
        at = _aware(now)
        out: dict[str, OptionQuote | None] = dict.fromkeys(wanted)
        missing: dict[str, str] = {}
        valid = []
        for symbol in wanted:
            if _is_occ(symbol):
                valid.append(symbol)
            else:
                missing[symbol] = "invalid"
        failures: list[str] = []
        for i in range(0, len(valid), self.batch_size):
            batch = valid[i:i + self.batch_size]
            got = self._request(batch, failures)
            for symbol in batch:
                if got is None:
                    missing[symbol] = "failed"
                    continue
                quote, why = _judge(got.get(symbol), at, self.max_age)
                if quote is None:
                    missing[symbol] = why
                out[symbol] = quote
        self._count(len(wanted), missing)
        if missing:
            self._log(len(wanted), missing, failures)
        return out

    # -- internals ---------------------------------------------------------------------------
    def _request(self, batch: list[str], failures: list[str]) -> dict | None:
        """Alpaca's ``{symbol: Quote}`` for ``batch``, or None after a failure noted in
        ``failures`` (retries exhausted, a malformed answer)."""
        self.counts["requests"] += 1
        try:
            return self.client.get_option_latest_quote(
                OptionLatestQuoteRequest(symbol_or_symbols=batch, feed=self.feed))
        except APIError as exc:
            status, text = exc.status_code, self._clean(error_text(exc))
            said = f"HTTP {status}: {text}" if text else f"HTTP {status}"
            if status == 401:
                raise BrokerError(f"{self.url} refused the keys for option quotes ({said}); "
                                  "check ALPACA_API_KEY and ALPACA_SECRET_KEY") from None
            if status == 403:
                hint = ("the opra feed needs Alpaca's options data subscription (the "
                        "indicative feed does not)" if self.feed == "opra" else
                        "check that the account may read option market data")
                raise BrokerError(f"{self.url} refused option quotes on the {self.feed} feed "
                                  f"({said}); {hint}") from None
            if status not in RETRY_STATUSES:
                raise BrokerError(f"{self.url} refused an option quotes request "
                                  f"({said})") from None
            failures.append(f"{said}, after retries")
        except requests.Timeout:
            failures.append("no answer in time, after retries")
        except requests.ConnectionError:
            failures.append("connection failed, after retries")
        except requests.RequestException as exc:
            failures.append(type(exc).__name__)
        except ValueError as exc:     # pydantic's ValidationError, or a body without quotes
            failures.append(f"unexpected answer ({self._clean(str(exc), 120)})")
        self.counts["failed_requests"] += 1
        return None

    def _count(self, asked: int, missing: dict[str, str]) -> None:
        self.counts["asked"] += asked
        self.counts["quoted"] += asked - len(missing)
        self.counts["missing"] += len(missing)
        for why in missing.values():
            self.counts[f"missing_{why}"] += 1
        self.last_missing = missing

    def _log(self, asked: int, missing: dict[str, str], failures: list[str]) -> None:
        reasons = Counter(missing.values())
        why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
        names = list(missing)
        shown = ", ".join(names[:_SHOWN]) + (f" (+{len(names) - _SHOWN} more)"
                                             if len(names) > _SHOWN else "")
        failed = f"; requests failed: {'; '.join(dict.fromkeys(failures))}" if failures else ""
        log.warning("option quotes (%s): %d of %d missing (%s): %s%s", self.feed,
                    len(missing), asked, why, shown, failed)

    def _clean(self, text: str, limit: int = 160) -> str:
        return clean(text, self._secrets, limit=limit)


def _is_occ(symbol: object) -> bool:
    try:
        return isinstance(symbol, str) and parse_occ(symbol) is not None
    except ValueError:               # six digits that are no date
        return False


def _aware(now: dt.datetime | pd.Timestamp | None) -> pd.Timestamp:
    if now is None:
        return pd.Timestamp.now(tz="UTC")
    ts = pd.Timestamp(now)
    return ts.tz_localize(NY) if ts.tz is None else ts


def _judge(quote, now: pd.Timestamp, max_age: dt.timedelta
           ) -> tuple[OptionQuote | None, str]:
    """The OptionQuote of alpaca-py's ``Quote`` (or None), else None and why it is missing."""
    if quote is None:
        return None, "absent"
    bid, ask = quote.bid_price, quote.ask_price
    if not (_finite(bid) and _finite(ask)) or not (0 <= bid <= ask and ask > 0):
        return None, "empty"
    time = pd.Timestamp(quote.timestamp)
    time = time.tz_localize("UTC") if time.tz is None else time.tz_convert("UTC")
    if now - time > max_age:
        return None, "stale"
    return OptionQuote(quote.symbol, float(bid), float(ask), float(quote.bid_size or 0.0),
                       float(quote.ask_size or 0.0), time), ""


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
