"""Broker-agnostic strategies: they use only backtrader's strategy API (a test enforces it)."""
from mtbt.strategies.base import ManagedStrategy, Signal
from mtbt.strategies.iron_condor import IronCondor0DTE
from mtbt.strategies.wave_renko import WaveRenko

__all__ = ["IronCondor0DTE", "ManagedStrategy", "Signal", "WaveRenko"]
