"""mtbt: one wave-Renko trading system for backtests on parquet bars and Alpaca paper trading.

Importing mtbt applies its backtrader work-arounds (``mtbt.compat``) first.
"""

from mtbt import compat as _compat
from mtbt._version import __version__

_compat.apply()

from mtbt.config import RunConfig, load_run  # noqa: E402
from mtbt.errors import ConfigError, DataError, MtbtError  # noqa: E402
from mtbt.exits import ExitRules  # noqa: E402
from mtbt.indicators import (  # noqa: E402
    Confluence,
    Regime,
    RegimeState,
    Renko,
    SessionBars,
    Wave,
    get_regime,
)
from mtbt.risk import RiskManager, RiskSizer  # noqa: E402
from mtbt.strategies import ManagedStrategy, Signal, WaveRenko  # noqa: E402

__all__ = [
    "__version__", "ConfigError", "Confluence", "DataError", "ExitRules", "ManagedStrategy",
    "MtbtError", "Regime", "RegimeState", "Renko", "RiskManager", "RiskSizer", "RunConfig",
    "SessionBars", "Signal", "Wave", "WaveRenko", "build_cerebro", "get_regime", "load_run",
    "run_backtest",
]


def __getattr__(name: str):
    """``build_cerebro`` and ``run_backtest`` load on first use: the runner imports ``feeds``
    and ``analyzers``, which import parts of ``mtbt`` themselves."""
    if name in ("build_cerebro", "run_backtest"):
        from mtbt import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'mtbt' has no attribute {name!r}")
