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
    """Limits on positions and losses, kept on realised PnL (the readiness report's API).

    - at most ``max_positions`` lots open (entries still working count);
    - a trade's position cost (its loss at the hard stop, costs included) must fit the budget
      ``account_size * risk_per_trade_pct``;
    - once the day's realised loss reaches ``daily_dd_limit``, no new entry until
      ``reset_daily`` (the strategy also flattens what is open: exit reason ``risk``);
    - once realised equity is ``max_dd_threshold`` below its peak, trading pauses for the
      rest of the run (an alert; the strategy flattens). ``reset_daily`` does not lift it.
    """

    def __init__(self, account_size: float = 25_000.0, risk_per_trade_pct: float = 0.02,
                 max_positions: int = 3, daily_dd_limit: float = 500.0,
                 max_dd_threshold: float = 1_000.0):
        self.account_size = account_size
        self.risk_per_trade_pct = risk_per_trade_pct
        self.max_positions = max_positions
        self.daily_dd_limit = daily_dd_limit
        self.max_dd_threshold = max_dd_threshold
        self.realized = 0.0             # since the start
        self.day_pnl = 0.0              # realised today
        self.peak = account_size
        self.open_positions = 0
        self.halted_today = False       # daily loss limit reached
        self.paused = False             # total drawdown threshold reached
        self.alerts: list[str] = []

    @property
    def equity(self) -> float:
        """Account size plus realised PnL."""
        return self.account_size + self.realized

    @property
    def risk_budget(self) -> float:
        """Dollars one trade may lose at its hard stop."""
        return self.account_size * self.risk_per_trade_pct

    @property
    def drawdown(self) -> float:
        """Dollars of realised equity below its peak."""
        return self.peak - self.equity

    def can_take_trade(self, position_cost: float) -> Decision:
        """May a new trade that risks ``position_cost`` dollars be opened now?"""
        if self.paused:
            return Decision(False, f"trading paused: drawdown reached max_dd_threshold "
                                   f"${self.max_dd_threshold:,.2f}")
        if self.halted_today:
            return Decision(False, f"daily loss limit ${self.daily_dd_limit:,.2f} reached")
        if self.open_positions >= self.max_positions:
            return Decision(False, f"max_positions: {self.open_positions} already open")
        if not position_cost > 0:
            return Decision(False, "position size is zero (not enough buying power)")
        if position_cost > self.risk_budget + 1e-9:
            return Decision(False, f"position cost ${position_cost:,.2f} exceeds the risk "
                                   f"budget ${self.risk_budget:,.2f}")
        return Decision(True)

    def on_open(self) -> None:
        self.open_positions += 1

    def on_close(self) -> None:
        self.open_positions = max(0, self.open_positions - 1)

    def update_pnl(self, pnl: float) -> None:
        """Book a realised PnL (net dollars) and check the loss limits."""
        self.realized += pnl
        self.day_pnl += pnl
        self.peak = max(self.peak, self.equity)
        if not self.halted_today and -self.day_pnl >= self.daily_dd_limit:
            self.halted_today = True
            self._alert(f"daily loss limit: the day has lost ${-self.day_pnl:,.2f} "
                        f"(limit ${self.daily_dd_limit:,.2f}); no new entries today")
        if not self.paused and self.drawdown >= self.max_dd_threshold:
            self.paused = True
            self._alert(f"max drawdown: equity ${self.equity:,.2f} is "
                        f"${self.drawdown:,.2f} below the peak ${self.peak:,.2f}; "
                        "trading paused")

    def reset_daily(self) -> None:
        """A new session: the day's counters start again (the drawdown pause does not)."""
        self.day_pnl = 0.0
        self.halted_today = False

    def _alert(self, text: str) -> None:
        self.alerts.append(text)   # the strategy logs them with the bar's time


_POWER_USE = 0.99   # leave 1% of buying power for fills away from the sizing price


def cost_per_share(price: float, stop_pct: float, commission: float, slippage: float) -> float:
    """Loss per share if the hard stop fills: the stop distance plus both fills' costs."""
    return price * stop_pct + 2.0 * (commission + slippage)


class RiskSizer(bt.Sizer):
    """Shares such that the loss at the hard stop, costs included, fits the risk budget.

    Also capped by buying power: 99% of equity x ``max_leverage`` less the value of what is
    open (the 1% covers an entry filling away from the price it was sized at).

    Params:
      - ``risk``: the ``RiskManager``
      - ``stop_pct``, ``commission``, ``slippage`` (per share), ``max_leverage``
    """

    params = (("risk", None), ("stop_pct", 0.007), ("commission", 0.005),
              ("slippage", 0.01), ("max_leverage", 4.0))

    def shares(self, price: float, equity: float, exposure: float) -> int:
        """The size for an entry near ``price`` (pure: used by ``_getsizing`` and tests)."""
        p = self.p
        per_share = cost_per_share(price, p.stop_pct, p.commission, p.slippage)
        by_risk = math.floor(p.risk.risk_budget / per_share)
        power = _POWER_USE * (equity * p.max_leverage - exposure)
        by_power = math.floor(max(0.0, power) / (price + p.commission + p.slippage))
        return max(0, min(by_risk, by_power))

    def position_cost(self, qty: int, price: float) -> float:
        return qty * cost_per_share(price, self.p.stop_pct, self.p.commission, self.p.slippage)

    def _getsizing(self, comminfo, cash, data, isbuy) -> int:
        broker = self.broker
        exposure = sum(abs(broker.getposition(d).size) * d.close[0]
                       for d in self.strategy.datas)
        return self.shares(data.close[0], broker.getvalue(), exposure)
