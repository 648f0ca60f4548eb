"""The AlpacaBroker's books as a checkpoint, and their restoration after a restart.

``snapshot`` gives cash, the share position, the open option structures and, for every order
recorded today, how far each of its parts had filled; ``restore`` rebuilds them in a new
process and recreates the backtrader orders still working at Alpaca, so the strategy can link
them to its lots again. Orders recorded but never sent are sent (with the same client id: if
one did reach Alpaca, the duplicate is refused and the order found by that id); orders no lot
refers to any more are cancelled at Alpaca and reported; an order of an open lot that mtbt
cancelled before the kill and that filled meanwhile is booked to its lot (``late``).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import backtrader as bt

from mtbt.options.book import StructureOrder, StructurePosition
from mtbt.options.structures import Structure
from mtbt.state import OrderRow

log = logging.getLogger("mtbt.live")
FINAL = frozenset({"filled", "canceled", "expired", "rejected", "done_for_day", "replaced"})
_EXIT_ROLES = frozenset({"stop", "breakeven", "trail", "tp1", "tp2"})
_EXEC = {"market": bt.Order.Market, "limit": bt.Order.Limit, "stop": bt.Order.Stop}


@dataclass
class Part:
    """One Alpaca order (an oco's stop leg included) and the order its fills belong to."""

    target: object                  # bt.Order or StructureOrder
    client_id: str                  # the submitted order's client id
    alpaca_id: str | None = None
    filled_qty: float = 0.0
    filled_value: float = 0.0
    status: str = "new"
    leg: bool = False               # the stop leg of an oco pair


@dataclass
class Sent:
    """One recorded Alpaca order: its row, its parts (parent first) and its status."""

    row: OrderRow
    parts: list[Part] = field(default_factory=list)
    status: str = "unsent"
    replaced_leg: bool = False      # sent as a replace of an oco's stop leg (``replace``)


class Books:
    """Mixin of ``AlpacaBroker``: checkpoint and restore (see the module docstring)."""

    def snapshot(self, data) -> dict:
        """The books as a JSON-able dict (orders: only those not done, all ``restore``
        looks at, so the checkpoint does not grow with the day)."""
        position = self.positions[data]
        structures = [{"trade_id": getattr(p.info.get("lot"), "trade_id", None),
                       "structure": p.structure.to_dict(), "contracts": p.contracts,
                       "premium": p.premium, "opened": p.opened.isoformat(),
                       "expiry_close": p.expiry_close.isoformat()}
                      for p in self.structures.values()]
        orders = {cid: {"status": "unsent" if s in self._unsent else s.status,
                        "alive": any(p.target.alive() for p in s.parts),
                        "replaced_leg": s.replaced_leg,
                        "parts": [[p.alpaca_id, p.filled_qty, p.filled_value, p.status]
                                  for p in s.parts]}
                  for cid, s in self._sent.items() if s.status not in FINAL}
        return {"day": self.day.isoformat(), "cash": self.cash,
                "position": [position.size, position.price], "structures": structures,
                "orders": orders}

    def restore(self, books: dict, owner, data, lots: dict) -> list[tuple]:
        """Rebuild the books and the working orders; returns ``(lot, role, order)`` for each
        recreated order (``lots``: trade_id -> the strategy's restored ``Lot``)."""
        self.cash = books["cash"]
        size, price = books["position"]
        if size:
            self.positions[data].update(size, price, data.datetime.datetime(0))
        for body in books["structures"]:
            lot = lots.get(body["trade_id"])
            position = StructurePosition(
                StructureOrder(owner, data, "open", Structure.from_dict(body["structure"]), 0).ref,
                lot.structure if lot else Structure.from_dict(body["structure"]),
                body["contracts"], body["premium"], dt.datetime.fromisoformat(body["opened"]),
                dt.datetime.fromisoformat(body["expiry_close"]), data=data, owner=owner,
                info={"lot": lot})
            self.structures[position.ref] = position
            if lot is not None:
                lot.position = position
        progress = books["orders"]
        groups: dict[tuple, list] = {}
        cancelled = []
        for row in self.state.orders(self.day.isoformat()):
            state = progress.get(row.client_order_id)
            if state is None or state["status"] in FINAL or state["status"] == "dry-run":
                continue                     # never sent, or done
            lot = lots.get(row.trade_id)
            if lot is not None and not state["alive"] and "legs" not in row.spec:
                cancelled.append((row, state, lot))   # by mtbt: did it fill meanwhile?
            elif lot is None or not state["alive"]:     # no lot's (or a structure's)
                self._orphan(row, state)
            else:
                groups.setdefault(row.trade_id, []).append((row, state))
        links = []
        for trade_id, rows in groups.items():
            links += self._recreate(rows, lots[trade_id], owner, data)
        for row, state, lot in cancelled:    # after the lots' unsent orders are known
            self._cancelled_before_kill(row, state, lot, owner, data)     # (``late``)
        return links

    def _recreate(self, rows: list, lot, owner, data) -> list[tuple]:
        """The working orders of one lot (an exit pair may span two Alpaca orders). An order
        recorded as unsent is looked up by its client id: found, it is linked and its fills
        are booked once every order of the lot is rebuilt and paired (a fill cancels its
        pair, so the pair must exist); not found, it is sent."""
        qty: dict[str, int] = {}
        for row, _ in rows:
            for role in {p["role"] for p in row.spec["parts"]}:
                qty[role] = qty.get(role, 0) + row.spec["qty"]
        links, made, found, pending = [], {}, [], []
        for row, state in rows:
            parts = []
            for spec_part, (alpaca_id, filled, value, status) in zip(
                    row.spec["parts"], state["parts"], strict=True):
                role = spec_part["role"]
                if role not in made:
                    made[role] = self._order_for(row, spec_part, qty[role], lot, owner, data)
                    links.append((lot, role, made[role]))
                parts.append(Part(made[role], row.client_order_id, alpaca_id, filled, value,
                                  status, spec_part["leg"]))
            sent = Sent(row, parts, state["status"], state.get("replaced_leg", False))
            self._track(sent)
            if state["status"] != "unsent":
                continue
            order = self._lookup(row.client_order_id)    # recorded: sent before the kill?
            if order is not None:     # a replace's client id is on the new stop leg
                found.append((sent, self._replaced_parent(sent, order)
                              if "replaces" in row.spec and not order.legs else order))
            elif (old := self._replaced_oco(sent)) is not None:
                found.append((sent, old))
                pending.append(sent)
            else:
                self._unsent.append(sent)
        self._pair(links)
        for sent, order in found:
            what = ("was not sent: the oco it replaces" if sent in pending
                    else "reached Alpaca before the kill")
            log.warning("RESTART %s %s is %s, %s filled", sent.row.client_order_id, what,
                        order.status.value, order.filled_qty)
            self._link(sent, order)
            self._apply(self._pairs(sent, order))
        self._unsent += [sent for sent in pending if sent.status not in FINAL]
        return links

    def _pair(self, links: list[tuple]) -> None:
        """backtrader's one-cancels-other groups again: a lot's exit orders (its stop and
        its target) cancel each other; any other order stands alone."""
        orders = [(role, o) for _, role, o in links if isinstance(o, bt.Order)]
        exits = [o for role, o in orders if role in _EXIT_ROLES]
        stop = next((o for o in exits if o.exectype == bt.Order.Stop), None)
        if stop is not None:
            self._ocoize(stop, None)
        for _, order in orders:
            if order is not stop:
                self._ocoize(order, stop if stop is not None and order in exits else None)

    def _order_for(self, row: OrderRow, spec_part: dict, qty: int, lot, owner, data):
        spec, role = row.spec, spec_part["role"]
        if "legs" in spec:
            kind = "open" if spec["legs"][0]["position_intent"].endswith("open") else "close"
            order = StructureOrder(owner, data, kind, lot.structure, spec["qty"],
                                   position=lot.position, info={"lot": lot, "role": role},
                                   limit=spec.get("structure_limit"))
            order.status = order.Accepted
            self._track_limit(order, bar=-1)     # sent bars ago: checked on the next bar
            return order
        if spec["kind"] == "oco":
            exectype = bt.Order.Stop if spec_part["leg"] else bt.Order.Limit
            price = spec["stop_price"] if spec_part["leg"] else spec["limit_price"]
        else:
            exectype, price = _EXEC[spec["kind"]], spec.get("stop_price",
                                                            spec.get("limit_price"))
        cls = bt.BuyOrder if spec["side"] == "buy" else bt.SellOrder
        return self._accepted(cls(owner=owner, data=data, size=qty, price=price,
                                  exectype=exectype), row.client_order_id, lot=lot, role=role)

    def _accepted(self, order: bt.Order, client_id: str | None, **info) -> bt.Order:
        """``order`` (with ``info``) as working at Alpaca under ``client_id``: submitted,
        accepted and in the broker's orders, nothing said to the strategy."""
        order.addinfo(**info)
        order.submit(self)
        order.accept(self)
        order.client_order_id = client_id
        self.orders.append(order)
        return order

    def _orphan(self, row: OrderRow, state: dict) -> None:
        """An order mtbt no longer wants (cancelled, or of no lot): cancel it at Alpaca if
        it still works; report a fill it got after the checkpoint."""
        order = self._lookup(row.client_order_id)
        if order is None:
            return
        status = str(order.status.value)
        if status not in FINAL:
            self._cancel_remote(str(order.id))
        filled = float(order.filled_qty or 0)
        if filled > sum(p[1] for p in state["parts"][:1]):
            text = f"{row.client_order_id} filled {filled:g} after the last checkpoint"
            log.error("ORPHAN %s: no lot refers to it; check the position", text)
            self.orphans.append(text)
            for callback in self.on_orphan:
                callback(row.client_order_id, f"order filled {filled:g} after the last "
                                              "checkpoint, no lot refers to it: check the "
                                              "position")
