"""The figures a research run keeps from each backtest, and which way each one is better."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

#: summary.json figures kept per backtest (a sweep.csv row, a walk-forward window).
METRICS = ("trades", "wins", "win_rate", "total_pnl", "max_drawdown", "sharpe", "sortino",
           "profit_factor", "avg_r", "final_equity")
#: The figures a combination can be chosen by (``--metric``).
CHOICES = ("total_pnl", "sharpe", "sortino", "profit_factor", "win_rate", "avg_r", "trades",
           "max_drawdown")
#: Figures where smaller is better (a drawdown is a positive dollar amount).
LOWER_IS_BETTER = frozenset({"max_drawdown"})


def pick(summary: Mapping) -> dict:
    """The :data:`METRICS` of a summary.json dict."""
    return {name: summary.get(name) for name in METRICS}


def score(value: float | None, metric: str) -> float:
    """``value`` turned so that higher is better; NaN when it is undefined (None)."""
    if value is None or not math.isfinite(value):
        return math.nan
    return -value if metric in LOWER_IS_BETTER else float(value)


def best(values: Sequence[float | None], metric: str) -> int | None:
    """Index of the best value (the first one on a tie), or None when none is defined."""
    scores = [score(v, metric) for v in values]
    defined = [i for i, s in enumerate(scores) if not math.isnan(s)]
    return max(defined, key=lambda i: (scores[i], -i)) if defined else None


def show(value: float | None, metric: str) -> str:
    """A metric written for people: dollars, a percentage, a count or a ratio."""
    if value is None or not math.isfinite(value):
        return "-"
    if metric in ("total_pnl", "max_drawdown", "final_equity"):
        return f"{'-' if value < 0 else ''}${abs(value):,.0f}"
    if metric == "win_rate":
        return f"{value:.0%}"
    if metric in ("trades", "wins"):
        return f"{value:.0f}"
    return f"{value:.2f}"
