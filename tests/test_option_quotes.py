"""Live option quotes: the simulator's ``/v1beta1/options/quotes/latest`` (model and recorded
quotes) read by alpaca-py's real ``OptionHistoricalDataClient``, and ``OptionQuotes`` (batches,
missing quotes, retries, one-line refusals) against the simulator and a scripted fake."""
from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Iterator

import pandas as pd
import pytest

from feeds.options_store import option_bars_path, read_option_bars, write_option_bars
from mtbt.alpaca.endpoints import Endpoints
from mtbt.alpaca.quotes import MAX_SYMBOLS, OptionQuote, OptionQuotes
from mtbt.errors import BrokerError, ConfigError
from mtbt.http import ResilientSession, harden
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.occ import occ_symbol
from mtbt.sessions import NY, sessions
from mtbt.sim import Faults, Simulator
from tests.bars import session_frame
from tests.fakes._base import FakeServer, Seen

with warnings.catch_warnings():          # alpaca-py imports websockets.legacy
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.historical import OptionHistoricalDataClient
    from alpaca.data.requests import OptionLatestQuoteRequest

    from mtbt.alpaca.store import AlpacaStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")

DAY = dt.date(2024, 1, 3)
CLOSE = sessions(DAY, DAY)[DAY].close           # naive New York
START = 10                                      # the first streamed bar: 09:40
ROUTE = "GET /v1beta1/options/quotes/latest"


def spy(right: str, strike: float, expiry: dt.date = DAY) -> str:
    return occ_symbol("SPY", expiry, right, strike)


def day_bars() -> pd.DataFrame:
    """The session at 470, closing 471.5 at 09:40 and 468 from 09:41 on (VIX 14); the bars
    around them open away from their closes."""
    return session_frame(DAY, 470.0, levels={"09:40": 471.5, "09:41": 468.0}, vix=14.0,
                         bars={"09:39": (469.5, 470.2, 469.4, 470.0),
                               "09:40": (470.3, 471.8, 470.2, 471.5),
                               "09:41": (471.0, 471.2, 467.9, 468.0)})


@pytest.fixture
def sims() -> Iterator[list[Simulator]]:
    made: list[Simulator] = []
    yield made
    for sim in made:
        sim.close()


def start(sims: list[Simulator], **kw) -> Simulator:
    bars = day_bars()
    sim = Simulator(bars, start=bars.index[START], **kw).start()
    sims.append(sim)
    return sim


def data_client(sim: Simulator, keys: tuple[str, str] | None = None
                ) -> OptionHistoricalDataClient:
    return OptionHistoricalDataClient(*(keys or sim.keys), url_override=sim.data_url)


def latest(client: OptionHistoricalDataClient, symbols: list[str], feed: str = "indicative"):
    return client.get_option_latest_quote(
        OptionLatestQuoteRequest(symbol_or_symbols=symbols, feed=feed))


def store_of(sim: Simulator) -> AlpacaStore:
    return AlpacaStore(keys=sim.keys, endpoints=Endpoints(
        trading=sim.trading_url, data=sim.data_url, trade_stream=sim.trade_stream_url,
        data_stream=sim.data_stream_url))


def ny(hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"{DAY} {hhmm}", tz=NY)


# -- the simulator: model quotes ---------------------------------------------------------------
def test_model_quotes_are_the_chains_bid_and_ask_at_the_simulators_minute(sims) -> None:
    model = ChainModel(half_spread_pct=0.04)
    sim = start(sims, chain_model=model)
    client = data_client(sim)
    later = dt.date(2024, 1, 5)
    contracts = [(DAY, "C", 470.0), (DAY, "P", 465.0), (DAY, "C", 480.0), (later, "P", 470.0)]
    symbols = [spy(right, strike, expiry) for expiry, right, strike in contracts]
    # at 09:40 the last bar is 09:39's (470): the 09:40 bar (471.5) is quoted from 09:41 on
    for minute, close in (("09:40", 470.0), ("09:41", 471.5), ("09:42", 468.0)):
        now = ny(minute)
        assert sim.now == now
        got = latest(client, symbols, feed="opra")
        assert sorted(got) == sorted(symbols)
        for symbol, (expiry, right, strike) in zip(symbols, contracts, strict=True):
            chain = SyntheticChain(model, close, 14.0, now.tz_localize(None).to_pydatetime(),
                                   sessions(expiry, expiry)[expiry].close)
            quote = got[symbol]
            assert (quote.bid_price, quote.ask_price) == (chain.bid(right, strike),
                                                          chain.ask(right, strike))
            assert quote.timestamp == now and quote.bid_size == quote.ask_size == 100
        sim.step()
    assert sim.requests[ROUTE] == 3


def test_unknown_expired_and_malformed_symbols_are_left_out(sims) -> None:
    sim = start(sims)
    client = data_client(sim)
    known = spy("C", 470)
    unknown = [occ_symbol("QQQ", DAY, "C", 400), spy("C", 470, dt.date(2024, 1, 2)),
               "SPY", "SPY241399C00470000"]
    got = latest(client, [known, *unknown])
    assert list(got) == [known]
    assert latest(client, unknown[:2]) == {}


def test_no_model_quote_before_the_first_bar(sims) -> None:
    bars = day_bars()
    sim = Simulator(bars, start=bars.index[0]).start()
    sims.append(sim)
    assert latest(data_client(sim), [spy("C", 470)]) == {}
    sim.step()
    assert list(latest(data_client(sim), [spy("C", 470)])) == [spy("C", 470)]


def test_the_route_refuses_what_alpaca_refuses(sims) -> None:
    sim = start(sims)
    client = data_client(sim)
    with pytest.raises(APIError) as refused:
        latest(client, [spy("C", 300 + i) for i in range(MAX_SYMBOLS + 1)])
    assert refused.value.status_code == 400 and "too many symbols" in str(refused.value)
    with pytest.raises(APIError) as refused:
        latest(data_client(sim, ("replay-key", "wrong")), [spy("C", 470)])
    assert refused.value.status_code == 401


# -- the simulator: recorded quotes ------------------------------------------------------------
A, B, C = spy("C", 470), spy("P", 468), spy("C", 475)


def recorded(tmp_path) -> pd.DataFrame:
    """A: closes 2.00 at 09:35 and 3.00 at 09:40; B: 0.10 at 09:34; C has no bars."""
    rows = [(A, "09:35", 2.00), (A, "09:40", 3.00), (B, "09:34", 0.10)]
    frame = pd.DataFrame({
        "timestamp": [ny(t) for _, t, _ in rows], "contract": [s for s, _, _ in rows],
        "expiry": str(DAY), "right": [s[-9] for s, _, _ in rows],
        "strike": [int(s[-8:]) / 1000 for s, _, _ in rows],
        "open": [c for _, _, c in rows], "high": [c for _, _, c in rows],
        "low": [c for _, _, c in rows], "close": [c for _, _, c in rows],
        "volume": 5.0, "vwap": [c for _, _, c in rows], "trades": 2.0})
    path = write_option_bars(frame, option_bars_path(tmp_path, "SPY", DAY))
    return read_option_bars(path)


def test_recorded_quotes_are_the_close_around_a_half_spread_until_stale(sims, tmp_path) -> None:
    sim = start(sims, option_bars=recorded(tmp_path), half_spread_pct=0.05,
                option_stale_minutes=6)
    client = data_client(sim)
    # 09:40: A's 09:40 bar is not complete yet; its 09:35 bar is within the 6 minutes before
    # (09:34 .. 09:39): 2.00 -/+ 0.10. B's 09:34 bar is the window's first minute: 0.10 -/+
    # the 1-cent floor.
    got = latest(client, [A, B, C])
    assert sorted(got) == [A, B]
    assert (got[A].bid_price, got[A].ask_price, got[A].timestamp) == (1.90, 2.10, ny("09:36"))
    assert (got[B].bid_price, got[B].ask_price, got[B].timestamp) == (0.09, 0.11, ny("09:35"))
    sim.step()
    # 09:41: A's 09:40 bar is complete: 3.00 -/+ 0.15; B's 09:34 is stale (09:35 ..): left out.
    got = latest(client, [A, B, C])
    assert list(got) == [A]
    assert (got[A].bid_price, got[A].ask_price, got[A].timestamp) == (2.85, 3.15, ny("09:41"))


def test_option_quotes_through_the_store_count_what_is_missing(sims, tmp_path, caplog) -> None:
    sim = start(sims, option_bars=recorded(tmp_path), half_spread_pct=0.05,
                option_stale_minutes=30)
    store = store_of(sim)
    try:
        quotes = OptionQuotes.from_store(store, feed="opra", max_age=dt.timedelta(minutes=4))
        with caplog.at_level(logging.INFO, logger="mtbt"):
            got = quotes.latest([A, B, C, "not-an-option", A], now=sim.now)
    finally:
        store.stop()
    assert list(got) == [A, B, C, "not-an-option"]
    assert got[A] == OptionQuote(A, 1.90, 2.10, 100.0, 100.0, ny("09:36").tz_convert("UTC"))
    assert got[A].mid == pytest.approx(2.0)
    assert got[B] is got[C] is got["not-an-option"] is None          # 5 min old (> 4), absent
    assert quotes.last_missing == {B: "stale", C: "absent", "not-an-option": "invalid"}
    assert quotes.counts["asked"] == 4 and quotes.counts["missing"] == 3
    assert quotes.counts["missing_stale"] == quotes.counts["missing_absent"] == 1
    lines = [r.getMessage() for r in caplog.records if "option quotes" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "3 of 4 missing (absent 1, invalid 1, stale 1)" in lines[0]
    assert not any(secret in caplog.text for secret in sim.keys)
    assert sim.requests[ROUTE] == 1                       # the invalid symbol is never sent


def test_option_quotes_batch_and_retry_429_and_500_against_the_simulator(sims) -> None:
    model = ChainModel()
    sim = start(sims, chain_model=model, faults=Faults(error_every=2))
    store = store_of(sim)
    symbols = [spy(right, strike) for strike in range(345, 470) for right in "CP"]
    try:
        got = OptionQuotes.from_store(store).latest(symbols, now=sim.now)
        retries = store.http.retries
    finally:
        store.stop()
    assert len(symbols) == 250 and all(got[s] is not None for s in symbols)
    chain = SyntheticChain(model, 470.0, 14.0, dt.datetime(2024, 1, 3, 9, 40), CLOSE)
    assert (got[spy("P", 400)].bid, got[spy("P", 400)].ask) == (chain.bid("P", 400),
                                                                chain.ask("P", 400))
    # three batches of <= 100; requests 2 and 4 were answered 500 and 429 and retried
    assert sim.requests[ROUTE] == 5 and retries == 2
    assert [(f["route"], f["status"]) for f in sim.injected] == [(ROUTE, 500), (ROUTE, 429)]


def test_option_quotes_refuse_bad_keys_in_one_line(sims) -> None:
    sim = start(sims)
    client = data_client(sim, ("replay-key", "s3cret-wrong"))
    harden(client, ResilientSession(attempts=2, backoff=0.01))
    quotes = OptionQuotes(client, url=sim.data_url, secrets=("replay-key", "s3cret-wrong"))
    with pytest.raises(BrokerError) as refused:
        quotes.latest([spy("C", 470)])
    text = str(refused.value)
    assert "HTTP 401" in text and "ALPACA_API_KEY" in text and "\n" not in text
    assert "s3cret" not in text
    assert sim.requests[ROUTE] == 1                        # a 401 is not retried


def test_option_quotes_refuse_an_unknown_feed() -> None:
    with pytest.raises(ConfigError, match="'sip' is not one of indicative, opra"):
        OptionQuotes(None, feed="sip")


# -- a scripted fake: what the simulator never answers -----------------------------------------
KEYS = ("fake-key-id", "fake-secret-key")


class QuoteServer(FakeServer):
    """Alpaca's latest option quotes route answering scripted raw quotes; keys ``KEYS``, a
    key id in ``forbidden`` gets 403 (no subscription for the feed)."""

    def __init__(self, quotes: dict[str, dict], forbidden: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.quotes, self.forbidden = quotes, forbidden

    def error_body(self, status: int, text: str) -> dict:
        return {"code": status * 100000 + 10000, "message": text}

    def route(self, seen: Seen) -> tuple[int, dict]:
        key = seen.headers.get("APCA-API-KEY-ID")
        if key in self.forbidden:
            return 403, self.error_body(403, "subscription does not permit querying "
                                             "recent OPRA data")
        if (key, seen.headers.get("APCA-API-SECRET-KEY")) != KEYS:
            return 401, self.error_body(401, "request is not authorized")
        if seen.path != "/v1beta1/options/quotes/latest":
            return 404, self.error_body(404, "not found")
        symbols = seen.query.get("symbols", "").split(",")
        return 200, {"quotes": {s: self.quotes[s] for s in symbols if s in self.quotes}}


def fake_quotes(server: QuoteServer, feed: str = "indicative", **session) -> OptionQuotes:
    client = OptionHistoricalDataClient(*KEYS, url_override=server.url)
    harden(client, ResilientSession(**{"attempts": 3, "backoff": 0.01, **session}))
    return OptionQuotes(client, feed=feed, url=server.url, secrets=KEYS,
                        max_age=dt.timedelta(minutes=2))


NOW = pd.Timestamp("2024-01-03 15:00", tz="UTC")


def raw(bid: float, ask: float, age_s: float = 1.0) -> dict:
    t = (NOW - pd.Timedelta(seconds=age_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"t": t, "bx": "C", "bp": bid, "bs": 10, "ax": "C", "ap": ask, "as": 12, "c": "A"}


def test_empty_one_sided_crossed_and_old_quotes() -> None:
    script = {spy("C", 470): raw(1.20, 1.25), spy("C", 471): raw(0.0, 0.0),
              spy("C", 472): raw(0.0, 0.05), spy("C", 473): raw(1.30, 1.20),
              spy("C", 474): raw(0.50, 0.0), spy("C", 475): raw(1.0, 1.1, age_s=121)}
    with QuoteServer(script) as server:
        quotes = fake_quotes(server)
        got = quotes.latest([*script, spy("C", 476)], now=NOW)
    assert got[spy("C", 470)] == OptionQuote(spy("C", 470), 1.20, 1.25, 10.0, 12.0,
                                             NOW - pd.Timedelta(seconds=1))
    assert got[spy("C", 472)].bid == 0.0            # nobody bids: still a quote
    assert quotes.last_missing == {spy("C", 471): "empty", spy("C", 473): "empty",
                                   spy("C", 474): "empty", spy("C", 475): "stale",
                                   spy("C", 476): "absent"}


def test_retries_that_run_out_leave_the_batch_missing_and_say_why(caplog) -> None:
    symbols = [spy("C", 300 + i) for i in range(150)]
    with QuoteServer({s: raw(1.0, 1.1) for s in symbols}) as server:
        quotes = fake_quotes(server)
        server.fail(503, times=3)              # the first batch: every attempt
        with caplog.at_level(logging.INFO, logger="mtbt"):
            got = quotes.latest(symbols, now=NOW)
        statuses = [(len(r.query["symbols"].split(",")), r.status) for r in server.requests]
    assert statuses == [(100, 503)] * 3 + [(50, 200)]
    assert all(got[s] is None for s in symbols[:100])
    assert all(got[s] is not None for s in symbols[100:])
    assert quotes.counts["failed_requests"] == 1 and quotes.counts["missing_failed"] == 100
    lines = [r.getMessage() for r in caplog.records if r.name == "mtbt.live"]
    assert len(lines) == 1 and "100 of 150 missing (failed 100)" in lines[0]
    assert "HTTP 503" in lines[0] and "after retries" in lines[0]


def test_a_stalled_answer_times_out_and_is_retried() -> None:
    with QuoteServer({spy("C", 470): raw(1.0, 1.1)}) as server:
        server.slow_seconds = 3.0
        quotes = fake_quotes(server, timeout=(1.0, 0.3))
        server.fail("slow", times=1)
        got = quotes.latest([spy("C", 470)], now=NOW)
    assert got[spy("C", 470)] is not None and len(server.requests) == 2


def test_a_forbidden_feed_is_one_line_naming_the_feed() -> None:
    with QuoteServer({}, forbidden=(KEYS[0],)) as server:
        quotes = fake_quotes(server, feed="opra")
        with pytest.raises(BrokerError) as refused:
            quotes.latest([spy("C", 470)], now=NOW)
        assert len(server.requests) == 1                   # a 403 is not retried
        assert server.requests[0].query["feed"] == "opra"
    text = str(refused.value)
    assert "HTTP 403: subscription does not permit querying recent OPRA data" in text
    assert "opra feed needs" in text and "\n" not in text
