"""IronCondor0DTE: sell 0DTE iron condors at fixed times when the market is neutral."""
from __future__ import annotations

import datetime as dt
import math

import backtrader as bt

from mtbt.exits import Lot
from mtbt.indicators import Confluence, Regime, RegimeState, SessionBars
from mtbt.options.structures import iron_condor
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
      wings ``wing_width`` further out. Contracts: as many as the risk budget
      (account x risk_per_trade_pct) covers at the condor's max loss, with the fees of
      opening and closing.
    - **Exits** on each bar's close, at the model's mid: ``profit_target`` when
      ``profit_target`` (25%) of the credit is captured, ``stop_loss`` when the loss reaches
      ``stop_loss`` (2x) the credit, ``time`` after ``max_hold_minutes`` (4 h), ``eod`` at the
      options force close (15:25; 0DTE), ``risk`` when a loss limit trips.
    - **Daily breakers**: no new condor after ``daily_profit_target`` ($250) realised on the
      day, or once the RiskManager's daily loss limit ($500) is reached.
    """

    params = (
        ("entry_times", (dt.time(9, 45), dt.time(11, 30), dt.time(13, 0), dt.time(14, 30))),
        ("wing_width", 5.0), ("profit_target", 0.25), ("stop_loss", 2.0),
        ("max_hold_minutes", 240), ("max_open", 2), ("daily_profit_target", 250.0),
        ("vix_min", 13.0), ("vix_max", 30.0), ("atr_min_pct", 0.5),
        ("trend_ema_4h", 6), ("trend_ema_1d", 10),
    )

    def __init__(self):
        super().__init__()
        p = self.p
        daily = SessionBars(self.data, timeframe="1d", atr_period=14, ema_period=p.trend_ema_1d)
        h4 = SessionBars(self.data, timeframe="4h", ema_period=p.trend_ema_4h)
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

    def choose_structure(self, signal, chain, budget: float):
        spot, move, step = chain.spot, chain.expected_move(), chain.model.strike_step
        put_short = chain.nearest_strike(spot - move)
        call_short = max(chain.nearest_strike(spot + move), put_short + step)
        condor = iron_condor(chain.expiry, put_short, call_short, self.p.wing_width)
        held = self.held_contracts()
        if any(held.get((leg.right, leg.strike, leg.expiry), 0) * leg.qty < 0
               for leg in condor.legs):
            self.note(f"SKIP iron condor {condor.label}: a leg is held the other way")
            return None
        premium, fees = condor.fill(chain), condor.fees(chain)
        per_contract = condor.max_loss(premium) * chain.model.multiplier + 2 * fees
        if not (premium < 0 and per_contract > 0):
            self.note(f"SKIP iron condor: no credit at these quotes ({premium:+.2f})")
            return None
        contracts = int(math.floor(budget / per_contract + 1e-9))
        why = (f"shorts {put_short:g}/{call_short:g} (expected move {move:.2f}), "
               f"credit {-premium:.2f}")
        return condor, contracts, contracts * per_contract, why

    def manage_lot(self, lot: Lot, close: float) -> None:
        credit = -lot.premium
        cost_to_close = -self.structure_mark(lot)
        now = self.data.datetime.datetime(0) + dt.timedelta(minutes=1)
        if credit - cost_to_close >= self.p.profit_target * credit:
            self.close_lot(lot, "profit_target")
        elif cost_to_close - credit >= self.p.stop_loss * credit:
            self.close_lot(lot, "stop_loss")
        elif now - lot.entry_time >= dt.timedelta(minutes=self.p.max_hold_minutes):
            self.close_lot(lot, "time")
