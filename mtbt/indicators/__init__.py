"""mtbt's backtrader indicators (all work in runonce and event modes alike)."""
from mtbt.indicators._base import Inputs
from mtbt.indicators.confluence import Confluence
from mtbt.indicators.regime import Regime, RegimeState, get_regime
from mtbt.indicators.renko import Renko
from mtbt.indicators.sessionbars import SessionBars, trend_bars
from mtbt.indicators.wave import Wave

__all__ = ["Confluence", "Inputs", "Regime", "RegimeState", "Renko", "SessionBars", "Wave",
           "get_regime", "trend_bars"]
