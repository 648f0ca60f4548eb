"""AlpacaBroker: the run's ``Ledger``, with orders executed by an Alpaca paper account.

The books (cash, positions, option structures, commissions, marks) are a ``Ledger``, the
class the backtest broker keeps its books in, so a fill changes them exactly as in a
backtest; only *who fills* differs. The broker is a ``bt.BrokerBase`` with no local fill
path: every fill booked is one Alpaca reported (``btapi.LedgerAccount.book_fill``). Orders
are collected while the strategy handles a bar and sent when it is done (``transmit``):

- market, limit, stop and trailing-stop orders become simple Alpaca orders (other types are
  rejected, with a log line); a stop and a limit that cancel each other (the scaling exits)
  become Alpaca's ``oco`` pair for the limit's quantity, plus a plain stop for the rest when
  the stop covers more (Alpaca will not let two open orders sell the same shares); a trail
  or breakeven move replaces the oco's stop leg (``replace``);
- an option structure opens and closes as one multi-leg (``mleg``) market order; a close
  with a limit is a limit order good for one bar, as in a backtest (``limits``).

Structures are chosen, marked and exited on the ledger's chain: the synthetic chain, or with
``option_prices`` (``quote_chain.QuotePrices``) Alpaca's live option quotes, asked once a bar
while the feed is live, the model where a quote is missing (counted in ``price_counts``).

Every order gets a deterministic ``client_order_id`` (``orders.client_order_id``),
written to the state file before it is sent: a retried submit is refused as a duplicate and
the order is found by that id. Fills come from the ``trade_updates`` stream (an execution id
seen before is dropped) and from Alpaca's order list (asked when a bar reached an order's
price, every few bars while orders work, and after every reconnect); each order's cumulative
filled quantity is the truth, so a fill event sent twice, out of order or lost changes
nothing. Fills are applied at the start of the next bar, as in a backtest.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
import warnings
from collections.abc import Collection

import backtrader as bt
import pandas as pd

from mtbt.alpaca import orders as wire
from mtbt.alpaca.books import FINAL, Books, Part, Sent
from mtbt.alpaca.btapi import LedgerAccount
from mtbt.alpaca.late import LateFills
from mtbt.alpaca.limits import StructureLimits
from mtbt.alpaca.reconcile import Reconcile
from mtbt.alpaca.replace import Replace
from mtbt.brokers.ledger import LedgerBroker
from mtbt.options.book import StructureOrder
from mtbt.options.chain import ChainModel
from mtbt.sessions import NY
from mtbt.state import OrderRow, StateStore

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "websockets.legacy", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.trading.requests import GetOrdersRequest

log = logging.getLogger("mtbt.live")
_KINDS = {bt.Order.Market: "market", bt.Order.Limit: "limit", bt.Order.Stop: "stop",
          bt.Order.StopTrail: "trailing_stop"}
POLL_EVERY = 5          # bars between order-list checks while orders work
RECONCILE_EVERY = 30    # bars between position checks
_TOUCH = 0.05           # dollars of slack when asking whether a bar reached an order's price


class AlpacaBroker(Books, LateFills, StructureLimits, Reconcile, Replace, LedgerAccount,
                   LedgerBroker, bt.BrokerBase):
    """The run's ``Ledger``, Alpaca execution (see the module docstring).

    Params:
      - ``store``: the ``AlpacaStore``
      - ``state``: the ``StateStore`` (SQLite) of the session
      - ``symbol``: the underlying's ticker (and the option root)
      - ``day``: the session date (client ids and the state file's orders are per day)
      - ``dry_run``: log would-be orders instead of sending them
      - ``chain_model``: the option chain model of structure marks (and dry-run prices)
      - ``cash``: the starting cash (``setcash``)
      - ``option_prices``: a ``QuotePrices`` (structures priced on live quotes), or None (the
        synthetic chain)
    """

    params = (("store", None), ("state", None), ("symbol", "SPY"), ("day", None),
              ("dry_run", False), ("chain_model", ChainModel()), ("cash", 10_000.0),
              ("option_prices", None))

    def __init__(self) -> None:
        super().__init__()
        self.on_refused: list = []      # called (client id, why) per order refused
        self.on_orphan: list = []       # called (symbol or client id, what was done)

    def start(self) -> None:
        super().start()
        self.start_books()
        prices = self.p.option_prices
        if prices is not None:        # the ledger prices structures on the live quotes
            self.ledger.prices, self.ledger.counts = prices, prices.counts
            prices.active, prices.held = self._feed_live, self._held_legs
        self.state: StateStore = self.p.state or StateStore(":memory:")
        self.day: dt.date = self.p.day or dt.date.today()     # the session date
        self._outbox: list = []
        self._sent: dict[str, Sent] = {}
        self._by_alpaca: dict[str, Part] = {}
        self._by_ref: dict[int, list[Part]] = {}
        self._events: queue.Queue = queue.Queue()
        self._reconcile = threading.Event()        # a reconciliation is due
        self._reconnected = threading.Event()      # ... before the next order goes
        self._on_connect()                         # before the first order
        self._seq = self.state.next_seq(self.day.isoformat())
        self.duplicates_caught = 0
        self.executions: set[str] = set()          # execution ids seen on the stream
        self.duplicate_events = 0
        self.sent = 0
        self.order_latency: list[tuple[str, float]] = []   # (role, bar arrival -> sent, s)
        self._cancels: list[str] = []
        self._cancelling: dict[str, Sent] = {}    # Alpaca id -> exit whose cancel is not final
        self._rows: list[OrderRow] = []
        self._bars_unpolled = self._bars_unreconciled = 0
        self._unsent: list[Sent] = []
        self._limits: dict[int, tuple] = {}     # structure limit order ref -> (order, bar)
        self.orphans: list[str] = []
        store = self.p.store
        if store is not None:
            store.trade_stream.subscribe_trade_updates(self._on_trade_update)
            store.trade_stream.on_connect.append(self._on_connect)
            store.data_stream.on_connect.append(self._on_connect)
            store.start_stream(store.trade_stream)

    def _feed_live(self) -> bool:
        """Whether the bars are live (quotes now price them), not the history's."""
        data = getattr(self.p.store, "data", None)
        return data is None or bool(data.live)

    def _held_legs(self) -> list[tuple[dt.date, str, float]]:
        """(expiry, right, strike) of every leg of the structures held."""
        return [(leg.expiry, leg.right, leg.strike) for held in self.ledger.structures.values()
                for leg in held.structure.legs]

    # -- orders from the strategy ------------------------------------------------------------
    def submit(self, order, check: bool = True):
        order.submit(self)
        self.orders.append(order)
        self.notify(order)
        self._outbox.append(order)
        return order

    def _queue(self, order: StructureOrder) -> StructureOrder:
        self._outbox.append(order)
        self._track_limit(order)          # on the strategy's bar: due on the next one
        return order

    def cancel(self, order, bracket: bool = False) -> None:
        if order in self._outbox:
            self._outbox.remove(order)         # never recorded, never sent
        else:
            self._cancels += self._remote_ids(order)
        if order.alive():
            order.cancel()
            self.notify(order)

    # -- sending: prepare (record) before the checkpoint, transmit after -------------------
    def prepare(self) -> None:
        """Give the orders made on this bar their client ids (``take_rows`` gives them to
        the checkpoint; ``transmit`` records any left before sending)."""
        outbox, self._outbox = self._outbox, []
        taken: set[int] = set()
        for order in outbox:
            if order.ref in taken or not order.alive():
                continue
            if isinstance(order, StructureOrder):
                spec = wire.structure_spec(self.p.symbol, order.structure, order.contracts,
                                           order.kind, limit=order.limit)
                units = [(spec, order, [Part(order, "")])]
            elif order.exectype not in _KINDS:
                log.error("REJECT %s order: Alpaca takes market, limit, stop and trailing "
                          "stop orders", order.getordername())
                order.reject(self)
                self.notify(order)
                continue
            else:
                partner = self._oco_partner(order, outbox)
                if partner is not None:
                    taken.add(partner.ref)
                    units = self._exit_pair(order, partner)
                    if len(units) == 1:              # a stop move: replace the stop leg
                        spec, limit, (_, leg) = units[0]
                        units = self._replacement(limit, leg.target, spec) or units
                else:
                    units = [(self._simple_spec(order), order, [Part(order, "")])]
            self._rows += [self._register(spec, owner, parts) for spec, owner, parts in units]

    def take_rows(self) -> list[OrderRow]:
        """The orders prepared and not recorded yet (the checkpoint records them with the
        state that refers to them, in one transaction)."""
        rows, self._rows = self._rows, []
        return rows

    def transmit(self) -> None:
        """Send the cancels and the recorded orders of this bar (reconciling first when a
        reconnect or the start asks for it)."""
        if self._rows:
            self.state.record_orders(self.take_rows())     # recorded before sent, always
        data = getattr(self.p.store, "data", None)
        quiet = not self._cancels and not self._unsent
        if self._reconcile.is_set() and (data is None or data.live) and (
                quiet or self._reconcile_now):
            self.reconcile()             # not while history replays: the books are not back
        cancels, self._cancels = list(dict.fromkeys(self._cancels)), []
        for alpaca_id in cancels:
            if self._cancel_remote(alpaca_id):
                self._cancel_accepted(alpaca_id)      # confirmed before its trade's next
            else:
                self._cancel_refused(alpaca_id)       # filled first? (``late``)
        if self._cancelling and self._unsent:
            self._confirm_cancels()
        unsent, self._unsent = self._unsent, []
        self._send(unsent)
        if self._bars_unpolled >= POLL_EVERY:
            self.poll()           # the safety net, off the bar-to-order path
        self._bars_unreconciled += 1
        if self._bars_unreconciled >= RECONCILE_EVERY:
            # positions again at the next bar with nothing to send (the check is not put
            # on an order's path), or at the first bar once it is overdue twice over
            self._reconcile.set()

    @property
    def _reconcile_now(self) -> bool:
        """Whether a due reconciliation goes before this bar's orders: always after a
        (re)connect, and for the periodic check once it is overdue twice over."""
        return self._reconnected.is_set() or self._bars_unreconciled >= 2 * RECONCILE_EVERY

    def _on_connect(self) -> None:
        self._reconnected.set()
        self._reconcile.set()

    def _oco_partner(self, order, outbox: list):
        group = self._ocol.get(self._ocos.get(order.ref, order.ref), [])
        for other in outbox:
            if other is not order and other.ref in group and isinstance(other, bt.Order):
                return other
        return None

    def _simple_spec(self, order) -> dict:
        spec = {"kind": _KINDS[order.exectype], "symbol": self.p.symbol,
                "side": "buy" if order.isbuy() else "sell",
                "qty": abs(int(order.created.size))}
        if order.exectype == bt.Order.Limit:
            spec["limit_price"] = round(order.created.price, 2)
        elif order.exectype == bt.Order.Stop:
            spec["stop_price"] = round(order.created.price, 2)
        elif order.exectype == bt.Order.StopTrail and order.trailpercent:
            spec["trail_percent"] = round(order.trailpercent * 100, 4)
        elif order.exectype == bt.Order.StopTrail:
            spec["trail_price"] = round(order.trailamount, 2)
        return spec

    def _exit_pair(self, a, b) -> list:
        """A stop and a limit that cancel each other: an oco for the limit's quantity, plus
        a plain stop for the rest of the stop's."""
        stop, limit = (a, b) if a.exectype == bt.Order.Stop else (b, a)
        qty_limit, qty_stop = abs(int(limit.created.size)), abs(int(stop.created.size))
        spec = {"kind": "oco", "symbol": self.p.symbol,
                "side": "buy" if limit.isbuy() else "sell", "qty": min(qty_limit, qty_stop),
                "limit_price": round(limit.created.price, 2),
                "stop_price": round(stop.created.price, 2)}
        units = [(spec, limit, [Part(limit, ""), Part(stop, "", leg=True)])]
        if qty_stop > qty_limit:
            rest = self._simple_spec(stop) | {"qty": qty_stop - qty_limit}
            units.append((rest, stop, [Part(stop, "")]))
        return units

    def _register(self, spec: dict, owner, parts: list[Part]) -> OrderRow:
        lot, role = owner.info.get("lot"), owner.info.get("role", "order")
        trade_id = getattr(lot, "trade_id", None)
        client_id = wire.client_order_id(self.day, self._seq, trade_id, role)
        spec = spec | {"parts": [{"role": p.target.info.get("role", role), "leg": p.leg}
                                 for p in parts]}
        row = OrderRow(client_id, self._seq, self.day.isoformat(), trade_id, role, spec)
        self._seq += 1
        sent = Sent(row, parts, "unsent")
        self._track(sent)
        self._unsent.append(sent)
        return row

    def _track(self, sent: Sent) -> None:
        self._sent[sent.row.client_order_id] = sent
        for part in sent.parts:
            part.client_id = sent.row.client_order_id
            self._by_ref.setdefault(part.target.ref, []).append(part)
            if part.alpaca_id:
                self._by_alpaca[part.alpaca_id] = part
            if not getattr(part.target, "client_order_id", None):
                part.target.client_order_id = sent.row.client_order_id

    def _send(self, unsent: list[Sent]) -> None:
        """Send the recorded orders of this bar, one by one in the order they were made
        (each answer booked before the next goes out)."""
        if self.p.dry_run:
            for sent in unsent:
                log.info("WOULD SEND %s %s", sent.row.client_order_id,
                         wire.describe(sent.row.spec))
                sent.status = "dry-run"
                self._accept(sent.parts)
            return
        data = getattr(self.p.store, "data", None)
        for sent in unsent:
            if sent.status == "canceled":     # withdrawn with a refused part of its order
                continue
            if data is not None and data.last_arrival is not None:
                self.order_latency.append((sent.row.role, time.monotonic() - data.last_arrival))
            self._answered(sent, *self._request(sent))

    def _request(self, sent: Sent) -> tuple:
        """The HTTP side of sending one order (a replace, or a new order): (Alpaca's order,
        None) or (None, the exception)."""
        try:
            order = self._send_replace(sent) if "replaces" in sent.row.spec else None
            if order is None:
                order = self.p.store.trading.submit_order(
                    wire.to_request(sent.row.spec, sent.row.client_order_id))
            return order, None
        except Exception as exc:  # noqa: BLE001 - judged in _answered
            return None, exc

    def _answered(self, sent: Sent, order, exc: Exception | None) -> None:
        client_id = sent.row.client_order_id
        if isinstance(exc, APIError):
            order = self._after_refusal(sent, exc)
            if order is None:
                return
        elif exc is not None:           # network gone after every retry
            log.error("SEND %s failed: %s; looking it up", client_id, type(exc).__name__)
            order = self._lookup(client_id)
            if order is None:
                self._refuse(sent, f"not sent ({type(exc).__name__})")
                return
        self.sent += 1
        log.info("SENT %s %s", client_id, wire.describe(sent.row.spec))
        self._link(sent, order)
        self._accept(sent.parts)
        self._apply(self._pairs(sent, order))

    def _after_refusal(self, sent: Sent, exc: APIError):
        """A 4xx: a duplicate client id means an earlier try got through; anything else is
        a refusal the strategy hears about."""
        client_id = sent.row.client_order_id
        text = wire.error_text(exc)
        if exc.status_code == 422 and "client_order_id" in text:
            self.duplicates_caught += 1
            log.warning("SEND %s: already at Alpaca (a retried submit); using it", client_id)
            return self._lookup(client_id)
        log.warning("SEND %s refused: HTTP %s %s", client_id, exc.status_code, text)
        self._refuse(sent, text)
        return None

    def _lookup(self, client_id: str):
        try:
            return self.p.store.trading.get_order_by_client_id(client_id)
        except APIError as exc:
            if exc.status_code == 404:
                return None
            raise

    def _refuse(self, sent: Sent, why: str) -> None:
        sent.status = "rejected"
        for callback in self.on_refused:
            callback(sent.row.client_order_id, why)
        for part in sent.parts:
            part.status = "rejected"
            target = part.target
            if target.alive():
                target.status = target.Rejected
                self.notify(target)
            # an order refused in part (a stop carried by an oco's leg and a plain stop for
            # the rest) is refused whole: its other Alpaca orders cancelled, or never sent
            self._cancels += self._remote_ids(target)

    def _accept(self, parts: list[Part]) -> None:
        for part in parts:
            target = part.target
            if isinstance(target, bt.Order) and target.status == target.Submitted:
                target.accept(self)
                self.notify(target)
            elif isinstance(target, StructureOrder):
                target.status = target.Accepted

    def _link(self, sent: Sent, order) -> None:
        parent = sent.parts[0]
        parent.alpaca_id = str(order.id)
        self._by_alpaca[parent.alpaca_id] = parent
        for part in sent.parts[1:]:
            leg = _leg(order, part) if part.leg else None
            if leg is not None:
                part.alpaca_id = str(leg.id)
                self._by_alpaca[part.alpaca_id] = part

    # -- cancelling --------------------------------------------------------------------------
    def _remote_ids(self, order, ended: Collection[str] = ()) -> list[str]:
        """The Alpaca orders to cancel for a backtrader order (an oco through its parent),
        but none of the orders (client ids) in ``ended``: Alpaca ends those itself."""
        ids = []
        for part in self._by_ref.get(order.ref, []):
            sent = self._sent[part.client_id]
            if part.status in FINAL or sent.parts[0].status in FINAL or part.client_id in ended:
                continue
            if sent in self._unsent:
                self._unsent.remove(sent)
            if not sent.parts[0].alpaca_id:   # recorded, not sent yet (or being sent this
                sent.status = "canceled"      # bar, after a refused part): keep it so
                for other in sent.parts:
                    other.status = "canceled"
                continue
            if sent.parts[0].alpaca_id:   # sent, or a replace yet to send of a working oco
                ids.append(sent.parts[0].alpaca_id)
        return ids

    def _cancel_remote(self, alpaca_id: str) -> bool:
        """Cancel one Alpaca order; False when Alpaca refuses (no longer open, unknown)."""
        if self.p.dry_run:
            log.info("WOULD CANCEL %s", alpaca_id)
            return True
        try:
            self.p.store.trading.cancel_order_by_id(alpaca_id)
        except APIError as exc:
            log.warning("CANCEL %s: HTTP %s %s", alpaca_id, exc.status_code, wire.error_text(exc))
            return False
        return True

    # -- fills -----------------------------------------------------------------------------
    async def _on_trade_update(self, update) -> None:
        self._events.put(update)

    def next(self) -> None:
        self.apply_updates()
        self._expire_limits()
        self.ledger.close_bar()
        self._settle_and_mark()
        self.update_value()

    def apply_updates(self) -> None:
        """Apply every fill known now: stream events, then (when this bar may have filled
        something) Alpaca's order list."""
        pairs = []
        while True:
            try:
                update = self._events.get_nowait()
            except queue.Empty:
                break
            execution = str(update.execution_id or "")
            if execution in self.executions:
                self.duplicate_events += 1          # the same execution sent again
                continue
            if execution:
                self.executions.add(execution)
            part = self._by_alpaca.get(str(update.order.id))
            if part is not None and not isinstance(part.target, StructureOrder):
                pairs.append((part, update.order))
        self._apply(pairs)
        self._bars_unpolled += 1
        if self._poll_due():
            self.poll()

    def _poll_due(self) -> bool:
        """Whether to ask Alpaca before the strategy sees this bar: a working market order
        or structure, or a stop or limit this bar's range reached (a fill the stream may
        not have told yet). ``transmit`` also asks every ``POLL_EVERY`` bars, after sending."""
        working = [p for s in self._sent.values() for p in s.parts
                   if p.status not in FINAL and p.alpaca_id]
        if not working:
            return False
        data = working[0].target.data
        high, low = data.high[0] + _TOUCH, data.low[0] - _TOUCH
        for part in working:
            order = part.target
            if isinstance(order, StructureOrder) or order.exectype == bt.Order.Market:
                return True
            price = order.created.price
            upward = order.isbuy() == (order.exectype == bt.Order.Stop)
            if (high >= price) if upward else (low <= price):
                return True
        return False

    def poll(self) -> None:
        """Bring every working order up to date: Alpaca's open orders, and each one of ours
        that is no longer open by its client id."""
        self._bars_unpolled = 0
        working = [s for s in self._sent.values()
                   if any(p.status not in FINAL and p.alpaca_id for p in s.parts)]
        if not working or self.p.dry_run:
            return
        request = GetOrdersRequest(status="open", limit=500, nested=True)
        found = {str(o.client_order_id): o for o in self.p.store.trading.get_orders(request)}
        pairs = []
        for sent in working:
            client_id = self._parent_client_id(sent)
            order = found.get(client_id) or self._lookup(client_id)
            if order is not None:
                pairs += self._pairs(sent, order)
        self._apply(pairs)

    def _pairs(self, sent: Sent, order) -> list:
        """(part, Alpaca order) for each part of a sent order (structures are booked here:
        they fill whole)."""
        sent.status = str(order.status.value)
        if isinstance(sent.parts[0].target, StructureOrder):
            self._update_structure(sent, order)
            return []
        return [(sent.parts[0], order)] + [(part, leg) for part in sent.parts[1:]
                                           if part.leg and (leg := _leg(order, part))]

    def _apply(self, pairs: list) -> None:
        """Fills first (all parts of one order summed into one execution, as a backtest
        fills it), then cancellations, expiries and rejections (of every part of the Alpaca
        orders concerned: one held back by ``_close_unfilled`` may be due now)."""
        fills: dict[int, list] = {}
        for part, order in pairs:
            qty = float(order.filled_qty or 0)
            if qty > part.filled_qty + 1e-9:      # cumulative: repeats and old events add 0
                value = qty * float(order.filled_avg_price)
                entry = fills.setdefault(part.target.ref, [part.target, 0.0, 0.0, None])
                entry[1] += qty - part.filled_qty
                entry[2] += value - part.filled_value
                entry[3] = max(filter(None, (entry[3], self._fill_bar(order))), default=None)
                part.filled_qty, part.filled_value = qty, value
            part.status = str(order.status.value)
            sent = self._sent[part.client_id]
            sent.status = sent.parts[0].status
        for ref in sorted(fills):          # in the order the orders were made, as a backtest
            target, qty, value, when = fills[ref]    # fills them (events may come reordered)
            if isinstance(target, bt.Order) and target.status == target.Canceled:
                target = self._late_order(target, int(round(qty)))     # (``late``)
            self._fill(target, int(round(qty)), value / qty, when)
        touched = {part.client_id: self._sent[part.client_id] for part, _ in pairs}
        for sent in touched.values():
            for part in sent.parts:
                if part.status in ("canceled", "expired", "rejected") and part.target.alive():
                    self._close_unfilled(part.target, part.status)

    def _fill_bar(self, order) -> dt.datetime | None:
        """The start of the bar in which Alpaca filled ``order`` (naive New York time), when
        that bar is earlier than the current one: a fill found late (after a restart, a
        reconnect or a delayed event) is booked at its own time, as a backtest books it."""
        filled = getattr(order, "filled_at", None)
        data = getattr(self.p.store, "data", None)
        if filled is None or data is None or not len(data):
            return None
        ny = pd.Timestamp(filled).tz_convert(NY).tz_localize(None).floor("min")
        return ny.to_pydatetime() if ny < data.datetime.datetime(0) else None

    def _fill(self, order, qty: int, price: float, when: dt.datetime | None = None) -> None:
        siblings = self._oco_siblings(order)
        self.book_fill(order, qty, price,
                       bt.date2num(when) if when is not None else order.data.datetime[0])
        log.info("FILL %s %s %d @ %.4f", getattr(order, "client_order_id", "?"),
                 "buy" if order.isbuy() else "sell", qty, price)
        # backtrader's oco: the others are cancelled, silently; Alpaca itself cancels the
        # other leg of an oco whose one leg filled whole (a cancel sent too races its own,
        # and comes back 422 when Alpaca's was first)
        ended = () if order.alive() else {p.client_id for p in self._by_ref.get(order.ref, [])}
        for other in siblings:
            if other.alive():
                self._cancels += self._remote_ids(other, ended)
                other.cancel()

    def _oco_siblings(self, order) -> list:
        group = self._ocol.get(self._ocos.get(order.ref), [])
        return [o for o in self.orders if o.ref in group and o.ref != order.ref]

    def _close_unfilled(self, order, status: str) -> None:
        """An order Alpaca ended unfilled, once nothing of it or of its oco pair still
        works: Alpaca cancels an oco's limit when its stop fills, and that event may come
        before the fill (events reordered, or the fill known only from the order list);
        the fill then cancels it silently, as backtrader's oco does."""
        sents = {p.client_id for p in self._by_ref.get(order.ref, [])}
        if any(p.status not in FINAL for cid in sents for p in self._sent[cid].parts):
            return                   # another part of it, or of its pair, still works
        {"canceled": order.cancel, "expired": order.expire}.get(status, order.reject)()
        self.notify(order)

    def _update_structure(self, sent: Sent, order) -> None:
        part, target = sent.parts[0], sent.parts[0].target
        status = str(order.status.value)
        part.status = sent.status = status
        if status == "filled" and part.filled_qty == 0:
            part.filled_qty = float(order.filled_qty or 0)
            self._complete_structure_fill(target, order)
        elif status in ("canceled", "expired", "rejected") and target.alive():
            target.status = target.Canceled if status == "canceled" else target.Rejected
            self.notifs.append(target)

    def _complete_structure_fill(self, order: StructureOrder, alpaca_order) -> None:
        data = order.data
        now = self._fill_bar(alpaca_order) or data.datetime.datetime(0)
        prices = {leg.symbol: float(leg.filled_avg_price) for leg in alpaca_order.legs or []}
        if not prices:                                   # a one-leg structure
            prices = {alpaca_order.symbol: float(alpaca_order.filled_avg_price)}
        legs, premium, fees = self.ledger.fill_legs(
            order, data, now, 1 if order.kind == "open" else -1,
            prices=lambda leg: prices[wire.occ_symbol(self.p.symbol, leg.expiry, leg.right,
                                                      leg.strike)])
        if order.kind == "close" and order.position.ref not in self.structures:
            log.error("FILL %s closes a structure mtbt no longer holds", alpaca_order.id)
            return
        log.info("FILL %s %s x%d @ %.4f", alpaca_order.client_order_id, order.structure.name,
                 order.contracts, premium)
        self._complete_structure(order, legs, premium, fees, now, check_margin=False)


def _leg(order, part: Part):
    """The leg of an Alpaca oco order that ``part`` follows: the one with its Alpaca id (a
    replaced stop leg has a new one), else the first."""
    legs = order.legs or []
    return next((leg for leg in legs if str(leg.id) == part.alpaca_id), legs[0] if legs
                else None)
