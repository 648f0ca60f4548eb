"""A local Alpaca paper-trading simulator: alpaca-py's real clients talk to it over
127.0.0.1 while it replays 1-minute bars (``mtbt paper --replay``, and the tests).

``Simulator(bars, start, ...)`` serves the trading REST API, the trade_updates stream, the
stock-bars REST API and the bar stream; ``step()``/``run()`` emit the bars and fill orders
the way mtbt's backtests do (:mod:`mtbt.fills`, the synthetic option chain). ``Faults``
injects errors, slowness, dropped streams and odd fill events.
"""
from __future__ import annotations

from mtbt.sim.faults import Faults
from mtbt.sim.simulator import Simulator

__all__ = ["Faults", "Simulator"]
