"""Throughput of mtbt against an empty backtrader strategy, measured in one run on the same bars.

Measures, on the same 1-minute bars (``load_market_data(cfg.data).bars``):

* ``mtbt``: wall time of the whole ``run_backtest`` call (data loading, the run of the
  default strategy and every report file), with the quantstats tearsheet and without it;
* ``empty``: ``class Empty(bt.Strategy): pass`` on backtrader's stock ``bt.feeds.PandasData``
  (OHLCV columns, tz removed), ``bt.Cerebro(stdstats=False)`` defaults: feed construction
  plus ``cerebro.run()``.

After one untimed warm-up run (first-call costs such as importing quantstats and building
matplotlib's font cache would otherwise land on the first measurement), each measurement is
repeated ``--repeat`` times, interleaved, and the median is reported, then the ratios of
bars/second (mtbt / empty); the last line is ``ratio=...``. Run from the repo root::

    python benchmarks/throughput.py                      # embedded synthetic sample
    python benchmarks/throughput.py --data BARS.parquet --vix VIX.parquet --repeat 1
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import backtrader as bt  # noqa: E402
import pandas as pd  # noqa: E402

import mtbt  # noqa: E402  (first: applies the backtrader compatibility fixes)
from feeds.loader import load_market_data  # noqa: E402
from mtbt.config import RunConfig  # noqa: E402


class Empty(bt.Strategy):
    pass


def time_mtbt(cfg: RunConfig, tearsheet: bool) -> float:
    """Seconds of one whole ``run_backtest`` call, its reports written into a tempdir."""
    with tempfile.TemporaryDirectory(prefix="mtbt-bench-") as tmp, quiet():
        started = time.perf_counter()
        mtbt.run_backtest(cfg, out_dir=Path(tmp), tearsheet=tearsheet)
        return time.perf_counter() - started


def time_empty(bars: pd.DataFrame) -> float:
    """Seconds of feed construction plus ``cerebro.run()`` of an empty strategy."""
    with quiet():
        started = time.perf_counter()
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=bars))
        cerebro.addstrategy(Empty)
        cerebro.run()
        return time.perf_counter() - started


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow warnings and anything printed (quantstats, matplotlib)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="1-minute bar parquet (default: the synthetic sample)")
    p.add_argument("--vix", help="daily VIX parquet (required with --data)")
    p.add_argument("--start", help="first session to trade (data.start)")
    p.add_argument("--end", help="last session (data.end)")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    a = p.parse_args(argv)
    overrides = [f'data.{k}="{v}"' for k, v in
                 (("bars", a.data), ("vix", a.vix), ("start", a.start), ("end", a.end)) if v]
    cfg = mtbt.load_run(None, overrides)

    market = load_market_data(cfg.data)
    n = len(market.bars)
    plain = market.bars[["open", "high", "low", "close", "volume"]]
    plain = plain.set_axis(plain.index.tz_localize(None))
    print(f"data: {market.label}, {n} bars, {plain.index[0]} to {plain.index[-1]}")

    runs: dict[str, Callable[[], float]] = {
        "mtbt+tearsheet": lambda: time_mtbt(cfg, True),
        "mtbt-no-tearsheet": lambda: time_mtbt(cfg, False),
        "empty-stock": lambda: time_empty(plain),
    }
    runs["mtbt+tearsheet"]()   # untimed warm-up: first-call imports, font cache, lazy setup
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(max(1, a.repeat)):
        for name, run in runs.items():
            times[name].append(run())
    rate = {k: n / statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:18s} {rate[k]:>10,.0f} bars/s  median {statistics.median(v):7.2f} s  "
              f"runs {' '.join(f'{t:.2f}' for t in v)}")
    print(f"ratio_no_tearsheet={rate['mtbt-no-tearsheet'] / rate['empty-stock']:.2f}")
    print(f"ratio={rate['mtbt+tearsheet'] / rate['empty-stock']:.2f}")


if __name__ == "__main__":
    main()
