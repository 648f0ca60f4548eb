"""backtrader analyzers and the report writers (trades.csv, equity, daily, regime, tearsheet)."""
from analyzers.equity import EquityCurve
from analyzers.journal import TRADE_COLUMNS, Journal
from analyzers.progress import Progress
from analyzers.regime import RegimeLog

__all__ = ["TRADE_COLUMNS", "EquityCurve", "Journal", "Progress", "RegimeLog"]
