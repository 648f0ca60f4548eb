"""Live-data behaviour of ``ManagedStrategy``: trade only once the feed is live, and resume
after a restart from a checkpoint.

A live feed reports ``DELAYED`` while it replays history (the strategy warms its indicators
up and places no order) and ``LIVE`` from the first streamed bar; the strategy trades from
then on, catch-up bars after a reconnect included. A backtest feed never reports, so a
backtest trades from the first bar (``trade_from`` aside).

``snapshot()`` is everything a restarted trader needs: the lots with their exit stage (and
how often the broker refused each one's exits), the RiskManager's counters (the drawdown
breaker's included), the risk alerts and breaker trips, the edge samples, the next trade
id and the day's journal (so the new session's trades file holds the whole day). Given one
as the ``resume`` param, the strategy restores what it holds when the feed goes live, after
replaying the day's earlier bars as history; the broker rebuilds its books and recreates the
orders still working (``broker.restore``).

Which day a checkpoint belongs to is the session's business (it knows today): a later
session day resumes ``later_day(snapshot)``, the run-wide part only (realised PnL, the peak,
the breaker, alerts, trips, edge samples, trade ids): no lots, no day counters, no journal.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from mtbt.exits import Lot, Stage
from mtbt.options.structures import Structure

RISK_RUN = ("realized", "peak", "paused", "tripped", "trips", "alerts")
RISK_DAY = ("day_pnl", "halted_today")
_RUN_WIDE = ("next_id", "alerts", "breaker_trips", "edge")
_EXIT_ROLES = ("stop", "breakeven", "trail", "tp1", "tp2")


def lot_body(lot: Lot) -> dict:
    body = {f.name: getattr(lot, f.name) for f in dataclasses.fields(lot)
            if f.name not in ("structure", "position")}
    body["stage"] = lot.stage.value
    body["entry_time"] = lot.entry_time.isoformat() if lot.entry_time else None
    body["structure"] = lot.structure.to_dict() if lot.structure is not None else None
    return body


def lot_from(body: dict) -> Lot:
    fields = {k: v for k, v in body.items() if k != "structure"}
    fields["stage"] = Stage(fields["stage"])
    if fields["entry_time"]:
        fields["entry_time"] = dt.datetime.fromisoformat(fields["entry_time"])
    lot = Lot(**fields)
    if body.get("structure"):
        lot.structure = Structure.from_dict(body["structure"])
    return lot


def later_day(snapshot: dict) -> dict:
    """What a later session day keeps of a checkpoint: the run-wide counters only."""
    kept = {name: snapshot[name] for name in _RUN_WIDE if name in snapshot}
    risk = {name: value for name, value in snapshot["risk"].items() if name in RISK_RUN}
    return kept | {"day": snapshot.get("day"), "lots": [], "risk": risk}


class LiveResume:
    """Mixin of ``ManagedStrategy`` (see the module docstring)."""

    def notify_data(self, data, status, *args, **kwargs) -> None:
        if status == data.LIVE and not self.trading:
            self.trading = True
            if self.p.resume:
                self.restore(self.p.resume)

    def snapshot(self) -> dict:
        """The strategy's state as a JSON-able dict."""
        risk, journal = self.risk, self.analyzers.journal
        return {"day": dt.date.fromordinal(self._day).isoformat() if self._day else None,
                "next_id": self._next_id, "lots": [lot_body(lot) for lot in self._lots.values()],
                "risk": {name: getattr(risk, name) for name in RISK_RUN + RISK_DAY},
                "alerts": [[when.isoformat(), text] for when, text in self.alerts],
                "breaker_trips": [when.isoformat() for when in self.breaker_trips],
                "edge": [list(self._edge[0]), list(self._edge[1])],
                "refusals": {str(trade): n for trade, n in self._refusals.items()},
                "journal": {"trades": journal.rets, "legs": journal.legs}}

    def restore(self, snapshot: dict) -> None:
        """Take up what a checkpoint holds: counters, lots, orders (see the module
        docstring)."""
        self._restore_counters(snapshot)
        if "journal" in snapshot:      # the day's journal goes on in the new session's files
            self.analyzers.journal.rets[:0] = snapshot["journal"]["trades"]
            self.analyzers.journal.legs[:0] = snapshot["journal"]["legs"]
        lots = {body["trade_id"]: lot_from(body) for body in snapshot.get("lots", [])}
        self._lots.update(lots)
        self._refusals.update({int(trade): n for trade, n
                               in snapshot.get("refusals", {}).items()})
        self.risk.open_positions = len(self._lots)
        books = getattr(self.p, "resume_books", None)
        links = self.broker.restore(books, self, self.data, lots) if books else []
        for lot, role, order in links:
            self._lot_orders[order.ref] = (lot, role, order)
            if role in _EXIT_ROLES and lot.structure is None:
                working = self._working.setdefault(lot.trade_id, [])
                working.insert(0 if order.exectype == order.Stop else len(working), order)
        for lot in lots.values():
            self.note(f"RESUMED #{lot.trade_id} stage {lot.stage.value} qty {lot.remaining} "
                      f"stop {lot.stop:.2f} orders {len(self._working.get(lot.trade_id, []))}")
        risk = self.risk
        breaker = f"tripped ({risk.trips} trip(s))" if risk.tripped else f"{risk.trips} trip(s)"
        self.note(f"RESUMED risk: day pnl {risk.day_pnl:+.2f}, realised {risk.realized:+.2f}, "
                  f"paused {risk.paused}, breaker {breaker}")

    def _restore_counters(self, snapshot: dict) -> None:
        """The RiskManager's counters, alerts, breaker trips, edge samples and trade ids."""
        for name, value in snapshot["risk"].items():
            setattr(self.risk, name, value)
        now = self.data.datetime.datetime(0)
        alerts = snapshot.get("alerts") or [[now.isoformat(), t] for t in self.risk.alerts]
        self.alerts = [(dt.datetime.fromisoformat(when), text) for when, text in alerts]
        trips = snapshot.get("breaker_trips", [])
        self.breaker_trips = [dt.datetime.fromisoformat(when) for when in trips]
        if "edge" in snapshot:
            self._edge = (list(snapshot["edge"][0]), list(snapshot["edge"][1]))
        self._next_id = max(self._next_id, snapshot.get("next_id", 1))
