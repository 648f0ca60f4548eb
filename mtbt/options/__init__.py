"""The pure options layer: Black-Scholes pricing, a synthetic 0DTE chain, structures and the
allocator that picks a structure for a directional signal. Nothing here imports backtrader.

Prices are per share (premium points); a contract is ``ChainModel.multiplier`` shares.
"""
from __future__ import annotations

from mtbt.options.allocator import Allocation, Candidate, allocate
from mtbt.options.chain import (
    SESSION_MINUTES,
    TRADING_DAYS,
    ChainModel,
    SyntheticChain,
    years_to_close,
)
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
    "SESSION_MINUTES", "TRADING_DAYS", "Allocation", "Candidate", "ChainModel", "Greeks", "Leg",
    "Structure", "SyntheticChain", "allocate", "bs_greeks", "bs_price", "call_butterfly",
    "call_bwb", "call_debit_spread", "intrinsic", "iron_condor", "long_call", "long_put",
    "put_butterfly", "put_bwb", "put_debit_spread", "years_to_close",
]
