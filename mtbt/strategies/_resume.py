"""Live-data behaviour of ``ManagedStrategy``: trade only once the feed is live, and resume
after a restart from a checkpoint.

A live feed reports ``DELAYED`` while it replays history (the strategy warms its indicators
up and places no order) and ``LIVE`` from the first streamed bar; the strategy trades from
then on, catch-up bars after a reconnect included. A backtest feed never reports, so a
backtest trades from the first bar (``trade_from`` aside).

``snapshot()`` is everything a restarted trader needs: the lots with their exit stage, the
RiskManager's counters, the next trade id and the day's journal (so the new session's
trades file holds the whole day). Given one as the
``resume`` param, the strategy restores it when the feed goes live, after replaying the
day's earlier bars as history; the broker rebuilds its books and recreates the orders still
working (``broker.restore``). The day's loss counter is kept when the checkpoint is from the
same day; the drawdown pause and realised PnL always are.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from mtbt.exits import Lot, Stage
from mtbt.options.structures import Structure

_RISK_RUN = ("realized", "peak", "paused", "alerts")
_RISK_DAY = ("day_pnl", "halted_today")
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


class LiveResume:
    """Mixin of ``ManagedStrategy`` (see the module docstring)."""

    def notify_data(self, data, status, *args, **kwargs) -> None:
        if status == data.LIVE and not self._live:
            self._live = True
            if self.p.resume:
                self.restore(self.p.resume)

    def snapshot(self) -> dict:
        """The strategy's state as a JSON-able dict."""
        risk, journal = self.risk, self.analyzers.journal
        return {"day": dt.date.fromordinal(self._day).isoformat() if self._day else None,
                "next_id": self._next_id, "lots": [lot_body(lot) for lot in self._lots.values()],
                "risk": {name: getattr(risk, name) for name in _RISK_RUN + _RISK_DAY},
                "journal": {"trades": journal.rets, "legs": journal.legs}}

    def restore(self, snapshot: dict) -> None:
        """Take up a checkpoint's lots, counters and orders (see the module docstring)."""
        today = dt.date.fromordinal(self._day).isoformat() if self._day else None
        same_day = snapshot.get("day") == today
        for name in _RISK_RUN + (_RISK_DAY if same_day else ()):
            setattr(self.risk, name, snapshot["risk"][name])
        self._next_id = max(self._next_id, snapshot["next_id"])
        if same_day:                   # the day's journal goes on in the new session's files
            self.analyzers.journal.rets[:0] = snapshot["journal"]["trades"]
            self.analyzers.journal.legs[:0] = snapshot["journal"]["legs"]
        lots = {body["trade_id"]: lot_from(body) for body in snapshot["lots"]}
        self._lots.update(lots)
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
        self.note(f"RESUMED risk: day pnl {self.risk.day_pnl:+.2f}, realised "
                  f"{self.risk.realized:+.2f}, paused {self.risk.paused}")
