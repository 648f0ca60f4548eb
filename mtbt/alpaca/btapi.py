"""What backtrader asks of a broker, answered for ``AlpacaBroker`` from its ``Ledger``.

``bt.BrokerBase`` leaves the order and account API abstract. This mixin gives it without any
local fill path (backtrader's ``BackBroker`` would simulate fills; nothing here fills an
order): orders made by ``buy``/``sell`` with their one-cancels-other groups, the notification
queue, cash, positions and the portfolio value (the ledger's, as of the last bar), and the
fund figures backtrader's strategy reads. A fill is booked by ``book_fill``, with what
Alpaca reported.
"""
from __future__ import annotations

import collections
import logging

import backtrader as bt

from mtbt.brokers.ledger import Ledger

log = logging.getLogger("mtbt.live")


class LedgerAccount:
    """Mixin of ``AlpacaBroker`` (see the module docstring); ``start_books`` starts it."""

    ledger: Ledger

    def start_books(self) -> None:
        self.ledger = Ledger(self.p.chain_model, self.p.cash, self.getcommissioninfo)
        self.startingcash = self.p.cash
        self.orders: list = []
        self.notifs: collections.deque = collections.deque()
        self._ocos: dict[int, int] = {}
        self._ocol: collections.defaultdict = collections.defaultdict(list)
        self._value = self.ledger.value()

    # -- cash, positions, value ------------------------------------------------------------
    @property
    def cash(self) -> float:
        return self.ledger.cash

    @cash.setter
    def cash(self, value: float) -> None:
        self.ledger.cash = value

    @property
    def positions(self):
        return self.ledger.positions

    def set_cash(self, cash: float) -> None:
        """The starting cash (before the run)."""
        self.startingcash = self.p.cash = cash
        if "ledger" in self.__dict__:
            self.ledger.cash = cash

    setcash = set_cash

    def get_cash(self) -> float:
        return self.ledger.cash

    getcash = get_cash

    def getposition(self, data) -> bt.Position:
        return self.ledger.positions[data]

    def get_value(self, datas=None, mkt=False, lever=False) -> float:
        """The portfolio's value at the last bar's close (structures at their marks); for
        ``datas``, their positions' value now."""
        return self._value if datas is None else self.ledger.value(datas)

    getvalue = get_value

    def update_value(self) -> None:
        """Value the books at this bar's close (``get_value`` answers it until the next)."""
        self._value = self.ledger.value()

    @property
    def fundvalue(self) -> float:
        return self._value

    @property
    def fundshares(self) -> float:
        return 1.0

    # -- orders and notifications ----------------------------------------------------------
    def buy(self, owner, data, size, price=None, plimit=None, exectype=None, valid=None,
            tradeid=0, oco=None, trailamount=None, trailpercent=None, parent=None,
            transmit=True, histnotify=False, _checksubmit=True, **kwargs):
        return self._order(bt.BuyOrder, owner, data, size, price, plimit, exectype, valid,
                           tradeid, oco, trailamount, trailpercent, parent, transmit, kwargs)

    def sell(self, owner, data, size, price=None, plimit=None, exectype=None, valid=None,
             tradeid=0, oco=None, trailamount=None, trailpercent=None, parent=None,
             transmit=True, histnotify=False, _checksubmit=True, **kwargs):
        return self._order(bt.SellOrder, owner, data, size, price, plimit, exectype, valid,
                           tradeid, oco, trailamount, trailpercent, parent, transmit, kwargs)

    def _order(self, cls, owner, data, size, price, plimit, exectype, valid, tradeid, oco,
               trailamount, trailpercent, parent, transmit, info: dict):
        order = cls(owner=owner, data=data, size=size, price=price, pricelimit=plimit,
                    exectype=exectype, valid=valid, tradeid=tradeid, trailamount=trailamount,
                    trailpercent=trailpercent, parent=parent, transmit=transmit)
        order.addinfo(**info)
        self._ocoize(order, oco)
        return self.submit(order)

    def _ocoize(self, order, oco) -> None:
        """Put ``order`` in ``oco``'s one-cancels-other group (its own group when None)."""
        leader = order.ref if oco is None else self._ocos[oco.ref]
        self._ocos[order.ref] = leader
        self._ocol[leader].append(order.ref)

    def notify(self, order) -> None:
        self.notifs.append(order.clone())

    def get_notification(self):
        return self.notifs.popleft() if self.notifs else None

    # -- fills -----------------------------------------------------------------------------
    def book_fill(self, order, qty: int, price: float, when: float) -> None:
        """Book ``qty`` of ``order`` that Alpaca filled at ``price`` (bar time ``when``, a
        backtrader date number) and notify it; its oco group is done."""
        executed, refused = self.ledger.execute(order, qty if order.isbuy() else -qty, price,
                                                when)
        if refused:       # Alpaca filled what mtbt's books say the cash cannot hold
            log.error("FILL %s: mtbt's books lack the cash for it (Margin); check the "
                      "account", getattr(order, "client_order_id", order.ref))
            order.margin()
        if executed or refused:
            self.notify(order)
        self._ocol.pop(self._ocos.get(order.ref), None)
