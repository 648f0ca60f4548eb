"""The Alpaca simulator, driven by alpaca-py's real clients over 127.0.0.1."""
from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator

import pandas as pd
import pytest
import requests

from mtbt.fills import limit_fill, market_fill, stop_fill
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.sessions import NY, sessions
from mtbt.sim import Faults, Simulator

with warnings.catch_warnings():          # alpaca-py imports websockets.legacy
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.live import StockDataStream
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import (
        OrderClass,
        OrderSide,
        OrderStatus,
        OrderType,
        PositionIntent,
        TimeInForce,
    )
    from alpaca.trading.requests import (
        GetCalendarRequest,
        GetOrdersRequest,
        LimitOrderRequest,
        MarketOrderRequest,
        OptionLegRequest,
        ReplaceOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
    )
    from alpaca.trading.stream import TradingStream

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")

DAY = dt.date(2024, 1, 3)
HISTORY = 10
SLIP = 0.01


def make_bars(n: int = 40, day: dt.date = DAY, base: float = 470.0) -> pd.DataFrame:
    """``n`` 1-minute bars from the open: drifting up 5 cents a bar, 30 cents high/low."""
    opened = sessions(day, day)[day].open
    index = pd.date_range(opened, periods=n, freq="1min").tz_localize(NY)
    opens = [round(base + 0.05 * i, 2) for i in range(n)]
    return pd.DataFrame({"open": opens, "high": [o + 0.3 for o in opens],
                         "low": [o - 0.3 for o in opens], "close": [o + 0.02 for o in opens],
                         "volume": 1000.0, "vix": 14.0}, index=index)


def ohlc(sim: Simulator, i: int) -> tuple[float, float, float, float]:
    row = sim._row(i)
    return row.ohlc


class TradeFeed:
    """A TradingStream in a thread, collecting TradeUpdate models."""

    def __init__(self, sim: Simulator) -> None:
        self.updates: list = []
        self.stream = TradingStream(*sim.keys, paper=True, url_override=sim.trade_stream_url)

        async def on_update(update) -> None:
            self.updates.append(update)

        self.stream.subscribe_trade_updates(on_update)
        self.thread = threading.Thread(target=self.stream.run, daemon=True)
        self.thread.start()
        assert sim.wait_listening(5)

    def wait(self, count: int, event: str | None = None, timeout: float = 5.0) -> list:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = [u for u in self.updates if event is None or u.event == event]
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"only {self.updates} arrived")

    def stop(self) -> None:
        self.stream.stop()


class BarFeed:
    """A StockDataStream in a thread, collecting Bar models."""

    def __init__(self, sim: Simulator) -> None:
        self.bars: list = []
        self.stream = StockDataStream(*sim.keys, url_override=sim.data_stream_url)

        async def on_bar(bar) -> None:
            self.bars.append(bar)

        self.stream.subscribe_bars(on_bar, sim.symbol)
        self.thread = threading.Thread(target=self.stream.run, daemon=True)
        self.thread.start()
        assert sim.wait_subscribed(5)

    def wait(self, count: int, timeout: float = 5.0) -> list:
        end = time.monotonic() + timeout
        while time.monotonic() < end and len(self.bars) < count:
            time.sleep(0.01)
        assert len(self.bars) >= count, self.bars
        return self.bars

    def stop(self) -> None:
        self.stream.stop()


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulator]]:
    made: list[Simulator] = []
    feeds: list = []

    def make(bars: pd.DataFrame | None = None, history: int = HISTORY, **kw) -> Simulator:
        bars = make_bars() if bars is None else bars
        sim = Simulator(bars, start=bars.index[history], slippage=kw.pop("slippage", SLIP),
                        **kw).start()
        sim.feeds = feeds
        made.append(sim)
        return sim

    yield make
    for feed in feeds:
        feed.stop()
    for sim in made:
        sim.close()
    for feed in feeds:
        feed.thread.join(5)


def trade_feed(sim: Simulator) -> TradeFeed:
    feed = TradeFeed(sim)
    sim.feeds.append(feed)
    return feed


def bar_feed(sim: Simulator) -> BarFeed:
    feed = BarFeed(sim)
    sim.feeds.append(feed)
    return feed


def client(sim: Simulator) -> TradingClient:
    tc = TradingClient(*sim.keys, paper=True, url_override=sim.trading_url)
    tc._retry_codes = []          # report 429s at once instead of sleeping 3 s
    return tc


def market(qty: float, side: OrderSide = OrderSide.BUY, **kw) -> MarketOrderRequest:
    return MarketOrderRequest(symbol="SPY", qty=qty, side=side, time_in_force=TimeInForce.DAY,
                              **kw)


# -- account, clock, calendar, assets ------------------------------------------------------
def test_account_clock_calendar_and_auth(make_sim) -> None:
    sim = make_sim()
    tc = client(sim)
    account = tc.get_account()
    assert float(account.cash) == 25_000.0 and float(account.equity) == 25_000.0
    clock = tc.get_clock()
    assert clock.timestamp == sim.now == pd.Timestamp("2024-01-03 09:40", tz=NY)
    assert clock.is_open
    assert clock.next_close == pd.Timestamp("2024-01-03 16:00", tz=NY)
    assert clock.next_open == pd.Timestamp("2024-01-04 09:30", tz=NY)
    days = tc.get_calendar(GetCalendarRequest(start=dt.date(2024, 7, 1),
                                              end=dt.date(2024, 7, 5)))
    assert [d.date for d in days] == [dt.date(2024, 7, d) for d in (1, 2, 3, 5)]
    assert days[2].close == dt.datetime(2024, 7, 3, 13, 0)      # early close
    assert days[0].open == dt.datetime(2024, 7, 1, 9, 30)
    assert tc.get_asset("SPY").exchange == "ARCA"
    assert tc.get_asset("SPY240103C00470000").asset_class == "us_option"

    bad = TradingClient("nope", "nope", paper=True, url_override=sim.trading_url)
    with pytest.raises(APIError) as err:
        bad.get_account()
    assert err.value.status_code == 401 and err.value.code == 40110000


def test_clock_closed_before_the_open(make_sim) -> None:
    bars = make_bars()
    sim = make_sim(bars, history=0)
    sim.exchange.now = pd.Timestamp("2024-01-03 08:00", tz=NY)
    clock = client(sim).get_clock()
    assert not clock.is_open
    assert clock.next_open == pd.Timestamp("2024-01-03 09:30", tz=NY)
    assert clock.next_close == pd.Timestamp("2024-01-03 16:00", tz=NY)


# -- equity orders ---------------------------------------------------------------------------
def test_market_order_fills_at_next_open_with_trade_updates(make_sim) -> None:
    sim = make_sim()
    feed = trade_feed(sim)
    tc = client(sim)
    order = tc.submit_order(market(10, client_order_id="m-1"))
    assert order.status == OrderStatus.NEW and order.client_order_id == "m-1"
    assert feed.wait(1, "new")[0].order.id == order.id
    assert sim.step()
    fill = feed.wait(1, "fill")[0]
    expected = market_fill(1, ohlc(sim, HISTORY), SLIP)
    assert fill.price == expected and fill.qty == 10 and fill.position_qty == 10
    assert fill.execution_id is not None and fill.order.status == OrderStatus.FILLED
    assert fill.timestamp == sim.now == pd.Timestamp("2024-01-03 09:41", tz=NY)
    got = tc.get_order_by_id(order.id)
    assert float(got.filled_avg_price) == expected and float(got.filled_qty) == 10
    position = tc.get_open_position("SPY")
    assert float(position.qty) == 10 and position.side == "long"
    assert float(position.avg_entry_price) == expected
    assert sim.positions() == {"SPY": 10}
    assert sim.executions[0].price == expected
    account = tc.get_account()
    assert float(account.cash) == pytest.approx(25_000 - 10 * expected)
    assert float(account.equity) == pytest.approx(25_000 - 10 * expected
                                                  + 10 * ohlc(sim, HISTORY)[3])


def test_limit_and_stop_orders(make_sim) -> None:
    bars = make_bars()
    k = HISTORY
    bars.iloc[k + 1, :4] = [470.0, 471.0, 469.0, 470.5]        # wide second bar
    sim = make_sim(bars)
    tc = client(sim)
    buy_limit = tc.submit_order(LimitOrderRequest(symbol="SPY", qty=5, side=OrderSide.BUY,
                                                  time_in_force=TimeInForce.DAY,
                                                  limit_price=469.2))
    buy_stop = tc.submit_order(StopOrderRequest(symbol="SPY", qty=3, side=OrderSide.BUY,
                                                time_in_force=TimeInForce.GTC,
                                                stop_price=470.9))
    sim.step()                       # bar k: neither reached
    assert tc.get_order_by_id(buy_limit.id).status == OrderStatus.NEW
    assert tc.get_order_by_id(buy_stop.id).status == OrderStatus.NEW
    sim.step()                       # bar k+1 reaches both
    limit = tc.get_order_by_id(buy_limit.id)
    stop = tc.get_order_by_id(buy_stop.id)
    assert float(limit.filled_avg_price) == limit_fill(1, 469.2, ohlc(sim, k + 1), SLIP)
    assert float(stop.filled_avg_price) == stop_fill(1, 470.9, ohlc(sim, k + 1), SLIP)
    assert sim.positions() == {"SPY": 8}


def test_oco_stop_wins_a_tie(make_sim) -> None:
    bars = make_bars()
    k = HISTORY
    bars.iloc[k + 1, :4] = [470.0, 471.0, 469.0, 470.5]
    sim = make_sim(bars)
    feed = trade_feed(sim)
    tc = client(sim)
    tc.submit_order(market(10))
    sim.step()
    oco = tc.submit_order(LimitOrderRequest(
        symbol="SPY", qty=10, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
        order_class=OrderClass.OCO, take_profit=TakeProfitRequest(limit_price=470.9),
        stop_loss=StopLossRequest(stop_price=469.1)))
    assert oco.order_class == OrderClass.OCO and len(oco.legs) == 1
    assert oco.type == OrderType.LIMIT and oco.legs[0].type == OrderType.STOP
    sim.step()
    _stop_leg_closed_the_pair(sim, feed, oco, oco.legs[0].id, 469.1, k + 1)
    assert tc.get_order_by_id(oco.id).status == OrderStatus.CANCELED


def _stop_leg_closed_the_pair(sim, feed, oco, leg_id, stop: float, bar: int) -> None:
    """The oco's stop leg filled at ``stop`` on bar ``bar`` (after the entry's fill
    event), the pair's limit was cancelled, and the account is flat."""
    fill = feed.wait(2, "fill")[1]
    assert fill.order.id == leg_id
    assert fill.price == stop_fill(-1, stop, ohlc(sim, bar), SLIP)
    assert feed.wait(1, "canceled")[0].order.id == oco.id
    assert sim.positions() == {}


def test_oco_take_profit_cancels_the_stop(make_sim) -> None:
    sim = make_sim()
    tc = client(sim)
    tc.submit_order(market(4))
    sim.step()
    oco = tc.submit_order(LimitOrderRequest(
        symbol="SPY", qty=4, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
        order_class=OrderClass.OCO, take_profit=TakeProfitRequest(limit_price=470.9),
        stop_loss=StopLossRequest(stop_price=400.0)))
    while sim.positions() and sim.step():
        pass
    done = tc.get_order_by_id(oco.id)
    assert done.status == OrderStatus.FILLED and float(done.filled_avg_price) == 470.9
    assert done.legs[0].status == OrderStatus.CANCELED


def test_client_order_id_unique_and_lookup(make_sim) -> None:
    sim = make_sim()
    tc = client(sim)
    first = tc.submit_order(market(1, client_order_id="dup"))
    with pytest.raises(APIError) as err:
        tc.submit_order(market(1, client_order_id="dup"))
    assert err.value.status_code == 422 and err.value.code == 42210000
    assert err.value.message == "client_order_id must be unique"
    assert tc.get_order_by_client_id("dup").id == first.id
    generated = tc.submit_order(market(1))
    uuid.UUID(generated.client_order_id)
    assert len(sim.orders) == 2 and sim.rejections[0][0] == 422


def test_bad_bodies_are_422(make_sim) -> None:
    sim = make_sim()
    url = f"{sim.trading_url}/v2/orders"
    headers = {"APCA-API-KEY-ID": sim.keys[0], "APCA-API-SECRET-KEY": sim.keys[1]}
    for body in ({"symbol": "SPY", "side": "buy", "type": "market", "time_in_force": "day"},
                 {"symbol": "QQQ", "qty": 1, "side": "buy", "type": "market",
                  "time_in_force": "day"},
                 {"symbol": "SPY", "qty": 1, "side": "buy", "type": "limit",
                  "time_in_force": "day"},
                 {"symbol": "SPY", "qty": 1, "side": "up", "type": "market",
                  "time_in_force": "day"}):
        answer = requests.post(url, json=body, headers=headers, timeout=5)
        assert answer.status_code == 422 and set(answer.json()) == {"code", "message"}
    assert sim.orders == []


def test_cancel_and_cancel_twice(make_sim) -> None:
    sim = make_sim()
    feed = trade_feed(sim)
    tc = client(sim)
    order = tc.submit_order(LimitOrderRequest(symbol="SPY", qty=2, side=OrderSide.BUY,
                                              time_in_force=TimeInForce.DAY, limit_price=400))
    assert tc.cancel_order_by_id(order.id) is None
    assert feed.wait(1, "canceled")[0].order.status == OrderStatus.CANCELED
    with pytest.raises(APIError) as err:
        tc.cancel_order_by_id(order.id)
    assert err.value.status_code == 422
    assert err.value.message == 'order is already in "canceled" state'
    open_now = tc.get_orders(GetOrdersRequest(status="open"))
    assert open_now == []
    closed = tc.get_orders(GetOrdersRequest(status="closed"))
    assert [o.id for o in closed] == [order.id]
    tc.submit_order(market(1))
    assert [r.status for r in tc.cancel_orders()] == [200]


def test_qty_available_rule(make_sim) -> None:
    sim = make_sim()
    tc = client(sim)
    tc.submit_order(market(10))
    sim.step()
    tc.submit_order(LimitOrderRequest(symbol="SPY", qty=6, side=OrderSide.SELL,
                                      time_in_force=TimeInForce.GTC, limit_price=500))
    with pytest.raises(APIError) as err:
        tc.submit_order(market(5, OrderSide.SELL))
    assert err.value.status_code == 403 and err.value.code == 40310000
    assert err.value.message == "insufficient qty available for order (requested: 5, available: 4)"
    tc.submit_order(LimitOrderRequest(              # the oco pair reserves 4 once
        symbol="SPY", qty=4, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
        order_class=OrderClass.OCO, take_profit=TakeProfitRequest(limit_price=500),
        stop_loss=StopLossRequest(stop_price=300)))
    with pytest.raises(APIError) as err:
        tc.submit_order(market(1, OrderSide.SELL))
    assert "available: 0" in err.value.message
    tc.submit_order(market(1))                       # adding is always fine
    with pytest.raises(APIError):
        tc.close_position("SPY")                     # everything is held by open orders
    assert len(tc.cancel_orders()) == 3
    close = tc.close_position("SPY")
    assert close.side == OrderSide.SELL and float(close.qty) == 10
    sim.step()
    assert sim.positions() == {}
    with pytest.raises(APIError) as err:
        tc.get_open_position("QQQ")
    assert err.value.status_code == 404 and err.value.message == "position does not exist"


def test_shorts_and_day_orders_expire_at_the_close(make_sim) -> None:
    day = dt.date(2024, 11, 29)                     # closes at 13:00
    bars = make_bars(n=210, day=day)
    sim = make_sim(bars, history=205)
    feed = trade_feed(sim)
    tc = client(sim)
    tc.submit_order(market(3, OrderSide.SELL))
    day_limit = tc.submit_order(LimitOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY,
                                                  time_in_force=TimeInForce.DAY,
                                                  limit_price=100))
    gtc_limit = tc.submit_order(LimitOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY,
                                                  time_in_force=TimeInForce.GTC,
                                                  limit_price=100))
    while sim.step():
        pass
    assert sim.finished.is_set() and sim.positions() == {"SPY": -3}
    assert tc.get_open_position("SPY").side == "short"
    assert tc.get_order_by_id(day_limit.id).status == OrderStatus.EXPIRED
    assert tc.get_order_by_id(gtc_limit.id).status == OrderStatus.NEW
    assert feed.wait(1, "expired")[0].order.id == day_limit.id


# -- replacing orders (PATCH /v2/orders/{id}) ------------------------------------------------
def stop(qty: float, stop_price: float, side: OrderSide = OrderSide.SELL, **kw) -> StopOrderRequest:
    return StopOrderRequest(symbol="SPY", qty=qty, side=side, time_in_force=TimeInForce.GTC,
                            stop_price=stop_price, **kw)


def oco_exit(qty: float, take: float, stop_price: float) -> LimitOrderRequest:
    return LimitOrderRequest(symbol="SPY", qty=qty, side=OrderSide.SELL,
                             time_in_force=TimeInForce.GTC, order_class=OrderClass.OCO,
                             take_profit=TakeProfitRequest(limit_price=take),
                             stop_loss=StopLossRequest(stop_price=stop_price))


def test_replacing_a_stop_moves_it_and_it_fills_at_the_new_price(make_sim) -> None:
    sim = make_sim()
    feed = trade_feed(sim)
    tc = client(sim)
    tc.submit_order(market(10))
    sim.step()                                                   # bar k: long 10
    old = tc.submit_order(stop(10, 400.0, client_order_id="stop-1"))
    new = tc.replace_order_by_id(old.id, ReplaceOrderRequest(stop_price=470.3,
                                                             client_order_id="stop-2"))
    assert new.id != old.id and str(new.replaces) == str(old.id)
    assert new.client_order_id == "stop-2" and new.status == OrderStatus.NEW
    assert float(new.stop_price) == 470.3 and float(new.qty) == 10
    assert new.type == OrderType.STOP and new.time_in_force == TimeInForce.GTC
    was = tc.get_order_by_id(old.id)
    assert was.status == OrderStatus.REPLACED and str(was.replaced_by) == str(new.id)
    assert was.replaced_at == sim.now and float(was.stop_price) == 400.0
    replaced, created = feed.wait(1, "replaced")[0], feed.wait(3, "new")[2]
    assert replaced.order.id == old.id and replaced.order.status == OrderStatus.REPLACED
    assert created.order.id == new.id and str(created.order.replaces) == str(old.id)
    events = [(u.event, str(u.order.id)) for u in feed.updates]
    assert events.index(("replaced", str(old.id))) < events.index(("new", str(new.id)))
    assert [o.id for o in tc.get_orders(GetOrdersRequest(status="open"))] == [new.id]
    sim.step()                                                   # bar k+1: low 470.25
    fill = feed.wait(2, "fill")[1]
    assert fill.order.id == new.id
    assert fill.price == stop_fill(-1, 470.3, ohlc(sim, HISTORY + 1), SLIP)
    assert sim.positions() == {} and len(sim.executions) == 2
    assert tc.get_order_by_id(old.id).status == OrderStatus.REPLACED
    assert sim.requests["PATCH /v2/orders/{id}"] == 1


def test_replacing_a_limits_price_and_qty(make_sim) -> None:
    sim = make_sim()
    tc = client(sim)
    old = tc.submit_order(LimitOrderRequest(symbol="SPY", qty=5, side=OrderSide.BUY,
                                            time_in_force=TimeInForce.DAY, limit_price=400))
    new = tc.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=470.6, qty=3))
    uuid.UUID(new.client_order_id)                          # none given: a fresh one
    assert new.client_order_id != old.client_order_id
    assert float(new.limit_price) == 470.6 and float(new.qty) == 3
    assert new.time_in_force == TimeInForce.DAY
    sim.step()
    done = tc.get_order_by_id(new.id)
    assert done.status == OrderStatus.FILLED and float(done.filled_qty) == 3
    assert float(done.filled_avg_price) == limit_fill(1, 470.6, ohlc(sim, HISTORY), SLIP)
    assert tc.get_order_by_id(old.id).status == OrderStatus.REPLACED
    assert sim.positions() == {"SPY": 3}
    closed = tc.get_orders(GetOrdersRequest(status="closed", direction="asc"))
    assert [(o.id, o.status) for o in closed] == [(old.id, OrderStatus.REPLACED),
                                                  (new.id, OrderStatus.FILLED)]


def test_replace_refusals(make_sim) -> None:
    sim = make_sim()
    feed = trade_feed(sim)
    tc = client(sim)
    filled = tc.submit_order(market(10))
    sim.step()

    def refused(order_id, status: int, message: str, **changes) -> None:
        with pytest.raises(APIError) as err:
            tc.replace_order_by_id(order_id, ReplaceOrderRequest(**changes))
        assert (err.value.status_code, err.value.message) == (status, message)

    refused(filled.id, 422, 'order is already in "filled" state', qty=5)
    missing = str(uuid.uuid4())
    refused(missing, 404, f"order not found for {missing}", qty=5)
    working = tc.submit_order(LimitOrderRequest(symbol="SPY", qty=2, side=OrderSide.SELL,
                                                time_in_force=TimeInForce.GTC,
                                                limit_price=500, client_order_id="tp"))
    refused(working.id, 422, "order parameters are not changed", limit_price=500)
    refused(working.id, 422, "limit orders must not have stop_price", stop_price=450)
    refused(working.id, 422, "limit orders must not have trail", trail=1.0)
    refused(working.id, 422, "client_order_id must be unique", limit_price=501,
            client_order_id="tp")
    refused(working.id, 403, "insufficient qty available for order (requested: 11, "
            "available: 10)", qty=11)
    moved = tc.replace_order_by_id(working.id, ReplaceOrderRequest(limit_price=501))
    refused(working.id, 422, 'order is already in "replaced" state', limit_price=502)
    tc.cancel_order_by_id(moved.id)
    refused(moved.id, 422, 'order is already in "canceled" state', limit_price=502)
    assert [u.event for u in feed.wait(1, "replaced")] == ["replaced"]   # (its event may
    assert {o.status for o in sim.orders} == {"filled", "replaced", "canceled"}  # lag)


def test_moving_the_stop_leg_of_an_oco_pair(make_sim) -> None:
    """The paper trader's trail: PATCH the oco's stop leg; the pair stays (the parent keeps
    its id, the new leg takes the old one's place) and works at the new stop."""
    sim = make_sim()
    feed = trade_feed(sim)
    tc = client(sim)
    tc.submit_order(market(10))
    sim.step()
    oco = tc.submit_order(oco_exit(10, take=500.0, stop_price=400.0))
    leg = oco.legs[0]
    new = tc.replace_order_by_id(leg.id, ReplaceOrderRequest(stop_price=470.3,
                                                             client_order_id="trail-1"))
    assert str(new.replaces) == str(leg.id) and new.order_class == OrderClass.OCO
    assert new.type == OrderType.STOP and float(new.stop_price) == 470.3
    pair = tc.get_order_by_id(oco.id)
    assert pair.status == OrderStatus.NEW and float(pair.limit_price) == 500.0
    assert [(lg.id, float(lg.stop_price)) for lg in pair.legs] == [(new.id, 470.3)]
    assert tc.get_order_by_id(leg.id).status == OrderStatus.REPLACED
    assert tc.get_order_by_client_id("trail-1").id == new.id
    assert float(tc.get_open_position("SPY").qty_available) == 0      # still held by the pair
    assert feed.wait(1, "replaced")[0].order.id == leg.id
    with pytest.raises(APIError) as err:
        tc.replace_order_by_id(new.id, ReplaceOrderRequest(qty=5))
    assert err.value.status_code == 422
    with pytest.raises(APIError) as err:                # the old leg is done with
        tc.cancel_order_by_id(leg.id)
    assert err.value.message == 'order is already in "replaced" state'
    assert tc.get_order_by_id(oco.id).status == OrderStatus.NEW
    sim.step()
    _stop_leg_closed_the_pair(sim, feed, oco, new.id, 470.3, HISTORY + 1)


def test_replacing_the_limit_of_an_oco_pair_keeps_its_stop_leg(make_sim) -> None:
    sim = make_sim()
    tc = client(sim)
    tc.submit_order(market(4))
    sim.step()
    oco = tc.submit_order(oco_exit(4, take=500.0, stop_price=400.0))
    new = tc.replace_order_by_id(oco.id, ReplaceOrderRequest(limit_price=470.6))
    assert new.order_class == OrderClass.OCO and [lg.id for lg in new.legs] == [oco.legs[0].id]
    assert tc.get_order_by_id(oco.id).status == OrderStatus.REPLACED
    sim.step()
    done = tc.get_order_by_id(new.id)
    assert done.status == OrderStatus.FILLED and float(done.filled_avg_price) == 470.6
    assert done.legs[0].status == OrderStatus.CANCELED and sim.positions() == {}


def test_replacing_a_partly_filled_order_leaves_its_fills_behind(make_sim) -> None:
    """As Alpaca does (its docs; alpacahq/Alpaca-API#165): the new order copies the old one's
    qty unless told otherwise and starts with nothing filled; the fills stay on the old one."""
    sim = make_sim()
    tc = client(sim)
    tc.submit_order(market(10))
    sim.step()
    exit_ = tc.submit_order(LimitOrderRequest(symbol="SPY", qty=10, side=OrderSide.SELL,
                                              time_in_force=TimeInForce.GTC, limit_price=500))
    with sim._lock:                                # a partial fill, as a venue would give
        part = sim.exchange.book.find(str(exit_.id))
        sim.exchange.account.execute(part, 4, 500.0, sim.now, sim.now)
    with pytest.raises(APIError) as err:           # 10 more would sell 4 shares not held
        tc.replace_order_by_id(exit_.id, ReplaceOrderRequest(limit_price=499))
    assert err.value.status_code == 403 and "available: 6" in err.value.message
    new = tc.replace_order_by_id(exit_.id, ReplaceOrderRequest(limit_price=499, qty=6))
    assert float(new.qty) == 6 and float(new.filled_qty) == 0
    was = tc.get_order_by_id(exit_.id)
    assert was.status == OrderStatus.REPLACED and float(was.filled_qty) == 4


def _call_spread_net(sim) -> float:
    """The 462/470 call spread's net debit at the first streamed bar's open, as the
    simulator's chain fills it (buy at the ask, sell at the bid)."""
    row = sim._row(HISTORY)
    chain = SyntheticChain(sim.chain_model, row.open, row.vix, dt.datetime(2024, 1, 3, 9, 40),
                           sessions(DAY, DAY)[DAY].close)
    return chain.fill("C", 462.0, 1) - chain.fill("C", 470.0, -1)


def _call_spread_legs(low: int, high: int) -> list[OptionLegRequest]:
    """The legs that open a 2024-01-03 call debit spread: buy ``low``, sell ``high``."""
    return [OptionLegRequest(symbol=f"SPY240103C00{low}000", ratio_qty=1, side=OrderSide.BUY,
                             position_intent=PositionIntent.BUY_TO_OPEN),
            OptionLegRequest(symbol=f"SPY240103C00{high}000", ratio_qty=1, side=OrderSide.SELL,
                             position_intent=PositionIntent.SELL_TO_OPEN)]


def test_replacing_an_mleg_limit_reprices_all_its_legs(make_sim) -> None:
    sim = make_sim(chain_model=ChainModel())
    tc = client(sim)
    net = _call_spread_net(sim)
    legs = _call_spread_legs(462, 470)
    old = tc.submit_order(LimitOrderRequest(qty=1, order_class=OrderClass.MLEG, legs=legs,
                                            time_in_force=TimeInForce.DAY, limit_price=1.0))
    with pytest.raises(APIError) as err:                 # one leg alone: no
        tc.replace_order_by_id(old.legs[0].id, ReplaceOrderRequest(qty=2))
    assert err.value.status_code == 422
    new = tc.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=round(net, 2)))
    assert new.order_class == OrderClass.MLEG and float(new.limit_price) == round(net, 2)
    assert [lg.symbol for lg in new.legs] == [lg.symbol for lg in old.legs]
    was = tc.get_order_by_id(old.id)
    assert was.status == OrderStatus.REPLACED
    assert [str(lg.replaced_by) for lg in was.legs] == [str(lg.id) for lg in new.legs]
    sim.step()
    assert tc.get_order_by_id(new.id).status == OrderStatus.FILLED
    assert sim.positions() == {"SPY240103C00462000": 1, "SPY240103C00470000": -1}


def test_error_every_counts_replace_requests(make_sim) -> None:
    sim = make_sim(faults=Faults(error_every=3))
    tc = client(sim)
    order = tc.submit_order(stop(1, 400.0, OrderSide.BUY))            # 1
    tc.get_clock()                                                     # 2
    with pytest.raises(APIError) as err:                               # 3: fails first
        tc.replace_order_by_id(order.id, ReplaceOrderRequest(stop_price=480))
    assert err.value.status_code == 500
    assert sim.injected == [{"route": "PATCH /v2/orders/{id}", "status": 500,
                             "created": False}]
    assert tc.get_order_by_id(order.id).status == OrderStatus.NEW     # 4
    new = tc.replace_order_by_id(order.id, ReplaceOrderRequest(stop_price=480))   # 5
    assert float(new.stop_price) == 480


# -- options ---------------------------------------------------------------------------------
def test_mleg_fills_each_leg_at_the_synthetic_chain(make_sim) -> None:
    model = ChainModel()
    sim = make_sim(chain_model=model)
    feed = trade_feed(sim)
    tc = client(sim)
    legs = _call_spread_legs(470, 475)
    order = tc.submit_order(MarketOrderRequest(qty=2, order_class=OrderClass.MLEG,
                                               time_in_force=TimeInForce.DAY, legs=legs))
    assert order.order_class == OrderClass.MLEG and order.symbol is None
    assert len(order.legs) == 2
    sim.step()
    row = sim._row(HISTORY)
    chain = SyntheticChain(model, row.open, row.vix, dt.datetime(2024, 1, 3, 9, 40),
                           sessions(DAY, DAY)[DAY].close)
    buy, sell = chain.fill("C", 470.0, 1), chain.fill("C", 475.0, -1)
    done = tc.get_order_by_id(order.id)
    assert done.status == OrderStatus.FILLED
    assert float(done.filled_avg_price) == pytest.approx(buy - sell, abs=1e-12)
    assert [float(leg.filled_avg_price) for leg in done.legs] == [buy, sell]
    assert sim.positions() == {"SPY240103C00470000": 2, "SPY240103C00475000": -2}
    fees = 4 * model.fee_per_contract
    assert sim.cash == pytest.approx(25_000 - 200 * (buy - sell) - fees)
    assert feed.wait(3, "fill")[-1].order.id == order.id
    positions = {p.symbol: p for p in tc.get_all_positions()}
    assert positions["SPY240103C00475000"].side == "short"
    assert positions["SPY240103C00470000"].exchange == ""
    account = tc.get_account()
    assert float(account.equity) != float(account.cash)


def test_an_mleg_limit_fills_at_its_net_price_to_the_cent_and_not_a_cent_short(
        make_sim) -> None:
    """The net price of an mleg limit is a debit positive (buys count +); it fills when the
    legs' net at the next open is at most the limit, to the cent (float noise aside)."""
    sim = make_sim(chain_model=ChainModel())
    tc = client(sim)
    net = _call_spread_net(sim)                  # 8.96 - 1.86
    assert net > round(net, 2)                   # 7.1000000000000005: float noise over 7.10

    def spread(limit: float, cid: str):
        return tc.submit_order(LimitOrderRequest(
            qty=1, order_class=OrderClass.MLEG, time_in_force=TimeInForce.DAY,
            legs=_call_spread_legs(462, 470),
            limit_price=limit, client_order_id=cid))

    at, short = spread(round(net, 2), "at"), spread(round(net - 0.01, 2), "short")
    sim.step()
    assert tc.get_order_by_id(at.id).status == OrderStatus.FILLED
    assert float(tc.get_order_by_id(at.id).filled_avg_price) == pytest.approx(net, abs=1e-12)
    assert tc.get_order_by_id(short.id).status == OrderStatus.NEW


def test_options_settle_at_intrinsic_at_the_close(make_sim) -> None:
    day = dt.date(2024, 11, 29)
    bars = make_bars(n=210, day=day)
    sim = make_sim(bars, history=200)
    tc = client(sim)
    tc.submit_order(MarketOrderRequest(symbol="SPY241129C00470000", qty=1, side=OrderSide.BUY,
                                       time_in_force=TimeInForce.DAY))
    while sim.step():
        pass
    last_close = bars["close"].iloc[-1]
    assert sim.positions() == {}
    assert sim.settlements[0]["value"] == pytest.approx(last_close - 470.0)


# -- market data -----------------------------------------------------------------------------
def test_history_bars_only_up_to_now_with_pagination(make_sim) -> None:
    sim = make_sim()
    data = StockHistoricalDataClient(*sim.keys, url_override=sim.data_url)
    request = StockBarsRequest(symbol_or_symbols="SPY", timeframe=TimeFrame.Minute,
                               start=dt.datetime(2024, 1, 3, tzinfo=dt.UTC))
    bars = data.get_stock_bars(request).data["SPY"]
    assert len(bars) == HISTORY
    assert bars[0].timestamp == pd.Timestamp("2024-01-03 09:30", tz=NY)
    assert bars[-1].timestamp == pd.Timestamp("2024-01-03 09:39", tz=NY)
    sim.step()
    sim.step()
    assert len(data.get_stock_bars(request).data["SPY"]) == HISTORY + 2

    url = f"{sim.data_url}/v2/stocks/bars"
    headers = {"APCA-API-KEY-ID": sim.keys[0], "APCA-API-SECRET-KEY": sim.keys[1]}
    query = {"symbols": "SPY", "timeframe": "1Min", "limit": 5,
             "start": "2024-01-03T14:30:00Z", "end": "2024-01-03T14:36:00Z"}
    page = requests.get(url, params=query, headers=headers, timeout=5).json()
    assert len(page["bars"]["SPY"]) == 5 and page["next_page_token"]
    page2 = requests.get(url, params={**query, "page_token": page["next_page_token"]},
                         headers=headers, timeout=5).json()
    assert [b["t"] for b in page2["bars"]["SPY"]] == ["2024-01-03T14:35:00Z",
                                                      "2024-01-03T14:36:00Z"]
    assert page2["next_page_token"] is None
    with pytest.raises(APIError) as err:
        data.get_stock_bars(StockBarsRequest(symbol_or_symbols="SPY",
                                             timeframe=TimeFrame(5, TimeFrameUnit.Minute)))
    assert err.value.status_code == 422


def test_data_stream_gets_bars_with_start_timestamps(make_sim) -> None:
    sim = make_sim()
    feed = bar_feed(sim)
    for _ in range(3):
        sim.step()
    got = feed.wait(3)
    assert [b.timestamp for b in got] == [sim._index[HISTORY + i] for i in range(3)]
    assert [b.open for b in got] == [ohlc(sim, HISTORY + i)[0] for i in range(3)]
    assert got[0].symbol == "SPY" and got[0].vwap is not None


def test_lockstep_waits_for_ready(make_sim) -> None:
    sim = make_sim()
    feed = bar_feed(sim)
    stop = threading.Event()
    runner = threading.Thread(target=sim.run, kwargs={"lockstep": True, "stop": stop},
                              daemon=True)
    left = sim.bars_left
    runner.start()
    try:
        time.sleep(0.2)
        assert sim.bars_left == left                      # no ack yet
        ready = f"{sim.trading_url}/_sim/ready"
        requests.post(ready, json={"t": sim._index[HISTORY - 1].isoformat()}, timeout=5)
        feed.wait(1)
        time.sleep(0.2)
        assert sim.bars_left == left - 1                  # waits for the ack of that bar
        stale = requests.post(ready, json={"t": "2024-01-03T14:39:00Z"}, timeout=5)
        assert stale.status_code == 200
        time.sleep(0.1)
        assert sim.bars_left == left - 1
        requests.post(ready, json={"t": "2024-01-03T09:40:00"}, timeout=5)   # naive: NY
        feed.wait(2)
        assert feed.bars[1].timestamp == pd.Timestamp("2024-01-03 09:41", tz=NY)
    finally:
        stop.set()
        runner.join(5)


def test_run_without_lockstep_emits_everything(make_sim) -> None:
    sim = make_sim()
    sim.run(speed=0, lockstep=False)
    assert sim.finished.is_set() and sim.bars_left == 0
    assert sim.now == sim._index[-1] + pd.Timedelta(minutes=1)


# -- faults ----------------------------------------------------------------------------------
def test_error_every_leaves_an_order_behind_an_error(make_sim) -> None:
    sim = make_sim(faults=Faults(error_every=2))
    tc = client(sim)
    tc.get_clock()                                            # 1: fine
    with pytest.raises(APIError) as err:                      # 2: fails before creating
        tc.submit_order(market(1, client_order_id="a"))
    assert err.value.status_code == 500 and sim.orders == []
    tc.get_clock()                                            # 3
    with pytest.raises(APIError) as err:                      # 4: fails after creating
        tc.submit_order(market(1, client_order_id="b"))
    assert err.value.status_code == 500
    assert [o.client_order_id for o in sim.orders] == ["b"]   # the duplicate-order trap
    assert tc.get_order_by_client_id("b").status == OrderStatus.NEW   # 5
    with pytest.raises(APIError) as err:                      # 6: 429 this time
        tc.get_account()
    assert err.value.status_code == 429
    assert [f["created"] for f in sim.injected] == [False, True, False]


def test_slow_every(make_sim) -> None:
    sim = make_sim(faults=Faults(slow_every=2, slow_seconds=0.3))
    tc = client(sim)
    began = time.monotonic()
    tc.get_clock()
    assert time.monotonic() - began < 0.25
    began = time.monotonic()
    tc.get_clock()
    assert time.monotonic() - began >= 0.3


def test_drop_streams_every(make_sim) -> None:
    sim = make_sim(faults=Faults(drop_streams_every=0.3))
    trade_feed(sim)
    end = time.monotonic() + 8
    while sim.stream_connections < 2 and time.monotonic() < end:
        time.sleep(0.05)
    assert sim._streams.drops >= 1 and sim.stream_connections >= 2   # the client came back


def test_duplicate_fills(make_sim) -> None:
    sim = make_sim(faults=Faults(duplicate_fills=True))
    feed = trade_feed(sim)
    client(sim).submit_order(market(2))
    sim.step()
    fills = feed.wait(2, "fill")
    assert fills[0].execution_id == fills[1].execution_id
    assert len(sim.executions) == 1 and sim.positions() == {"SPY": 2}


def test_reorder_fills(make_sim) -> None:
    sim = make_sim(faults=Faults(reorder_fills=True))
    feed = trade_feed(sim)
    tc = client(sim)
    first, second = tc.submit_order(market(1)), tc.submit_order(market(2))
    sim.step()
    assert [u.order.id for u in feed.wait(2, "fill")] == [second.id, first.id]


def test_partial_fills(make_sim) -> None:
    sim = make_sim(faults=Faults(partial_fills=True))
    feed = trade_feed(sim)
    order = client(sim).submit_order(market(7))
    sim.step()
    partial, fill = feed.wait(1, "partial_fill")[0], feed.wait(1, "fill")[0]
    assert (partial.qty, fill.qty) == (3, 4) and partial.price == fill.price
    assert partial.order.status == OrderStatus.PARTIALLY_FILLED
    assert partial.position_qty == 3 and fill.position_qty == 7
    assert fill.order.id == order.id and len(sim.executions) == 2


def test_close_is_idempotent_and_context_manager() -> None:
    bars = make_bars()
    with Simulator(bars, start=bars.index[HISTORY]) as sim:
        assert sim.trading_url.startswith("http://127.0.0.1:")
        assert sim.data_stream_url.endswith("/v2/iex")
    sim.close()
    assert sim._closed


# -- layout ----------------------------------------------------------------------------------
def _sim_imports() -> dict[str, set[str]]:
    """{module: sim modules it imports}, counting every import statement (TYPE_CHECKING
    blocks and function bodies included)."""
    import ast
    from pathlib import Path

    graph = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "mtbt" / "sim").glob("*.py")):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found |= {n.split(".")[2] for n in names if n.startswith("mtbt.sim.")}
        graph[path.stem] = found
    return graph


def test_the_simulator_modules_import_each_other_without_cycles() -> None:
    graph = _sim_imports()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())
    assert "simulator" not in graph["rest"]


def test_the_rest_server_uses_only_the_simulators_public_api() -> None:
    import ast
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / "mtbt" / "sim" / "rest.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, (ast.Name, ast.Attribute)):
            owner = node.value.id if isinstance(node.value, ast.Name) else node.value.attr
            if owner == "sim":
                assert not node.attr.startswith("_"), f"rest.py reads sim.{node.attr}"
                assert node.attr != "exchange", "rest.py reaches into sim.exchange"
