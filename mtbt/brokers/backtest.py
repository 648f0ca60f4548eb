"""BacktestBroker: backtrader's BackBroker plus option structures marked to model.

Equity orders go through BackBroker unchanged. Structures are opened and closed with
``open_structure`` / ``close_structure``; they fill at the next bar's open at the synthetic
chain's honest prices (buy at the ask, sell at the bid, fees per contract), are marked to the
model at every bar's close (so ``getvalue``, equity.csv, the drawdown checks and the
tearsheet see them), and any still open when their expiry session closes are cash settled
at intrinsic value. A live broker offers the same two calls (as multi-leg orders).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import backtrader as bt

from mtbt.options.book import LegFill, StructureOrder, StructurePosition
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.structures import Structure
from mtbt.sessions import sessions

_MINUTE = dt.timedelta(minutes=1)


class BacktestBroker(bt.brokers.BackBroker):
    """BackBroker that can also hold option structures (see the module docstring).

    Params:
      - ``chain_model``: the ``ChainModel`` that prices every fill and mark
    """

    params = (("chain_model", ChainModel()),)

    def start(self) -> None:
        super().start()
        self.structures: dict[int, StructurePosition] = {}
        self._queued: list[StructureOrder] = []
        self._book_value = 0.0
        self._closes: dict[dt.date, dt.datetime] = {}

    # -- the strategy's API ----------------------------------------------------------------
    def open_structure(self, owner, data, structure: Structure, contracts: int,
                       **info) -> StructureOrder:
        """Buy ``contracts`` of ``structure`` (sell, for a credit) at the next bar's open."""
        return self._queue(StructureOrder(owner, data, "open", structure, contracts, info=info))

    def close_structure(self, owner, position: StructurePosition, contracts: int | None = None,
                        limit: float | None = None, **info) -> StructureOrder:
        """Close ``contracts`` (all by default) of an open position at the next bar's open;
        with ``limit``, only if that gets at least ``limit`` per share (else Canceled)."""
        qty = position.contracts if contracts is None else contracts
        order = StructureOrder(owner, position.data, "close", position.structure, qty,
                               position=position, info=info, limit=limit)
        return self._queue(order)

    def chain(self, data, when: dt.datetime, spot: float, expiry: dt.date) -> SyntheticChain:
        """The synthetic chain at ``when`` for an expiry date (IV from the feed's prior VIX)."""
        return SyntheticChain(self.p.chain_model, spot, data.vix[0], when,
                              self._expiry_close(expiry))

    # -- the bar ---------------------------------------------------------------------------
    def next(self) -> None:
        super().next()
        queued, self._queued = self._queued, []
        for order in queued:
            self._execute_structure(order)
        self._settle_expired()
        self._mark()
        self._get_value()

    def free_cash(self) -> float:
        """Cash a new share entry may use (``RiskSizer`` sizes to it): ``cash`` (already
        less the long shares' cost over the leverage and the debit structures' premiums)
        less what a short sale credited to it, a short being charged as a long would be,
        and less what open structures may still lose beyond the premium they took (a credit
        structure's credit and max loss)."""
        cash = self.cash
        for data, position in self.positions.items():
            if position.size < 0:
                comminfo = self.getcommissioninfo(data)
                proceeds = comminfo.getoperationcost(position.size, position.price)
                cash -= proceeds + proceeds / comminfo.get_leverage()
        mult = self.p.chain_model.multiplier
        for held in self.structures.values():
            beyond = held.structure.max_loss(held.premium) - held.premium
            cash -= max(0.0, beyond) * mult * held.contracts
        return cash

    def get_value(self, datas=None, mkt=False, lever=False) -> float:
        value = super().get_value(datas=datas, mkt=mkt, lever=lever)
        return value + self._book_value if datas is None else value

    getvalue = get_value

    # -- internals -------------------------------------------------------------------------
    def _queue(self, order: StructureOrder) -> StructureOrder:
        self._queued.append(order)
        return order

    def _expiry_close(self, expiry: dt.date) -> dt.datetime:
        if expiry not in self._closes:
            found = sessions(expiry, expiry).get(expiry)
            self._closes[expiry] = found.close if found else dt.datetime.combine(
                expiry, dt.time(16, 0))
        return self._closes[expiry]

    def _execute_structure(self, order: StructureOrder) -> None:
        data = order.data
        now = data.datetime.datetime(0)
        if order.kind == "close" and order.position.ref not in self.structures:
            order.status = order.Canceled          # settled or closed meanwhile
            self.notifs.append(order)
            return
        sign = 1 if order.kind == "open" else -1
        legs, premium, fees = self._fill_legs(order, data, now, sign)
        if order.limit is not None and premium < order.limit - 1e-9:
            order.status = order.Canceled          # the limit was not reached at this open
            self.notifs.append(order)
            return
        self._complete_structure(order, legs, premium, fees, now)

    def _complete_structure(self, order: StructureOrder, legs: tuple[LegFill, ...],
                            premium: float, fees: float, now: dt.datetime,
                            check_margin: bool = True) -> None:
        """Book a structure fill (cash, position) and notify it; Margin when an opening
        fill's max loss does not fit the cash and ``check_margin``."""
        mult = self.p.chain_model.multiplier
        sign = 1 if order.kind == "open" else -1
        if order.kind == "open" and check_margin:
            risk = order.structure.max_loss(premium) * mult * order.contracts + fees
            if self.cash < risk:
                order.status = order.Margin
                self.notifs.append(order)
                return
        self.cash -= sign * premium * mult * order.contracts + fees
        order.premium, order.fees, order.legs, order.dt = premium, fees, legs, now
        order.multiplier, order.status = mult, order.Completed
        self._book(order, now)
        self.notifs.append(order)

    def _fill_legs(self, order: StructureOrder, data, now: dt.datetime, sign: int,
                   prices: Callable | None = None) -> tuple[tuple[LegFill, ...], float, float]:
        """Each leg at the chain's honest price (or ``prices(leg)``, a broker's own fill);
        the net signed premium per unit; the fees."""
        chain = self.chain(data, now, data.open[0], order.structure.expiry)
        legs, premium = [], 0.0
        for leg in order.structure.legs:
            trade_qty = sign * leg.qty
            price = chain.fill(leg.right, leg.strike, trade_qty) if prices is None \
                else prices(leg)
            premium += leg.qty * price
            legs.append(LegFill(leg.right, leg.strike, leg.expiry, trade_qty * order.contracts,
                                price))
        fees = order.structure.fees(chain) * order.contracts
        return tuple(legs), premium, fees

    def _book(self, order: StructureOrder, now: dt.datetime) -> None:
        if order.kind == "open":
            position = StructurePosition(order.ref, order.structure, order.contracts,
                                         order.premium, now,
                                         self._expiry_close(order.structure.expiry),
                                         data=order.data, owner=order.owner,
                                         info=dict(order.info))
            self.structures[position.ref] = order.position = position
            return
        position = order.position
        position.contracts -= order.contracts
        if position.contracts <= 0:
            del self.structures[position.ref]

    def _settle_expired(self) -> None:
        for position in list(self.structures.values()):
            data = position.data
            close_time = data.datetime.datetime(0) + _MINUTE
            if close_time < position.expiry_close:
                continue
            value = float(position.structure.payoff(data.close[0]))
            order = StructureOrder(position.owner, data, "expire", position.structure,
                                   position.contracts, position=position, info=position.info)
            self.cash += value * self.p.chain_model.multiplier * position.contracts
            order.premium, order.dt, order.status = value, close_time, order.Completed
            order.multiplier = self.p.chain_model.multiplier
            order.legs = tuple(LegFill(leg.right, leg.strike, leg.expiry,
                                       -leg.qty * position.contracts, 0.0)
                               for leg in position.structure.legs)
            del self.structures[position.ref]
            self.notifs.append(order)

    def _mark(self) -> None:
        """Each position's model mid at this bar's close (``position.mark``) and their sum."""
        mult, total = self.p.chain_model.multiplier, 0.0
        for position in self.structures.values():
            data = position.data
            now = data.datetime.datetime(0) + _MINUTE
            chain = self.chain(data, now, data.close[0], position.structure.expiry)
            position.mark = position.structure.value(chain)
            total += position.mark * mult * position.contracts
        self._book_value = total
