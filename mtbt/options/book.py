"""Option structures held by a broker: positions and the orders that open and close them.

A ``StructureOrder`` travels through backtrader's own notification queue, so a strategy's
``notify_order`` and every analyzer see structure fills next to equity fills. It is not a
``bt.Order``: it carries what the notification path reads (``owner``, ``status``,
``executed.size == 0`` so backtrader's share-based trade bookkeeping leaves it alone) and the
fill of each leg.

Money: premiums are signed per share (a debit is positive, a credit negative); a contract is
``multiplier`` shares; fees are per contract per leg, on opening and on closing.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import backtrader as bt

from mtbt.options.structures import Structure


@dataclass(frozen=True)
class LegFill:
    """One leg of a fill: what traded, how many contracts (signed) and at what price."""

    right: str
    strike: float
    expiry: dt.date
    contracts: int
    price: float


@dataclass
class StructurePosition:
    """An open structure: ``contracts`` units of ``structure`` opened at ``premium``."""

    ref: int
    structure: Structure
    contracts: int
    premium: float                 # signed, per share, per unit
    opened: dt.datetime
    expiry_close: dt.datetime
    data: object = None            # the underlying's feed
    owner: object = None           # the strategy that opened it
    mark: float = math.nan         # model mid per share at the last bar's close (the broker's)
    info: dict = field(default_factory=dict)


class StructureOrder:
    """Open or close ``contracts`` of a structure at the next bar's open, at model fills.

    ``kind`` is "open", "close" or "expire" (cash settlement at intrinsic value, no fees).
    After execution: ``status`` is Completed (``premium``, ``fees``, ``legs``, ``dt`` set),
    Margin (not enough cash for the structure's max loss) or, for a close with a ``limit``
    (the least premium per share it may get), Canceled when the next open would not reach
    it: a limit order good for one bar.
    """

    Created, Submitted, Accepted, Partial, Completed, Canceled, Expired, Margin, Rejected = \
        range(9)
    Historical = bt.Order.Historical
    histnotify = False
    exectype = bt.Order.Market
    p = SimpleNamespace(simulated=False)

    def __init__(self, owner, data, kind: str, structure: Structure, contracts: int,
                 position: StructurePosition | None = None, info: dict | None = None,
                 limit: float | None = None):
        self.ref = next(bt.OrderBase.refbasis)    # one numbering with share orders
        self.limit = limit
        self.owner, self.data, self.kind = owner, data, kind
        self.structure, self.contracts, self.position = structure, contracts, position
        self.info = dict(info or {})
        self.status = self.Submitted
        self.executed = SimpleNamespace(size=0)     # not a share fill: no bt.Trade
        self.premium = math.nan
        self.multiplier = 1
        self.fees = 0.0
        self.legs: tuple[LegFill, ...] = ()
        self.dt: dt.datetime | None = None

    def alive(self) -> bool:
        return self.status in (self.Created, self.Submitted, self.Accepted)

    def clone(self) -> StructureOrder:
        return self

    def getstatusname(self) -> str:
        return ("Created Submitted Accepted Partial Completed Canceled Expired Margin "
                "Rejected").split()[self.status]
