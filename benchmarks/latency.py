"""Latency of the paper trader: from a bar arriving on the bar stream to its order being sent.

Replays recorded days through ``mtbt paper --replay`` machinery (alpaca-py's real clients,
REST and both websockets on 127.0.0.1, the local simulator) and prints, over every order
sent on a live bar, p50/p99/max of the time from the bar's arrival (the stream handler) to
the start of the order's submit call; and, over every live bar, the time from its arrival
until the bar was fully handled (strategy, checkpoint, orders sent). Target: p99 < 5 ms.

Run from the repo root::

    python benchmarks/latency.py                       # real SPY days from ../shared/data
    python benchmarks/latency.py --bars BARS.parquet --vix VIX.parquet --days 2024-08-02
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import logging
import tempfile
from pathlib import Path

import mtbt  # noqa: F401  (first: applies the backtrader compatibility fixes)
from mtbt.config import load_run
from mtbt.live.replay import replay, replay_config
from mtbt.live.session import latency_ms

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DAYS = ("2024-08-02", "2025-01-02", "2025-03-10", "2025-03-04")   # days with many orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", default=str(SHARED / "spy_1m_2024-03-26_2025-04-02.parquet"))
    parser.add_argument("--vix", default=str(SHARED / "vix_1d_1990_2026.parquet"))
    parser.add_argument("--days", nargs="*", default=list(DAYS))
    parser.add_argument("--instrument", default="equity", choices=("equity", "options"))
    args = parser.parse_args()
    if not Path(args.bars).exists():
        raise SystemExit(f"{args.bars} not found: pass --bars and --vix")
    orders, bars = [], []
    logging.getLogger("alpaca").setLevel(logging.ERROR)
    for day in args.days:
        cfg = load_run(None, [f'strategy.instrument="{args.instrument}"'])
        cfg = replay_config(cfg, args.bars, dt.date.fromisoformat(day), args.vix)
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
            result = replay(cfg, log_dir=tmp)
        lat = result.summary["latency_ms"]
        print(f"{day}: {lat['bar_to_order']['n']} orders, bar->order p50 "
              f"{lat['bar_to_order']['p50']} ms p99 {lat['bar_to_order']['p99']} ms; "
              f"{lat['bar_handled']['n']} bars handled p50 {lat['bar_handled']['p50']} ms")
        orders += result.latency["bar_to_order"]
        bars += result.latency["bar_handled"]
    o, b = latency_ms(orders), latency_ms(bars)
    print(f"bar arrival -> order sent: n={o['n']} p50={o['p50']} ms p99={o['p99']} ms "
          f"max={o['max']} ms (target p99 < 5 ms)")
    print(f"bar arrival -> bar handled (strategy, checkpoint, orders sent): n={b['n']} "
          f"p50={b['p50']} ms p99={b['p99']} ms max={b['max']} ms")


if __name__ == "__main__":
    main()
