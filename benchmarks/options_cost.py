"""What options mode costs: the default run trading structures against the same run trading
shares, on the same bars, measured in one run.

Both are whole ``run_backtest`` calls (loading, the run, every report; no tearsheet, which
is the same fixed cost for both) with ``max_dd_action = "alert"``, so that both trade the
whole period (with the default pause they stop after a few trades and measure little but
the indicators). The options run pays for the allocator (a Monte Carlo of the exits per
signal), the structure marks on every bar a structure is open, and its payoff charts.
After one untimed warm-up of each, the runs are repeated ``--repeat`` times, interleaved;
the medians and ``ratio=`` (options seconds / shares seconds; target <= 1.5) are printed.
Run from the repo root::

    python benchmarks/options_cost.py --data BARS.parquet --vix VIX.parquet
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics
import tempfile
import time
from pathlib import Path

import mtbt  # first: applies the backtrader compatibility fixes
from feeds.loader import load_market_data


def quiet() -> contextlib.ExitStack:
    """Swallow what the runs print."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    logging.getLogger("mtbt").propagate = False
    return stack


def seconds(cfg, market) -> float:
    """One whole ``run_backtest`` on already-loaded bars, reports into a tempdir."""
    with tempfile.TemporaryDirectory(prefix="mtbt-bench-") as tmp, quiet():
        started = time.perf_counter()
        mtbt.run_backtest(cfg, out_dir=Path(tmp), tearsheet=False, market=market)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="1-minute bar parquet (default: the synthetic sample)")
    p.add_argument("--vix", help="daily VIX parquet (required with --data)")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    a = p.parse_args(argv)
    base = [f'data.{k}="{v}"' for k, v in (("bars", a.data), ("vix", a.vix)) if v]
    base.append('risk_management.max_dd_action="alert"')
    cfgs = {name: mtbt.load_run(None, [*base, f'strategy.instrument="{name}"'])
            for name in ("options", "equity")}
    market = load_market_data(cfgs["equity"].data)
    print(f"data: {market.label}, {len(market.bars)} bars")
    for cfg in cfgs.values():
        seconds(cfg, market)                       # untimed warm-up
    times: dict[str, list[float]] = {name: [] for name in cfgs}
    for _ in range(max(1, a.repeat)):
        for name, cfg in cfgs.items():
            times[name].append(seconds(cfg, market))
    for name, values in times.items():
        print(f"{name:8s} median {statistics.median(values):7.2f} s  runs "
              f"{' '.join(f'{t:.2f}' for t in values)}")
    ratio = statistics.median(times["options"]) / statistics.median(times["equity"])
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
