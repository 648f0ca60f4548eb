"""BacktestBroker: the run's ``Ledger`` plus local fills by backtrader's rules.

Equity orders are filled by BackBroker's rules (market at the next open, stops and limits on
touch, slippage, the submit-time cash check) and booked in the ledger. Structures are opened
and closed with ``open_structure`` / ``close_structure``; they fill at the next bar's open
at the chain's honest prices (buy at the ask, sell at the bid, fees per contract; the
synthetic chain's, or recorded option bars' where ``prices`` has them: see
``mtbt.options.recorded``), are marked at every bar's close (so ``getvalue``, equity.csv, the
drawdown checks and the tearsheet see them), and any still open when their expiry session
closes are cash settled at intrinsic value. A live broker offers the same two calls (as
multi-leg orders).
"""
from __future__ import annotations

import backtrader as bt

from mtbt.brokers.ledger import Ledger, LedgerBroker
from mtbt.options.book import StructureOrder
from mtbt.options.chain import ChainModel


class BacktestBroker(LedgerBroker, bt.brokers.BackBroker):
    """The ``Ledger`` plus local fills by backtrader's rules (see the module docstring).

    Params:
      - ``chain_model``: the ``ChainModel`` that prices every fill and mark (where
        ``prices`` has no recorded one)
      - ``prices``: a ``RecordedPrices`` source (None: the model everywhere)
    """

    params = (("chain_model", ChainModel()), ("prices", None))

    # BackBroker's own code reads and writes cash and positions: they are the ledger's
    @property
    def cash(self) -> float:
        return self._books().cash

    @cash.setter
    def cash(self, value: float) -> None:
        self._books().cash = value

    @property
    def positions(self):
        return self._books().positions

    @positions.setter
    def positions(self, value) -> None:
        self._books().positions = value

    def _books(self) -> Ledger:
        if "ledger" not in self.__dict__:       # BackBroker's __init__ sets cash first
            self.ledger = Ledger(self.p.chain_model, 0.0, self.getcommissioninfo)
        return self.ledger

    def start(self) -> None:
        self.ledger = Ledger(self.p.chain_model, self.p.cash, self.getcommissioninfo,
                             prices=self.p.prices)
        super().start()
        self._queued: list[StructureOrder] = []

    # -- the bar ---------------------------------------------------------------------------
    def next(self) -> None:
        if self._idle():
            return
        super().next()                  # ends with the value (_get_value) of this bar
        cash = self.cash
        queued, self._queued = self._queued, []
        for order in queued:
            self._execute_structure(order)
        self._settle_and_mark()
        if self.cash != cash:           # a structure opened, closed or settled: again
            self._get_value()

    def _idle(self) -> bool:
        """Whether this bar can change nothing: no order submitted, waiting, queued or to
        activate, no cash to add, no share position and no structure open. BackBroker's
        ``next`` would then only compute again the value it computed when that became so
        (most bars of an intraday strategy: flat outside its trades)."""
        books = self.ledger
        return not (self.pending or self.submitted or self._toactivate or self._queued
                    or self._cash_addition or self._userhist or self._fundhist
                    or books.structures or any(books.positions.values()))

    def get_value(self, datas=None, mkt=False, lever=False) -> float:
        value = super().get_value(datas=datas, mkt=mkt, lever=lever)
        return value + self.ledger.book_value if datas is None else value

    getvalue = get_value

    # -- local fills -----------------------------------------------------------------------
    def _execute(self, order, ago=None, price=None, cash=None, position=None, dtcoc=None):
        """A fill backtrader's rules decided (``ago`` None: the pseudo execution of the
        submit-time cash check, left to BackBroker), booked in the ledger."""
        if ago is None:
            return super()._execute(order, ago, price, cash, position, dtcoc)
        if price is None:
            return None
        size = order.executed.remsize
        if self.p.filler is not None:
            size = self.p.filler(order, price, ago) * (1 if order.isbuy() else -1)
        executed, refused = self.ledger.execute(order, size, price,
                                                dtcoc or order.data.datetime[ago])
        if executed:
            self.notify(order)
            self._ococheck(order)
        if refused:
            order.margin()
            self.notify(order)
            self._ococheck(order)
            self._bracketize(order, cancel=True)
        return None

    def _queue(self, order: StructureOrder) -> StructureOrder:
        self._queued.append(order)
        return order

    def _execute_structure(self, order: StructureOrder) -> None:
        data = order.data
        now = data.datetime.datetime(0)
        if order.kind == "close" and order.position.ref not in self.structures:
            order.status = order.Canceled          # settled or closed meanwhile
            self.notifs.append(order)
            return
        sign = 1 if order.kind == "open" else -1
        legs, premium, fees = self.ledger.fill_legs(order, data, now, sign)
        if order.limit is not None and premium < order.limit - 1e-9:
            order.status = order.Canceled          # the limit was not reached at this open
            self.notifs.append(order)
            return
        self._complete_structure(order, legs, premium, fees, now)
