"""Scaling of a sweep on Ray: the same sweep with 1 worker and with all cores, in one run.

The sweep is ``--combos`` combinations (default 4 per core) of the default run's exits
(``scaling_exits.tp1_pct`` x ``scaling_exits.stop_pct``) on the same bars, each one task of
:class:`mtbt.research.RayPool`. For each worker count a local Ray is started on that many
CPUs, every worker is warmed up (imports mtbt), and the time from the first task submitted
to the last result is measured; starting Ray is timed separately. The two settings are
measured ``--repeat`` times, interleaved, and the medians are compared; the mean seconds of
one backtest in each setting show whether concurrent backtests slow each other down (shared
or busy cores). The last line is ``speedup=...`` (target: at least 0.9 x the cores). Run
from the repo root::

    python benchmarks/sweep_scaling.py                      # embedded synthetic sample
    python benchmarks/sweep_scaling.py --data BARS.parquet --vix VIX.parquet --start D --end D
"""
from __future__ import annotations

import argparse
import itertools
import logging
import os
import statistics
import time

import mtbt  # noqa: F401  (applies the backtrader compatibility fixes)
from feeds.loader import load_market_data
from mtbt.config import load_run
from mtbt.research.pool import RayPool
from mtbt.research.tasks import Task, task_key

TP1 = (0.006, 0.007, 0.008, 0.009, 0.01, 0.011, 0.012, 0.013)
STOP = (0.004, 0.005, 0.006, 0.007, 0.008, 0.009)


def warm_up(task: Task, market) -> dict:
    """Import what a backtest needs and hold the worker a moment, so every worker gets one."""
    import mtbt.runner  # noqa: F401

    time.sleep(1.0)
    return {"metrics": {}}


def measure(workers: int, tasks: list[Task], market) -> tuple[float, float, float]:
    """(seconds to start Ray, seconds of the sweep, mean seconds of one backtest) with
    ``workers`` CPUs."""
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    try:
        with RayPool(workers=workers) as pool:
            warm = [Task(f"warm-{i}", "warm-up", {}, tasks[0].cfg) for i in range(workers)]
            pool.run(warm, market, fn=warm_up)
            ready = time.perf_counter()
            outcome = pool.run(tasks, market)
            done = time.perf_counter()
    finally:
        ray.shutdown()
    if outcome.failed:
        raise SystemExit(f"{len(outcome.failed)} task(s) failed: {outcome.failed[0]}")
    each = statistics.fmean(r["seconds"] for r in outcome.results.values())
    return ready - started, done - ready, each


def sweep(args: argparse.Namespace) -> tuple[list[Task], object]:
    """The sweep's tasks and the bars they share."""
    overrides = list(args.overrides)
    for key, value in (("bars", args.data), ("vix", args.vix)):
        if value:
            overrides.append(f'data.{key}="{value}"')
    overrides += [f"data.{k}={v}" for k, v in (("start", args.start), ("end", args.end)) if v]
    market = load_market_data(load_run(None, overrides).data)
    tasks = []
    for tp1, stop in list(itertools.product(TP1, STOP))[:args.combos]:
        cfg = load_run(None, [*overrides, f"scaling_exits.tp1_pct={tp1}",
                              f"scaling_exits.stop_pct={stop}"])
        tasks.append(Task(task_key(cfg, market), f"tp1 {tp1} stop {stop}", {}, cfg))
    return tasks, market


def main(argv: list[str] | None = None) -> None:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="1-minute bar parquet (default: the synthetic sample)")
    p.add_argument("--vix", help="daily VIX parquet (required with --data)")
    p.add_argument("--start", help="first session to trade (data.start)")
    p.add_argument("--end", help="last session (data.end)")
    p.add_argument("--combos", type=int, default=4 * cores, help="combinations (<= 48)")
    p.add_argument("--repeat", type=int, default=3, help="measurements of each (median)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="override a run-file key (repeatable)")
    args = p.parse_args(argv)
    tasks, market = sweep(args)
    print(f"sweep: {len(tasks)} combinations on {len(market.bars):,} bars "
          f"({'synthetic sample' if market.synthetic else market.label}), {cores} cores")
    walls: dict[int, list[float]] = {1: [], cores: []}
    for _ in range(args.repeat):
        for workers in walls:
            start, wall, each = measure(workers, tasks, market)
            walls[workers].append(wall)
            print(f"workers={workers}: {wall:.1f} s ({len(tasks) / wall:.2f} backtests/s, "
                  f"{each:.1f} s per backtest; starting Ray and warming up {start:.1f} s)")
    one, many = statistics.median(walls[1]), statistics.median(walls[cores])
    speedup = one / many
    print(f"median: 1 worker {one:.1f} s, {cores} workers {many:.1f} s")
    print(f"target: speedup >= {0.9 * cores:.2f} (0.9 x {cores} cores); "
          f"efficiency {speedup / cores:.0%}")
    print(f"speedup={speedup:.2f}")


if __name__ == "__main__":
    main()
