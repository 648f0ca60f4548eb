"""The one place that calls quantstats: an HTML tearsheet with a local benchmark.

quantstats downloads a benchmark given as a ticker and opens a browser without ``output=``;
here the benchmark is always a Series built from the run's own bars and ``output`` is always
set. matplotlib must not need a display (``MPLBACKEND=Agg`` is set if nothing is).
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import pandas as pd


def buy_and_hold(closes: pd.Series, index: pd.DatetimeIndex) -> pd.Series:
    """Daily close-to-close returns of the underlying on exactly ``index`` (naive dates)."""
    daily = closes.groupby(closes.index.tz_localize(None).normalize()).last()
    return daily.pct_change().reindex(index).fillna(0.0)


def write_tearsheet(returns: pd.Series, benchmark: pd.Series, path: Path, *, title: str,
                    benchmark_title: str) -> Path:
    """Write quantstats' full HTML report of daily decimal ``returns`` against ``benchmark``."""
    if len(returns) and returns.abs().max() >= 1.0:
        raise ValueError("tearsheet returns must be decimals (0.01 = 1%), got a value >= 1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import quantstats as qs

    strategy = returns.copy()
    strategy.index = pd.DatetimeIndex(strategy.index).tz_localize(None)
    bench = benchmark.reindex(returns.index).fillna(0.0).rename(benchmark_title)
    bench.index = strategy.index
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # quantstats' pandas/numpy deprecation noise
        qs.reports.html(strategy, benchmark=bench, output=str(path), title=title,
                        benchmark_title=benchmark_title, periods_per_year=252,
                        download_filename=Path(path).name)
    return path
