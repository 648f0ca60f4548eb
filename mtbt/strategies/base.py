"""ManagedStrategy: sessions, entry window, risk, scaling exits and the force close.

Subclasses only say *when* to enter (``entry_signal``); this base turns that into sized,
risk-checked lots and runs every lot's exits (``mtbt.exits``): equity lots with plain
backtrader orders (stop and limit brackets), option lots as whole structures through the
broker (``_structures.StructureLots``). The same class runs on the backtest broker and a live
one; it imports nothing venue-specific (a test checks that). Equity is flat by
``force_close_before`` minutes before the close (15:45), option structures by
``options_force_close_before`` (15:25: Alpaca liquidates expiring options from 15:30).

Bar times are naive New York wall-clock times labelling the bar's start: a decision taken on
a bar is filled at the next bar's open, i.e. at the bar's close time.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import backtrader as bt

from mtbt import exits
from mtbt.exits import ExitRules, Lot, Stage
from mtbt.risk import RiskManager, RiskSizer
from mtbt.sessions import Session, sessions
from mtbt.strategies._resume import LiveResume
from mtbt.strategies._structures import StructureLots

log = logging.getLogger("mtbt.strategy")
_EPS = 1e-7   # days (~9 ms): float slack when comparing bar times
MAX_REFUSALS = 3   # refusals of a lot's exits after which it is closed at market


@dataclass(frozen=True)
class Signal:
    """An entry the subclass wants: direction and what to write about it."""

    side: int          # +1 long, -1 short
    note: str = ""
    regime: str = ""


class ManagedStrategy(LiveResume, StructureLots, bt.Strategy):
    """Base for mtbt strategies (see the module docstring).

    Params:
      - ``risk``: the ``RiskManager`` (the sizer must be a ``RiskSizer`` on the same one)
      - ``exit_rules``: ``ExitRules``
      - ``entry_start``, ``entry_end``: entry fills allowed from/to these New York times
      - ``force_close_before``: minutes before the session close by which all is flat
      - ``sessions``: ``{date: Session}``; default: the XNYS calendar
      - ``bar_minutes``: the bar length (1)
      - ``trade_from``: no entries before this date (earlier bars warm indicators up)
      - ``instrument``: "equity" (shares) or "options" (a structure per entry)
      - ``options_force_close_before``: minutes before the close by which structures are flat
      - ``expiry_sessions``: 0 trades 0DTE structures, N the expiry N sessions later
      - ``resume``, ``resume_books``: a live restart's checkpoint of the strategy and of the
        broker (``_resume.LiveResume``)
      - ``allocator``: the options allocator's ``AllocatorSettings`` (default: its defaults)
    """

    # what the run file supplies (``mtbt.registry``): the section of this strategy's own
    # params, an instrument it always trades (None: ``[strategy] instrument``), and whether
    # the options allocator picks each entry's structure
    config_section: ClassVar[str] = "strategy"
    fixed_instrument: ClassVar[str | None] = None
    chooses_structures: ClassVar[bool] = True

    params = (("risk", None), ("exit_rules", ExitRules()),
              ("entry_start", dt.time(9, 30)), ("entry_end", dt.time(11, 0)),
              ("force_close_before", 15), ("sessions", None), ("bar_minutes", 1),
              ("trade_from", None), ("instrument", "equity"),
              ("options_force_close_before", 35), ("expiry_sessions", 0),
              ("resume", None), ("resume_books", None), ("allocator", None))

    def __init__(self):
        self.risk: RiskManager = self.p.risk or RiskManager()
        self.rules: ExitRules = self.p.exit_rules
        self._bar = self.p.bar_minutes / 1440.0
        self._lots: dict[int, Lot] = {}
        self._lot_orders: dict[int, tuple[Lot, str, bt.Order]] = {}   # ref -> (lot, role, order)
        self._working: dict[int, list[bt.Order]] = {}    # trade_id -> [stop, target]
        self._refusals: dict[int, int] = {}    # trade_id -> exits the broker refused
        self._reclose: dict[int, str] = {}     # trade_id -> reason of a refused close
        self._next_id = 1
        self.alerts: list[tuple[dt.datetime, str]] = []   # risk alerts with their bar time
        self.breaker_trips: list[dt.datetime] = []        # when the drawdown breaker tripped
        self._day = None
        self._window, self._force_at = (1.0, 0.0), float("inf")
        self._force_opt_at = float("inf")
        self.trading = not self.data.islive()   # a live feed trades from its first LIVE bar
        self._init_structures()

    def start(self) -> None:
        if not isinstance(self.getsizer(), RiskSizer):
            raise TypeError(f"{type(self).__name__} needs a RiskSizer "
                            "(cerebro.addsizer(RiskSizer, risk=...))")
        self._sessions: Mapping[dt.date, Session] = self.p.sessions or {}

    # -- hooks for subclasses --------------------------------------------------------------
    def entry_signal(self) -> Signal | None:
        """The entry to make on this bar, if any (called inside the entry window only)."""
        return None

    def regime_name(self) -> str:
        """The regime label written with each trade."""
        return ""

    # -- the bar loop ----------------------------------------------------------------------
    def next(self) -> None:
        dtnum = self.data.datetime[0]
        if int(dtnum) != self._day:
            self._new_day(int(dtnum))
        if not self.trading:
            return
        close_t = dtnum + self._bar
        if self._lots:
            if self.risk.halted_today or self.risk.paused:
                self.flatten("risk")
            else:
                self._manage_exits(close_t, self.data.close[0])
        if self.in_entry_window(close_t):
            signal = self.entry_signal()
            if signal is not None:
                self._enter(signal)

    def in_entry_window(self, close_t: float) -> bool:
        """Whether an entry decided on this bar (filled at ``close_t``) is allowed."""
        lo, hi = self._window
        return lo - _EPS <= close_t <= hi + _EPS

    def _new_day(self, day: int) -> None:
        self._day = day
        date = dt.date.fromordinal(day)
        session = self._sessions.get(date) if self._sessions else None
        if session is None and not self._sessions:
            session = sessions(date, date).get(date)
        self.risk.reset_daily()
        if session is None:      # not a session: no entries, nothing held
            self._window, self._force_at = (1.0, 0.0), float("-inf")
            self._force_opt_at = float("-inf")
            return
        self._force_at = bt.date2num(session.minutes_before_close(self.p.force_close_before))
        self._force_opt_at = bt.date2num(
            session.minutes_before_close(self.p.options_force_close_before))
        force = self._force_opt_at if self.p.instrument == "options" else self._force_at
        self._window = (bt.date2num(dt.datetime.combine(date, self.p.entry_start)),
                        min(bt.date2num(dt.datetime.combine(date, self.p.entry_end)), force))
        if self.p.trade_from is not None and date < self.p.trade_from:
            self._window = (1.0, 0.0)

    # -- entries ---------------------------------------------------------------------------
    def _enter(self, signal: Signal) -> None:
        if any(lot.side != signal.side for lot in self._lots.values()):
            self.note(f"SKIP {signal.note}: an opposite position is open")
            return
        self.risk.open_risk = self.open_risk()
        ready = self.risk.can_enter()          # before sizing or valuing anything
        if not ready:
            self.note(f"SKIP {signal.note}: {ready.reason}")
            return
        if self.p.instrument == "options" and self._enter_structure(signal):
            return
        sizer: RiskSizer = self.getsizer()
        qty = self.getsizing(isbuy=signal.side > 0)
        cost = sizer.position_cost(qty, self.data.close[0])
        decision = self.risk.can_take_trade(cost if qty else 0.0)
        if not decision:
            self.note(f"SKIP {signal.note}: {decision.reason}")
            return
        lot = self._new_lot(signal, qty, cost)
        self._submit(lot, "entry", bt.Order.Market, None, qty, lot.side)
        self.note(f"ENTRY #{lot.trade_id} {signal.note} qty {qty} risk ${cost:,.2f}")

    def open_risk(self) -> float:
        """Dollars the open lots lose if every one of them exits at its stop now (costs
        included; a structure or an entry still working counts its sized risk): what the
        daily limit must leave room for."""
        sizer = self.getsizer()
        costs = sizer.p.commission + sizer.p.slippage
        total = 0.0
        for lot in self._lots.values():
            if lot.stage is Stage.PENDING or lot.structure is not None:
                total += lot.risk * (lot.remaining or lot.qty) / lot.qty
            else:
                per_share = lot.side * (lot.entry_price - lot.stop) + costs
                total += max(0.0, lot.remaining * per_share
                             + lot.entry_comm * lot.remaining / lot.qty)
        return total

    def _new_lot(self, signal: Signal, qty: int, cost: float) -> Lot:
        lot = Lot(self._next_id, signal.side, qty, regime=signal.regime, risk=cost)
        self._next_id += 1
        decided = self.allocations[-1] if self.allocations else None
        if decided and decided["trade_id"] == lot.trade_id:
            decided["entered"] = True         # this signal's allocation became this lot
        self._lots[lot.trade_id] = lot
        self.risk.on_open()
        return lot

    # -- exits -----------------------------------------------------------------------------
    def _manage_exits(self, close_t: float, close: float) -> None:
        for lot in list(self._lots.values()):
            if lot.stage is Stage.PENDING or lot.closing or lot.pending_exit:
                continue
            if lot.trade_id in self._reclose:          # a close the broker refused
                self.close_lot(lot, self._reclose.pop(lot.trade_id))
                continue
            force = self._force_at if lot.structure is None else self._force_opt_at
            if close_t >= force - _EPS:
                self.close_lot(lot, "eod")
            else:
                self.manage_lot(lot, close)

    def manage_lot(self, lot: Lot, close: float) -> None:
        """This bar's exit management of an open lot (default: the scaling exits)."""
        if lot.structure is not None:
            self.manage_structure(lot, close)
        elif exits.ratchet(self.rules, lot, close) or lot.trade_id not in self._working:
            self._place_exits(lot)

    def _place_exits(self, lot: Lot) -> None:
        self._cancel_working(lot)
        orders = exits.exit_orders(self.rules, lot)
        placed: list[bt.Order] = []
        for order in orders:
            kind = bt.Order.Stop if order.kind == "stop" else bt.Order.Limit
            oco = placed[0] if placed else None
            placed.append(self._submit(lot, order.reason, kind, order.price, order.qty,
                                       -lot.side, oco=oco))
        self._working[lot.trade_id] = placed

    def _cancel_working(self, lot: Lot) -> None:
        for order in self._working.pop(lot.trade_id, []):
            if order.status == order.Completed:
                continue        # filled already (live: before its notice came): booked then
            self._lot_orders.pop(order.ref, None)    # its Canceled notice is then ignored
            if order.alive():
                self.cancel(order)

    def flatten(self, reason: str) -> None:
        """Close every lot at market now (``reason``: eod or risk)."""
        for lot in list(self._lots.values()):
            if not (lot.closing or lot.stage is Stage.PENDING or lot.pending_exit):
                self.close_lot(lot, reason)

    def close_lot(self, lot: Lot, reason: str) -> None:
        """Close what remains of a lot at the next bar's open, for ``reason``."""
        lot.closing = True
        self._reclose.pop(lot.trade_id, None)
        if lot.structure is not None:
            self.close_structure(lot, lot.remaining, reason)
        else:
            self._cancel_working(lot)
            self._submit(lot, reason, bt.Order.Market, None, lot.remaining, -lot.side)
        self.note(f"CLOSE #{lot.trade_id} ({reason}) qty {lot.remaining}")

    def _submit(self, lot: Lot, role: str, exectype, price, qty: int, side: int, oco=None):
        method = self.buy if side > 0 else self.sell
        order = method(size=qty, exectype=exectype, price=price, oco=oco)
        order.addinfo(lot=lot, role=role)
        self._lot_orders[order.ref] = (lot, role, order)
        return order

    # -- notifications ---------------------------------------------------------------------
    def notify_order(self, order: bt.Order) -> None:
        if order.status in (order.Submitted, order.Accepted, order.Partial):
            return        # a partial fill is handled when the order completes
        entry = self._lot_orders.pop(order.ref, None)
        if getattr(order, "kind", None) == "expire":     # a structure settled at expiry
            entry = (order.info["lot"], "eod", order)
        if entry is None:
            if order.status == order.Completed and order.info.get("late"):
                self._late_exit(order)
            return
        lot, role, _ = entry
        if getattr(order, "structure", None) is not None:
            self._structure_notice(lot, role, order)
        elif order.status == order.Completed:
            if role == "entry":
                self._entry_filled(lot, order)
            else:
                self._exit_filled(lot, role, order)
        elif role == "entry":
            self.note(f"ENTRY #{lot.trade_id} not filled: {order.getstatusname()}")
            self._drop(lot)
        else:
            self._exit_refused(lot, role, order)

    def _exit_refused(self, lot: Lot, role: str, order: bt.Order) -> None:
        """An exit the broker refused or withdrew (a live broker only): its pair is dropped
        and placed again on the next bar, a close is sent again on the next bar. The
        ``MAX_REFUSALS``-th refusal of a lot's exits closes it at market (reason ``risk``):
        a position whose stop cannot be placed is not held on, bar after bar, with no stop.
        An order the broker withdrew itself (``withdrawn``: behind a late fill or a cancel
        still pending) is no refusal."""
        if self._lots.get(lot.trade_id) is not lot:
            return        # a late exit closed it: the broker withdrew its close (``late``)
        refusals = self._refusals.get(lot.trade_id, 0) + (not order.info.get("withdrawn"))
        self._refusals[lot.trade_id] = refusals
        self._cancel_working(lot)
        what = f"EXIT #{lot.trade_id} {role} {order.getstatusname()}"
        if lot.closing:
            lot.closing = False
            self._reclose[lot.trade_id] = role
            self.note(f"{what}: closing again next bar")
        elif refusals >= MAX_REFUSALS:
            self.note(f"{what}, refusal {refusals} of its exits: closing at market")
            self.close_lot(lot, "risk")
        else:
            self.note(f"{what}: re-placing")

    def _late_exit(self, order: bt.Order) -> None:
        """A live fill of an exit this strategy had cancelled (it filled before the cancel
        reached the broker, or while the trader was down): that trade's exit. Its exits
        placed since are cancelled (the broker withdrew those not sent yet) and placed, or
        its close sent, again on the next bar for what remains."""
        lot, role = order.info["lot"], order.info["role"]
        qty = abs(order.executed.size)
        if role == "entry" or self._lots.get(lot.trade_id) is not lot:
            log.error("%s LATE FILL #%s %s %d: no open trade to book it to (not in the "
                      "journal); check the position", self.data.datetime.datetime(0),
                      lot.trade_id, role, qty)
            return
        self._cancel_working(lot)
        self.note(f"LATE FILL #{lot.trade_id} {role} {qty}: filled before its cancel")
        self._exit_filled(lot, role, order)

    def _entry_filled(self, lot: Lot, order: bt.Order) -> None:
        when = bt.num2date(order.executed.dt)
        exits.on_entry_fill(self.rules, lot, order.executed.price, when, order.executed.comm)
        self.note(f"FILL #{lot.trade_id} entry {'buy' if lot.side > 0 else 'sell'} "
                  f"{lot.qty} @ {lot.entry_price:.2f}; stop {lot.stop:.2f}")

    def _exit_filled(self, lot: Lot, role: str, order: bt.Order) -> None:
        qty, price = abs(order.executed.size), order.executed.price
        pnl = (lot.side * (price - lot.entry_price) * qty - order.executed.comm
               - lot.entry_comm * qty / lot.qty)
        order.info.pnl = pnl     # the journal reads it
        for sibling in self._working.pop(lot.trade_id, []):
            self._lot_orders.pop(sibling.ref, None)
        self.edge_sample(lot, price, qty, bt.num2date(order.executed.dt))
        exits.on_exit_fill(lot, role, qty)
        self.risk.update_pnl(pnl)
        self._log_alerts()
        self.note(f"FILL #{lot.trade_id} {role} {qty} @ {price:.2f} pnl {pnl:+.2f}")
        if lot.stage is Stage.CLOSED:
            self._drop(lot)

    def _drop(self, lot: Lot) -> None:
        self._lots.pop(lot.trade_id, None)
        self._working.pop(lot.trade_id, None)
        self.risk.on_close()

    def stop(self) -> None:
        """Lots still open when the data ends mid-session stay open: nothing after the last
        bar can fill them, and closing them early would use knowledge of where data ends."""
        self.open_at_end = [lot for lot in self._lots.values() if lot.stage is not Stage.PENDING]
        for lot in self.open_at_end:
            self.note(f"OPEN AT END #{lot.trade_id}: {lot.remaining} still open when the data "
                      "ended (marked at the last close in equity, not in trades.csv)")

    def _log_alerts(self) -> None:
        now = self.data.datetime.datetime(0)
        for text in self.risk.alerts[len(self.alerts):]:
            self.alerts.append((now, text))
            self.note(f"ALERT {text}")
        self.breaker_trips += [now] * (self.risk.trips - len(self.breaker_trips))

    # -- what a live session asks of the strategy -----------------------------------------
    def open_lots(self) -> list[Lot]:
        """The trades not closed yet (an entry still working included)."""
        return list(self._lots.values())

    def cancel_entries(self) -> None:
        """Cancel every entry order still working (shutdown)."""
        for lot, role, order in list(self._lot_orders.values()):
            if role == "entry" and lot.stage is Stage.PENDING and isinstance(order, bt.Order) \
                    and order.alive():
                self.cancel(order)

    def receive(self, order) -> None:
        """Take a broker notification outside cerebro's loop (shutdown), as cerebro would
        hand it to the strategy and its analyzers. The ones handled before are cleared
        first, as cerebro does each bar: with cerebro's ``quicknotify`` off, backtrader's
        ``_notify`` handles every notification pending, so each was handled again."""
        self.clear()
        self._addnotification(order, quicknotify=True)

    def note(self, text: str) -> None:
        """Log one line stamped with the bar's time (to run.log)."""
        log.info("%s %s", self.data.datetime.datetime(0).strftime("%Y-%m-%d %H:%M"), text)
