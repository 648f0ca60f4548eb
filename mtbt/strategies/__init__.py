"""Broker-agnostic strategies: they use only backtrader's strategy API (a test enforces it)."""
from mtbt.strategies.base import ManagedStrategy, Signal
from mtbt.strategies.wave_renko import WaveRenko

__all__ = ["ManagedStrategy", "Signal", "WaveRenko"]
