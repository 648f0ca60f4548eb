"""IronCondor0DTE: sell 0DTE iron condors at fixed times when the market is neutral."""
from __future__ import annotations

import datetime as dt
import math

import backtrader as bt

from mtbt.exits import Lot
from mtbt.indicators import Confluence, Inputs, Regime, RegimeState, trend_bars
from mtbt.options.allocator import NO_RECORDED_PRICE, leg_problem
from mtbt.options.ev import close_value, worst_grid, worst_loss
from mtbt.options.structures import iron_condor
from mtbt.strategies._structures import Choice
from mtbt.strategies.base import _EPS, ManagedStrategy, Signal


class IronCondor0DTE(ManagedStrategy):
    """The DynamicRiskPaperTrader's condors.

    - **Entries** at ``entry_times`` (the fill time; 09:45, 11:30, 13:00, 14:30) when the
      market is *neutral* and fewer than ``max_open`` condors are open. Neutral means: the
      regime is ``TRADE_NORMAL`` (VIX 13-30, daily ATR >= 0.5%) and the 4-hour and daily
      trends do not agree (``|Confluence.score| < 2``): no higher-timeframe trend to run
      through a short strike.
    - **Strikes**: short put and call at spot -/+ one standard deviation of the expected
      move to the close (the chain's ATM IV over the time left), on the strike grid; long
      wings ``wing_width`` further out. A condor that would sell a leg at a zero bid is
      skipped, and so is one with a leg without a recorded price (on recorded option prices)
      or one failing the liquidity rules (``[options] max_spread_pct``, ``min_bid``,
      ``min_volume``): a SKIP line says which, and the broker's ``price_counts`` counts it.
    - **Size** (``sizing``): ``"stop"`` (default), as many contracts as the risk budget
      covers at the loss where the stop closes it (``stop_loss`` x the credit, plus fees both
      ways), as the seed trades it; ``"max_loss"``, as many as it covers at the worst-case
      loss (the wings' width less the credit, closed at executable prices, plus fees). The
      budget is the RiskManager's entry budget (the per-trade budget or the day's room).
    - **Exits** on each bar's close, judged on what closing now would really get (long legs
      sold at the bid, shorts bought at the ask) and the fees both ways:
      ``profit_target`` when the net profit reaches ``profit_target`` (25%) of the credit,
      sent as a limit at that price (good for the next open, so it never fills for less);
      ``stop_loss`` when the net loss reaches ``stop_loss`` (2x) the credit; ``time`` after
      ``max_hold_minutes`` (4 h); ``eod`` at the options force close (15:25; 0DTE); ``risk``
      when a loss limit trips.
    - **Daily breakers**: no new condor after ``daily_profit_target`` ($250) realised on the
      day, or once the RiskManager's daily loss limit ($500) is reached.
    """

    config_section = "iron_condor"
    fixed_instrument = "options"
    chooses_structures = False

    params = (
        ("entry_times", (dt.time(9, 45), dt.time(11, 30), dt.time(13, 0), dt.time(14, 30))),
        ("wing_width", 5.0), ("profit_target", 0.25), ("stop_loss", 2.0),
        ("max_hold_minutes", 240), ("max_open", 2), ("daily_profit_target", 250.0),
        ("vix_min", 13.0), ("vix_max", 30.0), ("atr_min_pct", 0.5),
        ("trend_ema_4h", 6), ("trend_ema_1d", 10), ("sizing", "stop"),
    )

    def __init__(self):
        super().__init__()
        p = self.p
        daily, h4 = Inputs(self.data, build=lambda data: trend_bars(
            data, p.trend_ema_1d, p.trend_ema_4h)).built
        self.confluence = Confluence(self.data, h4, daily)
        self.regime = Regime(self.data, daily, vix_min=p.vix_min, vix_max=p.vix_max,
                             atr_min_pct=p.atr_min_pct)
        self._entries_day, self._entry_nums = None, []

    def regime_name(self) -> str:
        return RegimeState(int(self.regime.regime[0])).name

    def in_entry_window(self, close_t: float) -> bool:
        lo, hi = self._window
        if hi < lo or not lo - _EPS <= close_t <= self._force_opt_at:
            return False      # not a session, or before trade_from
        day = int(close_t)
        if day != self._entries_day:          # the entry times as date numbers, once a day
            date = dt.date.fromordinal(day)
            self._entries_day = day
            self._entry_nums = [bt.date2num(dt.datetime.combine(date, t))
                                for t in self.p.entry_times]
        return any(abs(close_t - t) < _EPS for t in self._entry_nums)

    def entry_signal(self) -> Signal | None:
        regime = self.regime_name()
        score = self.confluence.score[0]
        if regime != "TRADE_NORMAL":
            reason = f"regime {regime}"
        elif abs(score) >= 2:
            reason = f"trending: 4H and daily trends agree ({score:+.0f})"
        elif len(self._lots) >= self.p.max_open:
            reason = f"{len(self._lots)} condors already open"
        elif self.risk.day_pnl >= self.p.daily_profit_target:
            reason = f"daily profit target ${self.p.daily_profit_target:,.0f} reached"
        else:
            return Signal(-1, "neutral: iron condor", regime)
        self.note(f"SKIP iron condor: {reason}")
        return None

    def choose_structure(self, signal, chain, budget: float) -> Choice | None:
        spot, move, step = chain.spot, chain.expected_move(), chain.model.strike_step
        put_short = chain.nearest_strike(spot - move)
        call_short = max(chain.nearest_strike(spot + move), put_short + step)
        condor = iron_condor(chain.expiry, put_short, call_short, self.p.wing_width)
        held = self.held_contracts()
        if any(held.get((leg.right, leg.strike, leg.expiry), 0) * leg.qty < 0
               for leg in condor.legs):
            self.note(f"SKIP iron condor {condor.label}: a leg is held the other way")
            return None
        for leg in condor.legs:
            problem = leg_problem(chain, leg, self.settings.liquidity)
            if problem is not None:
                self.count_drops([problem[0]] + (["entries"] if problem[0] == NO_RECORDED_PRICE
                                                  else []))
                self.note(f"SKIP iron condor {condor.label}: {problem[1]}")
                return None
        if any(leg.qty < 0 and chain.bid(leg.right, leg.strike) <= 0 for leg in condor.legs):
            self.note(f"SKIP iron condor {condor.label}: a short leg has a zero bid")
            return None
        premium, fees = condor.fill(chain), condor.fees(chain)
        mult = chain.model.multiplier
        if not premium < 0:
            self.note(f"SKIP iron condor: no credit at these quotes ({premium:+.2f})")
            return None
        if self.p.sizing == "stop":
            per_contract = self.p.stop_loss * -premium * mult + 2 * fees
            at = f"the {self.p.stop_loss:g}x-credit stop"
        else:
            wing = self.p.wing_width
            grid = worst_grid(chain, [(leg.right, leg.strike) for leg in condor.legs],
                              lo=max(put_short - 2 * wing, step), hi=call_short + 2 * wing,
                              bars=self.bars_to_force_close())
            per_contract = worst_loss(condor, chain, premium, grid) * mult
            at = "its worst case"
        contracts = int(math.floor(budget / per_contract + 1e-9))
        why = (f"shorts {put_short:g}/{call_short:g} (expected move {move:.2f}), credit "
               f"{-premium:.2f}, ${per_contract:,.2f} a contract at {at}")
        return Choice(condor, contracts, contracts * per_contract, why)

    def manage_lot(self, lot: Lot, close: float) -> None:
        chain = self.chain_now(lot.structure.expiry)
        value = close_value(lot.structure, chain)         # per share, what closing gets now
        mult = lot.multiplier
        credit = -lot.premium * mult * lot.remaining
        fees = lot.entry_comm * lot.remaining / lot.qty + lot.structure.fees(chain) * lot.remaining
        net = (value - lot.premium) * mult * lot.remaining - fees
        now = self.data.datetime.datetime(0) + dt.timedelta(minutes=1)
        if net >= self.p.profit_target * credit:
            self.close_structure(lot, lot.remaining, "profit_target", limit=value)
            self.note(f"CLOSE #{lot.trade_id} (profit_target) net {net:+.2f} at a limit of "
                      f"{value:.2f}")
        elif -net >= self.p.stop_loss * credit:
            self.close_lot(lot, "stop_loss")
        elif now - lot.entry_time >= dt.timedelta(minutes=self.p.max_hold_minutes):
            self.close_lot(lot, "time")
