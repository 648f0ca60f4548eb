"""The paper trader's parts on their own: endpoint and key checks, HTTP retries and timeouts,
the state file, client ids and order specs, key redaction, lot checkpoints."""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import requests
from werkzeug import Response

from mtbt.alpaca import orders as wire
from mtbt.alpaca.endpoints import Endpoints, keys_from_env
from mtbt.errors import BrokerError, ConfigError, StateError
from mtbt.exits import Lot, Stage
from mtbt.http import ResilientSession
from mtbt.live.logs import Redact
from mtbt.options import structures as st
from mtbt.options.allocator import allocate
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.occ import occ_symbol, parse_occ
from mtbt.options.paths import PathModel
from mtbt.state import OrderRow, StateStore
from mtbt.strategies._resume import later_day, lot_body, lot_from


@pytest.mark.parametrize("field, url, ok", [
    ("trading", "https://paper-api.alpaca.markets", True),
    ("trading", "http://127.0.0.1:8080", True),
    ("trading", "https://api.alpaca.markets", False),
    ("trade_stream", "wss://api.alpaca.markets/stream", False),
    ("trade_stream", "wss://paper-api.alpaca.markets/stream", True),
    ("data", "https://data.alpaca.markets", True),
    ("data", "https://paper-api.alpaca.markets.evil.com", False),
    ("data_stream", "wss://stream.data.alpaca.markets/v2/sip", True),
    ("trading", "https://data.alpaca.markets", False),     # a data host cannot trade
])
def test_only_paper_data_or_local_endpoints_pass(field, url, ok):
    endpoints = Endpoints(**{field: url})
    if ok:
        endpoints.check()
    else:
        with pytest.raises(BrokerError, match="refusing to start"):
            endpoints.check()


def test_endpoints_come_from_the_environment():
    env = {"MTBT_ALPACA_TRADING_URL": "http://127.0.0.1:9/", "MTBT_ALPACA_DATA_URL": ""}
    endpoints = Endpoints.from_env(env)
    assert endpoints.trading == "http://127.0.0.1:9"
    assert endpoints.data == Endpoints().data and not endpoints.local


def test_missing_keys_name_the_variables():
    with pytest.raises(ConfigError, match="ALPACA_SECRET_KEY not set"):
        keys_from_env({"ALPACA_API_KEY": "k"})
    assert keys_from_env({"ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}) == ("k", "s")


def test_retries_429_and_5xx_then_succeeds(httpserver):
    answers = iter([Response("busy", 429), Response("oops", 503), Response("{}", 200)])
    httpserver.expect_request("/v2/orders").respond_with_handler(lambda _req: next(answers))
    session = ResilientSession((1, 1), attempts=4, backoff=0.01)
    assert session.post(httpserver.url_for("/v2/orders"), json={}).status_code == 200
    assert session.retries == 2


def test_gives_up_after_the_attempts_with_the_last_answer(httpserver):
    httpserver.expect_request("/v2/clock").respond_with_data("down", status=500)
    session = ResilientSession((1, 1), attempts=3, backoff=0.01)
    assert session.get(httpserver.url_for("/v2/clock")).status_code == 500
    assert session.retries == 2


def test_the_environment_is_read_once_per_host_and_still_obeyed(httpserver, monkeypatch):
    """requests scans the whole environment for proxy settings on every request (about
    0.6 ms on the order path); the session reads it once per host, and still obeys it."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")       # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    reads = []
    real = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, "get_environ_proxies",
                        lambda *a, **k: reads.append(a) or real(*a, **k))
    httpserver.expect_request("/v2/clock").respond_with_data("{}")
    session = ResilientSession((1, 1), attempts=1)
    for _ in range(5):
        assert session.get(httpserver.url_for("/v2/clock")).status_code == 200
    assert len(reads) == 1
    with pytest.raises(requests.exceptions.ProxyError):    # another host: via the proxy
        session.get("http://mtbt-test.invalid/v2/clock")
    assert len(reads) == 2


def test_a_server_that_never_answers_times_out():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    session = ResilientSession((0.5, 0.2), attempts=2, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        session.get(f"http://127.0.0.1:{server.getsockname()[1]}/v2/clock")
    assert time.monotonic() - started < 3
    for conn, _ in held:
        conn.close()
    server.close()


def test_state_file_keeps_orders_and_checkpoints_across_reopen(tmp_path):
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    assert store.next_seq("2024-08-02") == 1
    row = OrderRow("mtbt-20240802-0001-t1-entry", 1, "2024-08-02", 1, "entry",
                   {"kind": "market", "qty": 10})
    store.record_orders([row])
    with pytest.raises(sqlite3.IntegrityError):     # a client id is never recorded twice
        store.record_orders([row])
    store.save(strategy={"lots": [1]}, broker={"cash": 1.5})
    store.close()
    again = StateStore(path)
    assert again.orders("2024-08-02") == [row]
    assert again.next_seq("2024-08-02") == 2 and again.next_seq("2024-08-05") == 1
    assert again.load("strategy") == {"lots": [1]} and again.load("broker") == {"cash": 1.5}
    assert again.load("nothing") is None


def test_one_session_per_state_file_and_the_second_names_the_holder(tmp_path):
    path = tmp_path / "state.sqlite"
    held = StateStore(path, symbol="SPY")
    code = ("import sys; from mtbt.state import StateStore\n"
            "from mtbt.errors import StateError\n"
            "try:\n    StateStore(sys.argv[1])\nexcept StateError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=60)
    assert f"is in use by another mtbt session (pid {os.getpid()})" in out.stdout
    held.close()                                    # released: the next session may start
    StateStore(path, symbol="SPY").close()


@pytest.mark.parametrize("content, message", [
    (b"not a database at all " * 200, "unreadable"),
    (None, r"not mtbt's \(tables orders, other\)"),
])
def test_a_corrupt_or_foreign_state_file_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "state.sqlite"
    if content is None:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE other (x)")
            db.execute("CREATE TABLE orders (x)")
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(StateError, match=message) as caught:
        StateStore(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert path.read_bytes() == before              # left as it was
    StateStore(tmp_path / "other.sqlite").close()  # the lock was released


def test_a_state_file_of_another_symbol_is_refused(tmp_path):
    StateStore(tmp_path / "state.sqlite", symbol="SPY").close()
    with pytest.raises(StateError, match="holds the state of SPY; this run trades QQQ"):
        StateStore(tmp_path / "state.sqlite", symbol="QQQ")


def test_client_ids_and_option_symbols():
    day = dt.date(2024, 8, 2)
    assert wire.client_order_id(day, 7, 3, "tp1") == "mtbt-20240802-0007-t3-tp1"
    assert wire.client_order_id(day, 7, None, "shutdown") == "mtbt-20240802-0007-tx-shutdown"
    symbol = occ_symbol("SPY", day, "C", 645.5)
    assert symbol == "SPY240802C00645500"
    assert parse_occ(symbol) == ("SPY", day, "C", 645.5)
    assert parse_occ("SPY") is None


def test_structures_become_mleg_orders_or_a_simple_option_order():
    day = dt.date(2024, 8, 2)
    fly = st.put_butterfly(day, 530, 5)
    spec = wire.structure_spec("SPY", fly, 3, "open")
    assert spec["kind"] == "mleg" and spec["qty"] == 3
    assert [(leg["side"], leg["ratio_qty"], leg["position_intent"]) for leg in spec["legs"]] \
        == [("buy", 1, "buy_to_open"), ("sell", 2, "sell_to_open"), ("buy", 1, "buy_to_open")]
    close = wire.structure_spec("SPY", fly, 3, "close")
    assert [leg["position_intent"] for leg in close["legs"]] == \
        ["sell_to_close", "buy_to_close", "sell_to_close"]
    single = wire.structure_spec("SPY", st.long_put(day, 530), 2, "open")
    assert single["kind"] == "option" and single["qty"] == 2
    request = wire.to_request(single, "id-1")
    assert request.symbol == "SPY240802P00530000" and request.position_intent == "buy_to_open"
    assert wire.to_request(spec, "id-2").order_class == "mleg"


def test_a_structure_close_with_a_limit_is_a_limit_order():
    """``StructureOrder.limit`` is the least premium per share the close gets (a condor's is
    negative: closing costs money); Alpaca's mleg limit is the net price per unit, a debit
    positive (the simulator's convention), so the condor's close pays at most -limit."""
    day = dt.date(2024, 6, 25)
    condor = st.iron_condor(day, 535, 550, 5.0)
    spec = wire.structure_spec("SPY", condor, 5, "close", limit=-0.21)
    assert spec["limit_price"] == 0.21 and spec["structure_limit"] == -0.21
    body = wire.to_request(spec, "mtbt-x").to_request_fields()
    assert body["type"] == "limit" and body["order_class"] == "mleg"
    assert body["limit_price"] == 0.21 and body["qty"] == 5 and "symbol" not in body
    assert [leg["position_intent"] for leg in body["legs"]] == \
        ["sell_to_close", "buy_to_close", "buy_to_close", "sell_to_close"]
    assert wire.describe(spec).startswith("mleg x5 limit 0.21: sell 1 SPY240625P00530000")
    # cents on the side that honours the limit: pay at most 0.21 for a close worth -0.2149
    assert wire.structure_limit_price(condor, -0.2149) == 0.21
    assert wire.structure_limit_price(condor, 0.305) == -0.31     # receive at least 0.31
    assert wire.structure_limit_price(condor, 0.1 + 0.2) == -0.30     # float noise only
    assert wire.to_request(wire.structure_spec("SPY", condor, 5, "close"),
                           "m").to_request_fields()["type"] == "market"
    long_put = st.long_put(day, 530)
    short_put = st.Structure("short_put", (st.Leg("P", 530, -1, day),))
    sell = wire.to_request(wire.structure_spec("SPY", long_put, 2, "close", limit=0.452),
                           "s").to_request_fields()
    assert (sell["side"], sell["type"], sell["limit_price"]) == ("sell", "limit", 0.46)
    buy = wire.structure_spec("SPY", short_put, 2, "close", limit=-0.458)
    assert (buy["side"], buy["limit_price"]) == ("buy", 0.45)   # buy back for at most 0.45
    free = wire.structure_spec("SPY", long_put, 2, "close", limit=0.0)
    assert "limit_price" not in free            # any bid gets 0: a market order
    with pytest.raises(ValueError, match="close"):
        wire.structure_spec("SPY", condor, 5, "open", limit=-0.5)


def test_a_later_day_keeps_only_the_run_wide_counters():
    snapshot = {"day": "2024-08-01", "next_id": 4, "lots": [{"trade_id": 3}],
                "risk": {"realized": -495.3, "peak": 25_000.0, "paused": True, "tripped": True,
                         "trips": 1, "alerts": ["max drawdown: ..."], "day_pnl": -495.3,
                         "halted_today": True},
                "alerts": [["2024-08-01T10:22:00", "max drawdown: ..."]],
                "breaker_trips": ["2024-08-01T10:22:00"], "edge": [[0.001], [12.0]],
                "journal": {"trades": [{"trade_id": 1}], "legs": []}}
    kept = later_day(snapshot)
    assert kept["lots"] == [] and "journal" not in kept
    assert kept["risk"] == {"realized": -495.3, "peak": 25_000.0, "paused": True,
                            "tripped": True, "trips": 1, "alerts": ["max drawdown: ..."]}
    for name in ("day", "next_id", "alerts", "breaker_trips", "edge"):
        assert kept[name] == snapshot[name]


def test_an_oco_exit_pair_request():
    spec = {"kind": "oco", "symbol": "SPY", "side": "buy", "qty": 28, "limit_price": 529.04,
            "stop_price": 538.12}
    request = wire.to_request(spec, "mtbt-x")
    body = request.to_request_fields()
    assert body["order_class"] == "oco" and body["type"] == "limit"
    assert body["take_profit"] == {"limit_price": 529.04}
    assert body["stop_loss"] == {"stop_price": 538.12}
    assert wire.describe(spec) == "buy 28 SPY oco limit 529.04 stop 538.12"


def test_a_trailing_stop_request():
    body = wire.to_request({"kind": "trailing_stop", "symbol": "SPY", "side": "sell",
                            "qty": 5, "trail_percent": 0.5}, "t-1").to_request_fields()
    assert body["type"] == "trailing_stop" and body["trail_percent"] == 0.5
    assert "trail_price" not in body


def test_log_lines_never_show_a_key(tmp_path):
    logger = logging.getLogger("mtbt.test_redact")
    handler = logging.FileHandler(tmp_path / "x.log")
    handler.addFilter(Redact(("PKSECRET123", "")))
    logger.addHandler(handler)
    logger.warning("body echoed %s and %s", "PKSECRET123", "fine")
    handler.close()
    logger.removeHandler(handler)
    text = (tmp_path / "x.log").read_text()
    assert "PKSECRET123" not in text and "body echoed *** and fine" in text


def test_a_lot_survives_its_checkpoint():
    lot = Lot(4, -1, 72, regime="TRADE_NORMAL", risk=269.5, entry_price=530.55,
              entry_time=dt.datetime(2024, 8, 2, 10, 19), remaining=36, stage=Stage.SCALED,
              stop=530.55, stop_reason="breakeven", best_close=528.1)
    lot.structure = st.put_butterfly(dt.date(2024, 8, 2), 525, 5)
    back = lot_from(lot_body(lot))
    assert back == lot and back.structure == lot.structure


def test_the_allocator_never_trades_a_held_contract_the_other_way():
    day = dt.date(2024, 8, 2)
    chain = SyntheticChain(ChainModel(), 530.0, 18.0, dt.datetime(2024, 8, 2, 10, 0),
                           dt.datetime(2024, 8, 2, 16, 0))
    model = PathModel(0.0005, 0.0, 400, seed=1)

    def pick(held=None):
        return allocate(-1, chain, 500.0, bars=325, model=model, held=held, min_edge=-10)

    free = pick()
    legs = free.best.structure.legs
    held = {(leg.right, leg.strike, leg.expiry): -leg.qty * 10 for leg in legs}
    blocked = pick(held)
    assert blocked.best is None or blocked.best.structure != free.best.structure
    assert any("held the other way" in (c.reason or "") for c in blocked.candidates)
    same_way = {(leg.right, leg.strike, day): leg.qty for leg in legs}
    assert pick(same_way).best == free.best


def test_a_session_that_fails_at_start_says_why_in_its_log(tmp_path, monkeypatch):
    """No VIX source: the error ends the session before any request; its log holds it, and
    no header-only balance file is left."""
    from mtbt.alpaca.store import AlpacaStore
    from mtbt.config import load_run
    from mtbt.live.session import run_paper

    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    cfg = load_run(None, ['data.vix=""'])
    store = AlpacaStore(("PKTESTKEY", "SECRETTESTKEY"), Endpoints(trading="http://127.0.0.1:9"))
    with pytest.raises(ConfigError, match="no daily VIX source"):
        run_paper(cfg, store=store, log_dir=tmp_path)
    (log,) = tmp_path.glob("paper_trading_*.log")
    assert "ERROR session PAPER_" in log.read_text()
    assert "no daily VIX source" in log.read_text()
    assert not list(tmp_path.glob("balance_progression_*.csv"))


def test_the_periodic_reconcile_waits_for_a_bar_with_nothing_to_send():
    """A reconcile (an order poll and a positions request) goes before the first order and
    after a reconnect; the periodic one waits for a bar that sends nothing, so it never
    delays an order, unless it is overdue twice over."""
    from mtbt.alpaca.broker import RECONCILE_EVERY, AlpacaBroker

    broker = AlpacaBroker(dry_run=True)
    broker.start()
    bars, reconciled = [0], []
    reconcile = broker.reconcile
    broker.reconcile = lambda: (reconciled.append(bars[0]), reconcile())

    def bar(busy: bool) -> None:
        bars[0] += 1
        broker._cancels = ["an-exit-to-cancel"] if busy else []
        broker.transmit()

    bar(busy=True)                               # the first bar: before its orders
    assert reconciled == [1]
    for _ in range(RECONCILE_EVERY + 5):         # due after RECONCILE_EVERY bars; all busy
        bar(busy=True)
    assert reconciled == [1]
    bar(busy=False)                              # the first quiet bar
    assert reconciled == [1, RECONCILE_EVERY + 7]
    broker._on_connect()                         # a reconnect: before the next orders
    bar(busy=True)
    assert reconciled[-1] == bars[0]
    start = bars[0]
    while bars[0] - start < 3 * RECONCILE_EVERY:
        bar(busy=True)
    assert reconciled[-1] == start + 2 * RECONCILE_EVERY       # overdue twice over


def test_the_stream_confirms_a_cancel_only_with_no_fill_of_the_order_among_its_events():
    """A trade's close waits for its exits' cancel to be confirmed; the stream's events not
    applied yet confirm it only if none of them fills the order (a partial fill before the
    cancel means fewer shares to close: the order is looked up and the fill booked)."""
    from types import SimpleNamespace as Ns

    from mtbt.alpaca.books import Part, Sent
    from mtbt.alpaca.broker import AlpacaBroker

    broker = AlpacaBroker(dry_run=True)
    broker.start()
    row = OrderRow("mtbt-20240802-0009-t2-tp1", 9, "2024-08-02", 2, "tp1", {"kind": "oco"})
    sent = Sent(row, [Part(None, row.client_order_id, "oco-1"),
                      Part(None, row.client_order_id, "leg-1", leg=True)], "new")

    def events(*pairs: tuple[str, str]) -> bool:
        broker._events.queue.clear()
        for order_id, event in pairs:
            broker._events.put(Ns(order=Ns(id=order_id), event=Ns(value=event)))
        return broker._stream_cancelled(sent)

    assert events(("oco-1", "canceled"), ("leg-1", "canceled"))
    assert not events(("oco-1", "pending_cancel"))
    assert not events(("leg-1", "partial_fill"), ("oco-1", "canceled"))
    assert not events(("other", "canceled"))
    assert events(("other", "fill"), ("oco-1", "canceled"))
