"""mtbt.fills gives exactly BackBroker's fill prices (as mtbt configures its slippage)."""
from __future__ import annotations

import backtrader as bt
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtbt.fills import limit_fill, market_fill, stop_fill

_EXEC = {"market": bt.Order.Market, "stop": bt.Order.Stop, "limit": bt.Order.Limit}


class _OneOrder(bt.Strategy):
    params = (("kind", "market"), ("side", 1), ("price", None))

    def __init__(self) -> None:
        self.fills: list[float] = []

    def next(self) -> None:
        if len(self) == 1:
            send = self.buy if self.p.side > 0 else self.sell
            send(size=1, exectype=_EXEC[self.p.kind], price=self.p.price)

    def notify_order(self, order: bt.Order) -> None:
        if order.status == order.Completed:
            self.fills.append(order.executed.price)


def _backtrader_fill(kind: str, side: int, price: float | None, bar0: tuple, bar1: tuple,
                     slippage: float) -> float | None:
    index = pd.date_range("2024-01-02 09:30", periods=2, freq="1min")
    frame = pd.DataFrame([bar0, bar1], index=index, columns=["open", "high", "low", "close"])
    frame["volume"] = 1000.0
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame, openinterest=None))
    cerebro.broker.setcash(1e9)
    cerebro.broker.set_slippage_fixed(slippage, slip_open=True, slip_limit=False,
                                      slip_match=True, slip_out=False)
    cerebro.addstrategy(_OneOrder, kind=kind, side=side, price=price)
    strat = cerebro.run()[0]
    assert len(strat.fills) <= 1
    return strat.fills[0] if strat.fills else None


_cents = st.integers(9_900, 10_100).map(lambda c: c / 100)


@st.composite
def _bars(draw: st.DrawFn) -> tuple[float, float, float, float]:
    o, c = draw(_cents), draw(_cents)
    high = max(o, c) + draw(st.integers(0, 40)) / 100
    low = min(o, c) - draw(st.integers(0, 40)) / 100
    return (o, high, low, c)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["market", "stop", "limit"]), side=st.sampled_from([1, -1]),
       bar0=_bars(), bar1=_bars(), price=_cents,
       slippage=st.sampled_from([0.0, 0.01, 0.03, 0.25]))
def test_pure_fills_match_backbroker(kind: str, side: int, bar0: tuple, bar1: tuple,
                                     price: float, slippage: float) -> None:
    expected = _backtrader_fill(kind, side, None if kind == "market" else price, bar0, bar1,
                                slippage)
    if kind == "market":
        got = market_fill(side, bar1, slippage)
    elif kind == "stop":
        got = stop_fill(side, price, bar1, slippage)
    else:
        got = limit_fill(side, price, bar1, slippage)
    assert got == expected


def test_examples() -> None:
    bar = (100.0, 100.5, 99.5, 100.2)
    assert market_fill(1, bar, 0.01) == 100.01
    assert market_fill(-1, bar, 0.01) == 99.99
    assert stop_fill(1, 100.3, bar, 0.01) == 100.31
    assert stop_fill(1, 101.0, bar, 0.01) is None
    assert stop_fill(-1, 100.1, bar, 0.0) == 100.0          # gapped through: the open
    assert limit_fill(1, 99.8, bar, 0.01) == 99.8           # reached: the limit, no slip
    assert limit_fill(1, 99.0, bar, 0.01) is None
    assert limit_fill(-1, 99.0, bar, 0.5) == 99.5            # open through: slipped, floored
