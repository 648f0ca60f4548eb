"""allocator.csv: each options decision's predictions next to what happened.

One row per signal the allocator saw: what it picked (a structure, ``shares`` or ``skip``),
its predicted P(tp1), P(stop) (the underlying's odds under the exits, the same for every
candidate), the pick's EV, P(profit), worst-case loss and score; then the outcome from
trades.csv: whether the trade was entered, reached tp1, was stopped before it, its first
exit and its net PnL. Comparing the columns over a run says whether the model is honest.
"""
from __future__ import annotations

import pandas as pd

from analyzers.journal import iso_ny

ALLOCATOR_COLUMNS = ("time", "trade_id", "side", "underlying", "pick", "contracts", "ev",
                     "p_profit", "p_tp1", "p_stop", "worst_loss", "score", "sigma_per_min",
                     "drift_per_min", "why", "entered", "tp1_hit", "stopped", "first_exit",
                     "pnl")


def allocator_table(allocations: list[dict], trades: pd.DataFrame) -> pd.DataFrame:
    """The decisions joined with the trades they became (see the module docstring)."""
    if not allocations:
        return pd.DataFrame(columns=list(ALLOCATOR_COLUMNS))
    table = pd.DataFrame(allocations)
    table["time"] = table["time"].map(iso_ny)
    by_trade = trades.sort_values("exit_time").groupby("trade_id")
    outcome = pd.DataFrame({
        "tp1_hit": by_trade["exit_reason"].apply(lambda r: bool((r == "tp1").any())),
        "first_exit": by_trade["exit_reason"].first(),
        "pnl": by_trade["pnl"].sum().round(2),
    }) if len(trades) else pd.DataFrame(columns=["tp1_hit", "first_exit", "pnl"])
    table = table.join(outcome, on="trade_id")
    table["stopped"] = table["first_exit"] == "stop"
    after = ["tp1_hit", "stopped", "first_exit", "pnl"]
    table[after] = table[after].astype(object).where(table["entered"], None)
    table["trade_id"] = table["trade_id"].where(table["entered"]).astype("Int64")
    for col in ("ev", "p_profit", "p_tp1", "p_stop", "worst_loss", "score"):
        table[col] = pd.to_numeric(table[col]).round(4)
    return table[list(ALLOCATOR_COLUMNS)]


def allocator_counts(table: pd.DataFrame) -> dict:
    """Signals seen, structures picked (by name), signals traded as shares, skipped."""
    picks = table["pick"]
    named = picks[~picks.isin(["shares", "skip"])].str.split(" ").str[0]
    return {"signals": int(len(table)), "structures": {k: int(v) for k, v in
                                                       named.value_counts().sort_index().items()},
            "shares": int((picks == "shares").sum()), "skipped": int((picks == "skip").sum())}
