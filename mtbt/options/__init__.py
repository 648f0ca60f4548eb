"""The pure options layer: Black-Scholes pricing, a synthetic 0DTE chain, structures, the
strategy's exits on simulated paths and the allocator that picks a structure for a
directional signal by expected value. Nothing here imports backtrader.

Prices are per share (premium points); a contract is ``ChainModel.multiplier`` shares.
"""
from __future__ import annotations

from mtbt.options.allocator import Allocation, AllocatorSettings, Candidate, allocate
from mtbt.options.chain import (
    SESSION_MINUTES,
    TRADING_DAYS,
    ChainModel,
    SyntheticChain,
    years_to_close,
)
from mtbt.options.paths import ExitEvents, PathModel, exit_events, simulate
from mtbt.options.pricing import Greeks, bs_greeks, bs_price, intrinsic
from mtbt.options.structures import (
    Leg,
    Structure,
    call_butterfly,
    call_bwb,
    call_debit_spread,
    iron_condor,
    long_call,
    long_put,
    put_butterfly,
    put_bwb,
    put_debit_spread,
)

__all__ = [
    "SESSION_MINUTES", "TRADING_DAYS", "Allocation", "AllocatorSettings", "Candidate",
    "ChainModel", "ExitEvents", "Greeks", "Leg", "PathModel", "Structure", "SyntheticChain",
    "allocate", "bs_greeks", "bs_price", "call_butterfly", "call_bwb", "call_debit_spread",
    "exit_events", "intrinsic", "iron_condor", "long_call", "long_put", "put_butterfly",
    "put_bwb", "put_debit_spread", "simulate", "years_to_close",
]
