"""RiskManager (the readiness report's API) and the backtrader Sizer built on it."""
from __future__ import annotations

import math
from dataclasses import dataclass

import backtrader as bt


@dataclass(frozen=True)
class Decision:
    """The answer of ``can_take_trade``: truthy when allowed, with the reason when not."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


class RiskManager:
    """Limits on positions and losses (the readiness report's API), kept as caps.

    - at most ``max_positions`` lots open (entries still working count);
    - a trade's position cost (its loss at the hard stop for shares, its worst-case loss for
      an option structure; costs included) must fit ``entry_budget``: the budget
      ``account_size * risk_per_trade_pct``, and the **daily room**, what the day may still
      lose: ``daily_dd_limit`` + the day's realised PnL - ``open_risk`` (the loss at the stops
      of the lots already open, which the strategy sets before each entry). So the day's
      realised loss, the open lots' losses at their stops and the new lot's worst case
      together stay within ``daily_dd_limit``; only a gap through a stop can take it further.
      When the room is under ``MIN_ROOM_SHARE`` (a fifth) of the per-trade budget, the day
      takes no new entry (a trade sized to a few dollars of room is noise, not a position);
    - once the day's realised loss reaches ``daily_dd_limit``, no new entry until
      ``reset_daily`` (the strategy also flattens what is open: exit reason ``risk``);
    - the drawdown **breaker** trips when realised equity is ``max_dd_threshold`` below its
      peak. ``max_dd_action = "pause"``: no new entry after the trip (``paused``; the
      strategy flattens), until ``reset_breaker``; ``"alert"``: the trip is counted and
      alerted and trading goes on; it re-arms once equity makes a new peak.
    """

    MIN_ROOM_SHARE = 0.2

    def __init__(self, account_size: float = 25_000.0, risk_per_trade_pct: float = 0.02,
                 max_positions: int = 3, daily_dd_limit: float = 500.0,
                 max_dd_threshold: float = 1_000.0, max_dd_action: str = "pause"):
        if max_dd_action not in ("pause", "alert"):
            raise ValueError(f"max_dd_action must be 'pause' or 'alert', got {max_dd_action!r}")
        self.account_size = account_size
        self.risk_per_trade_pct = risk_per_trade_pct
        self.max_positions = max_positions
        self.daily_dd_limit = daily_dd_limit
        self.max_dd_threshold = max_dd_threshold
        self.max_dd_action = max_dd_action
        self.realized = 0.0             # since the start
        self.day_pnl = 0.0              # realised today
        self.peak = account_size
        self.open_positions = 0
        self.open_risk = 0.0            # loss at the stops of the open lots (set per entry)
        self.halted_today = False       # daily loss limit reached
        self.paused = False             # the breaker tripped with max_dd_action "pause"
        self.tripped = False            # the breaker is tripped (either action)
        self.trips = 0                  # how many times it tripped
        self.alerts: list[str] = []

    @property
    def equity(self) -> float:
        """Account size plus realised PnL."""
        return self.account_size + self.realized

    @property
    def risk_budget(self) -> float:
        """Dollars one trade may lose at its hard stop (or worst case)."""
        return self.account_size * self.risk_per_trade_pct

    @property
    def daily_room(self) -> float:
        """Dollars a new entry may still risk today: the daily limit, plus the day's realised
        PnL, less the open lots' loss at their stops."""
        return self.daily_dd_limit + self.day_pnl - self.open_risk

    @property
    def entry_budget(self) -> float:
        """What a new entry may risk: the per-trade budget or the daily room, the smaller
        (0 when the room is under ``MIN_ROOM_SHARE`` of the budget)."""
        room = self.daily_room
        if room < self.MIN_ROOM_SHARE * self.risk_budget:
            return 0.0
        return min(self.risk_budget, room)

    @property
    def drawdown(self) -> float:
        """Dollars of realised equity below its peak."""
        return self.peak - self.equity

    def can_take_trade(self, position_cost: float) -> Decision:
        """May a new trade that risks ``position_cost`` dollars be opened now?"""
        decision = self.can_enter()
        if not decision:
            return decision
        if not position_cost > 0:
            return Decision(False, "position size is zero (not enough buying power)")
        if position_cost > self.risk_budget + 1e-9:
            return Decision(False, f"position cost ${position_cost:,.2f} exceeds the risk "
                                   f"budget ${self.risk_budget:,.2f}")
        if position_cost > self.daily_room + 1e-9:
            return Decision(False, f"position cost ${position_cost:,.2f} exceeds the daily "
                                   f"room {self._room()}")
        return Decision(True)

    def can_enter(self) -> Decision:
        """May any new trade be opened now, whatever its size (the checks that come before
        sizing one: the breaker, the daily limit, the positions, the day's room)?"""
        if self.paused:
            return Decision(False, f"trading paused: drawdown reached max_dd_threshold "
                                   f"${self.max_dd_threshold:,.2f}")
        if self.halted_today:
            return Decision(False, f"daily loss limit ${self.daily_dd_limit:,.2f} reached")
        if self.open_positions >= self.max_positions:
            return Decision(False, f"max_positions: {self.open_positions} already open")
        if self.entry_budget <= 0:
            return Decision(False, f"daily room {self._room()} is under "
                                   f"{self.MIN_ROOM_SHARE:.0%} of the risk budget")
        return Decision(True)

    def _room(self) -> str:
        """The daily room and what it is made of, for a refusal's reason."""
        return (f"${self.daily_room:,.2f} (limit ${self.daily_dd_limit:,.2f}, day "
                f"{self.day_pnl:+,.2f}, open at stops ${self.open_risk:,.2f})")

    def on_open(self) -> None:
        self.open_positions += 1

    def on_close(self) -> None:
        self.open_positions = max(0, self.open_positions - 1)

    def update_pnl(self, pnl: float) -> None:
        """Book a realised PnL (net dollars) and check the loss limits."""
        self.realized += pnl
        self.day_pnl += pnl
        if self.equity > self.peak:
            self.peak = self.equity
            if self.max_dd_action == "alert":
                self.tripped = False           # a new peak re-arms the alert
        if not self.halted_today and -self.day_pnl >= self.daily_dd_limit:
            self.halted_today = True
            self._alert(f"daily loss limit: the day has lost ${-self.day_pnl:,.2f} "
                        f"(limit ${self.daily_dd_limit:,.2f}); no new entries today")
        if not self.tripped and self.drawdown >= self.max_dd_threshold:
            self.tripped, self.trips = True, self.trips + 1
            self.paused = self.max_dd_action == "pause"
            then = "trading paused" if self.paused else "alert only, trading goes on"
            self._alert(f"max drawdown: equity ${self.equity:,.2f} is "
                        f"${self.drawdown:,.2f} below the peak ${self.peak:,.2f}; {then}")

    def reset_daily(self) -> None:
        """A new session: the day's counters start again (the breaker does not)."""
        self.day_pnl = 0.0
        self.halted_today = False

    def reset_breaker(self) -> None:
        """Clear a tripped breaker: the drawdown counts again from today's equity."""
        self.paused = self.tripped = False
        self.peak = self.equity

    def _alert(self, text: str) -> None:
        self.alerts.append(text)   # the strategy logs them with the bar's time


FILL_MOVE = 0.01   # an entry may fill up to 1% above the price it was sized at


def cost_per_share(price: float, stop_pct: float, commission: float, slippage: float) -> float:
    """Loss per share if the hard stop fills: the stop distance plus both fills' costs."""
    return price * stop_pct + 2.0 * (commission + slippage)


def open_cash(comminfo: bt.CommInfoBase, price: float) -> float:
    """Cash the broker takes to open one share long at ``price``: the operation cost over
    the leverage, plus the commission (a short sale is credited its proceeds instead; see
    ``BacktestBroker.free_cash``). BackBroker refuses an entry (``Margin``) when this would
    take its cash below zero, checked when the order is submitted (at the price it was
    created at) and again when it fills (at the next open, slippage included)."""
    return (comminfo.getoperationcost(1, price) / comminfo.get_leverage()
            + comminfo.getcommission(1, price))


class RiskSizer(bt.Sizer):
    """Shares such that the loss at the hard stop, costs included, fits the entry budget
    (``RiskManager.entry_budget``: the per-trade budget or the daily room).

    Also capped by the broker's own test: the entry's ``open_cash`` must fit the cash the
    broker has free (``BacktestBroker.free_cash``: after what is open, debit structures'
    premiums included) at a fill ``FILL_MOVE`` above the sizing price plus the slippage.
    The buying power is therefore ``max_leverage`` x free cash, the leverage being the
    commission info's (``build_cerebro`` sets it to ``max_leverage``).

    Params:
      - ``risk``: the ``RiskManager``
      - ``stop_pct``, ``commission``, ``slippage`` (per share)
    """

    params = (("risk", None), ("stop_pct", 0.007), ("commission", 0.005),
              ("slippage", 0.01))

    def shares(self, price: float, cash: float, comminfo: bt.CommInfoBase) -> int:
        """The size for an entry near ``price`` with ``cash`` free (pure: used by
        ``_getsizing`` and tests)."""
        p = self.p
        per_share = cost_per_share(price, p.stop_pct, p.commission, p.slippage)
        by_risk = math.floor(p.risk.entry_budget / per_share)
        fill = price * (1.0 + FILL_MOVE) + p.slippage
        by_cash = math.floor(max(0.0, cash) / open_cash(comminfo, fill))
        return max(0, min(by_risk, by_cash))

    def position_cost(self, qty: int, price: float) -> float:
        return qty * cost_per_share(price, self.p.stop_pct, self.p.commission, self.p.slippage)

    def _getsizing(self, comminfo, cash, data, isbuy) -> int:
        return self.shares(data.close[0], self.broker.free_cash(), comminfo)
