"""The books one run keeps, whichever venue executes its orders: ``Ledger``.

Cash, the share positions, the open option structures and their marks live here, and so do
the rules that change them: a share fill booked as backtrader books it (``execute``: cash
at the broker's leverage, commission, realised PnL, the order's execution record), a
structure fill (``book_structure``), expiry settlement at intrinsic value, the marks at each
bar's close, the portfolio value and the cash a new entry may use.

Both brokers hold one by composition: the backtest broker fills orders locally by
backtrader's rules and books them here; the Alpaca broker books here what Alpaca filled.
``LedgerBroker`` is the broker-facing side both share (the structure API, value, free cash).
"""
from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Callable

import backtrader as bt

from mtbt.options.book import LegFill, StructureOrder, StructurePosition
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.recorded import PriceCounts, RecordedPrices, source_of
from mtbt.options.structures import Structure
from mtbt.sessions import sessions

_MINUTE = dt.timedelta(minutes=1)


class Ledger:
    """The books (see the module docstring). ``comminfo(data)`` gives a data's commission
    info (the broker's ``getcommissioninfo``); ``prices`` the run's option price source
    (recorded bars where they cover a session; None: the synthetic chain everywhere).
    ``counts`` tallies what priced each leg fill and mark (``PriceCounts``)."""

    def __init__(self, chain_model: ChainModel, cash: float,
                 comminfo: Callable[[object], bt.CommInfoBase],
                 prices: RecordedPrices | None = None) -> None:
        self.chain_model = chain_model
        self.prices = prices
        self.counts = prices.counts if prices is not None else PriceCounts()
        self.cash = float(cash)
        self.comminfo = comminfo
        self.positions: collections.defaultdict = collections.defaultdict(bt.Position)
        self.structures: dict[int, StructurePosition] = {}
        self.book_value = 0.0           # the open structures' marks, in dollars
        self._closes: dict[dt.date, dt.datetime] = {}

    # -- shares --------------------------------------------------------------------------
    def execute(self, order: bt.Order, size: float, price: float,
                when: float) -> tuple[float, bool]:
        """Book ``size`` (signed) of ``order`` filled at ``price`` at bar time ``when`` (a
        backtrader date number), as backtrader's BackBroker books a real execution (a short
        valued as a long, ``shortcash``). Returns the size booked and whether the cash
        refused what it opens (nothing of the opening part is then booked: the broker
        reports Margin)."""
        comminfo = self.comminfo(order.data)
        position = self.positions[order.data]
        pprice_orig = position.price
        psize, pprice, opened, closed = position.pseudoupdate(size, price)
        pnl = comminfo.profitandloss(-closed, pprice_orig, price)
        cash = self.cash
        closedvalue = closedcomm = openedvalue = openedcomm = 0.0
        if closed:
            closedvalue = comminfo.getvaluesize(-closed, pprice_orig)
            closecash = closedvalue / comminfo.get_leverage() if closedvalue > 0 \
                else closedvalue
            cash += closecash + pnl * comminfo.stocklike
            closedcomm = comminfo.getcommission(closed, price)
            cash -= closedcomm
            cash += comminfo.cashadjust(-closed, position.adjbase, price)
            self.cash = cash
        wanted = opened
        if opened:
            openedvalue = comminfo.getvaluesize(opened, price)
            cash -= openedvalue / comminfo.get_leverage() if openedvalue > 0 else openedvalue
            openedcomm = comminfo.getcommission(opened, price)
            cash -= openedcomm
            if cash < 0.0:
                opened, openedvalue, openedcomm = 0, 0.0, 0.0
            else:
                if abs(psize) > abs(opened):
                    cash += comminfo.cashadjust(psize - opened, position.adjbase, price)
                position.adjbase = price
                self.cash = cash
        executed = closed + opened
        if executed:
            comminfo.confirmexec(executed, price)
            position.update(executed, price, order.data.datetime.datetime())
            order.execute(when, executed, price, closed, closedvalue, closedcomm, opened,
                          openedvalue, openedcomm, comminfo.margin, pnl, psize, pprice)
            order.addcomminfo(comminfo)
        return executed, bool(wanted and not opened)

    def close_bar(self) -> None:
        """The end of a bar, as BackBroker ends it: positions whose commission info moves
        cash every bar (futures; nothing for shares) settle to the close."""
        for data, position in self.positions.items():
            if position:
                self.cash += self.comminfo(data).cashadjust(position.size, position.adjbase,
                                                            data.close[0])
                position.adjbase = data.close[0]

    def value(self, datas=None) -> float:
        """Cash plus the positions at the last close (longs at the broker's leverage), plus
        the structures' marks when ``datas`` is None; for given ``datas``, their positions'
        raw value."""
        total = 0.0
        for data in datas or self.positions:
            comminfo = self.comminfo(data)
            position = self.positions[data]
            dvalue = comminfo.getvaluesize(position.size, data.close[0])
            unrealized = comminfo.profitandloss(position.size, position.price, data.close[0])
            if datas:
                total += dvalue
            elif dvalue > 0:
                total += (dvalue - unrealized) / comminfo.get_leverage() + unrealized
            else:
                total += dvalue
        return total if datas else self.cash + total + self.book_value

    def free_cash(self) -> float:
        """Cash a new share entry may use: ``cash`` (already less the long shares' cost over
        the leverage and the debit structures' premiums) less what a short sale credited to
        it, a short being charged as a long would be, and less what open structures may
        still lose beyond the premium they took (a credit structure's credit and max
        loss)."""
        cash = self.cash
        for data, position in self.positions.items():
            if position.size < 0:
                comminfo = self.comminfo(data)
                proceeds = comminfo.getoperationcost(position.size, position.price)
                cash -= proceeds + proceeds / comminfo.get_leverage()
        mult = self.chain_model.multiplier
        for held in self.structures.values():
            beyond = held.structure.max_loss(held.premium) - held.premium
            cash -= max(0.0, beyond) * mult * held.contracts
        return cash

    # -- structures ------------------------------------------------------------------------
    def chain(self, data, when: dt.datetime, spot: float, expiry: dt.date, *,
              at_open: bool = False) -> SyntheticChain:
        """The chain at ``when`` for an expiry date (IV from the feed's prior VIX): recorded
        prices where ``prices`` covers the session (``at_open``: a fill at the open of the
        minute ``when``; else a mark or decision at the close time ``when``), the model's
        elsewhere."""
        if self.prices is None:
            return SyntheticChain(self.chain_model, spot, data.vix[0], when,
                                  self.expiry_close(expiry))
        return self.prices.chain(self.chain_model, spot, data.vix[0], when,
                                 self.expiry_close(expiry), at_open=at_open)

    def expiry_close(self, expiry: dt.date) -> dt.datetime:
        if expiry not in self._closes:
            found = sessions(expiry, expiry).get(expiry)
            self._closes[expiry] = found.close if found else dt.datetime.combine(
                expiry, dt.time(16, 0))
        return self._closes[expiry]

    def fill_legs(self, order: StructureOrder, data, now: dt.datetime, sign: int,
                  prices: Callable | None = None) -> tuple[tuple[LegFill, ...], float, float]:
        """Each leg at the chain's honest price (or ``prices(leg)``, a broker's own fill);
        the net signed premium per unit; the fees. The chain's fills are counted by source
        (recorded or model)."""
        chain = self.chain(data, now, data.open[0], order.structure.expiry, at_open=True)
        legs, premium = [], 0.0
        for leg in order.structure.legs:
            trade_qty = sign * leg.qty
            if prices is None:
                price = chain.fill(leg.right, leg.strike, trade_qty)
                self.counts.fills[source_of(chain, leg.right, leg.strike)] += 1
            else:
                price = prices(leg)
            premium += leg.qty * price
            legs.append(LegFill(leg.right, leg.strike, leg.expiry, trade_qty * order.contracts,
                                price))
        fees = order.structure.fees(chain) * order.contracts
        return tuple(legs), premium, fees

    def book_structure(self, order: StructureOrder, legs: tuple[LegFill, ...], premium: float,
                       fees: float, now: dt.datetime, check_margin: bool = True) -> bool:
        """Book a structure fill (cash, position); False (nothing booked) when an opening
        fill's max loss does not fit the cash and ``check_margin``."""
        mult = self.chain_model.multiplier
        sign = 1 if order.kind == "open" else -1
        if order.kind == "open" and check_margin:
            risk = order.structure.max_loss(premium) * mult * order.contracts + fees
            if self.cash < risk:
                return False
        self.cash -= sign * premium * mult * order.contracts + fees
        order.premium, order.fees, order.legs, order.dt = premium, fees, legs, now
        order.multiplier = mult
        if order.kind == "open":
            position = StructurePosition(order.ref, order.structure, order.contracts,
                                         order.premium, now,
                                         self.expiry_close(order.structure.expiry),
                                         data=order.data, owner=order.owner,
                                         info=dict(order.info))
            self.structures[position.ref] = order.position = position
            return True
        position = order.position
        position.contracts -= order.contracts
        if position.contracts <= 0:
            del self.structures[position.ref]
        return True

    def settle_expired(self) -> list[StructureOrder]:
        """Cash-settle, at intrinsic value, each structure whose expiry session has closed by
        this bar's end; the settlement orders (Completed) for the strategy to hear."""
        settled = []
        for position in list(self.structures.values()):
            data = position.data
            close_time = data.datetime.datetime(0) + _MINUTE
            if close_time < position.expiry_close:
                continue
            value = float(position.structure.payoff(data.close[0]))
            order = StructureOrder(position.owner, data, "expire", position.structure,
                                   position.contracts, position=position, info=position.info)
            self.cash += value * self.chain_model.multiplier * position.contracts
            order.premium, order.dt, order.status = value, close_time, order.Completed
            order.multiplier = self.chain_model.multiplier
            order.legs = tuple(LegFill(leg.right, leg.strike, leg.expiry,
                                       -leg.qty * position.contracts, 0.0)
                               for leg in position.structure.legs)
            del self.structures[position.ref]
            settled.append(order)
        return settled

    def mark(self) -> None:
        """Each structure's mid at this bar's close (``position.mark``: recorded closes where
        the session is covered and fresh, the model's elsewhere; each leg counted) and their
        sum (``book_value``)."""
        mult, total = self.chain_model.multiplier, 0.0
        for position in self.structures.values():
            data = position.data
            now = data.datetime.datetime(0) + _MINUTE
            chain = self.chain(data, now, data.close[0], position.structure.expiry)
            position.mark = position.structure.value(chain)
            for leg in position.structure.legs:
                self.counts.marks[source_of(chain, leg.right, leg.strike)] += 1
            total += position.mark * mult * position.contracts
        self.book_value = total


class LedgerBroker:
    """What both brokers offer over their ``ledger``: the strategy's structure API, the
    structure fills' bookkeeping and notices, free cash. A broker mixes it in and sets
    ``self.ledger``; ``_queue`` (how a structure order is executed) is the broker's own."""

    ledger: Ledger

    @property
    def structures(self) -> dict[int, StructurePosition]:
        return self.ledger.structures

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
        """The chain at the close time ``when`` for an expiry date (``Ledger.chain``: recorded
        prices where the run has them, the synthetic chain's elsewhere)."""
        return self.ledger.chain(data, when, spot, expiry)

    @property
    def price_counts(self) -> PriceCounts:
        """What priced the run's option legs, and the structures refused for want of a
        recorded price or for liquidity (the strategy adds those)."""
        return self.ledger.counts

    def free_cash(self) -> float:
        """Cash a new share entry may use (``RiskSizer`` sizes to it): see
        ``Ledger.free_cash``."""
        return self.ledger.free_cash()

    def _complete_structure(self, order: StructureOrder, legs: tuple[LegFill, ...],
                            premium: float, fees: float, now: dt.datetime,
                            check_margin: bool = True) -> None:
        """Book a structure fill and notify it (Margin when it does not fit the cash)."""
        if self.ledger.book_structure(order, legs, premium, fees, now, check_margin):
            order.status = order.Completed
        else:
            order.status = order.Margin
        self.notifs.append(order)

    def _settle_and_mark(self) -> None:
        """At the bar's end: expired structures settled (and heard), the rest marked."""
        self.notifs.extend(self.ledger.settle_expired())
        self.ledger.mark()
