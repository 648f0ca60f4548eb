"""Latency of the paper trader: from a bar arriving on the bar stream to its order being sent.

Replays recorded days against the local Alpaca simulator (``mtbt.sim``), which runs in a
child process as Alpaca would run elsewhere, with the trader (``run_paper``: alpaca-py's
real clients, REST and both websockets on 127.0.0.1) in this one. Prints, over every order
sent on a live bar, p50/p99/max of the time from the bar's arrival (the stream handler) to
the start of the order's submit call, and, over every live bar, the time from its arrival
until it was fully handled (strategy, checkpoint, cancels and orders sent). Target: p99 of
bar -> order < 5 ms.

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
import multiprocessing as mp
import tempfile
from pathlib import Path

import mtbt  # noqa: F401  (first: applies the backtrader compatibility fixes)
from mtbt.alpaca.endpoints import Endpoints
from mtbt.alpaca.store import AlpacaStore
from mtbt.config import load_run
from mtbt.live.replay import replay_config, simulator
from mtbt.live.session import latency_ms, run_paper

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DAYS = ("2024-08-02", "2025-01-02", "2025-03-10", "2025-03-04")   # days with many orders


def serve(cfg, conn) -> None:
    """The child process: a simulator of the day, paced in lockstep until its last bar."""
    with simulator(cfg) as sim:
        conn.send((sim.keys, (sim.trading_url, sim.data_url, sim.trade_stream_url,
                              sim.data_stream_url)))
        sim.run()
        conn.recv()                      # stay up until the trader is done


def one_day(cfg) -> dict:
    parent, child = mp.Pipe()
    server = mp.get_context("spawn").Process(target=serve, args=(cfg, child), daemon=True)
    server.start()
    keys, urls = parent.recv()
    store = AlpacaStore(keys, Endpoints(*urls), ready_url=f"{urls[0]}/_sim/ready")
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        result = run_paper(cfg, store=store, log_dir=tmp, stall=2.0)
    parent.send("done")
    server.join(timeout=10)
    return result.latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", default=str(SHARED / "spy_1m_2024-03-26_2025-04-02.parquet"))
    parser.add_argument("--vix", default=str(SHARED / "vix_1d_1990_2026.parquet"))
    parser.add_argument("--days", nargs="*", default=list(DAYS))
    parser.add_argument("--instrument", default="equity", choices=("equity", "options"))
    args = parser.parse_args()
    if not Path(args.bars).exists():
        raise SystemExit(f"{args.bars} not found: pass --bars and --vix")
    logging.getLogger("alpaca").setLevel(logging.ERROR)
    orders, bars = [], []
    for day in args.days:
        cfg = load_run(None, [f'strategy.instrument="{args.instrument}"'])
        cfg = replay_config(cfg, args.bars, dt.date.fromisoformat(day), args.vix)
        latency = one_day(cfg)
        o = latency_ms([sec for _, sec in latency["bar_to_order"]])
        b = latency_ms(latency["bar_handled"])
        print(f"{day}: {o['n']} orders, bar -> order p50 {o['p50']} ms p99 {o['p99']} ms; "
              f"{b['n']} bars, handled p50 {b['p50']} ms p99 {b['p99']} ms")
        orders += latency["bar_to_order"]
        bars += latency["bar_handled"]
    o, b = latency_ms([sec for _, sec in orders]), latency_ms(bars)
    print(f"bar arrival -> order sent: n={o['n']} p50={o['p50']} ms p99={o['p99']} ms "
          f"max={o['max']} ms (target p99 < 5 ms)")
    entries = latency_ms([sec for role, sec in orders if role == "entry"])
    exits = latency_ms([sec for role, sec in orders if role != "entry"])
    print(f"  entries: n={entries['n']} p50={entries['p50']} ms p99={entries['p99']} ms; "
          f"exits: n={exits['n']} "
          f"p50={exits['p50']} ms p99={exits['p99']} ms")
    slowest = sorted(orders, key=lambda item: -item[1])[:5]
    print("  slowest: " + ", ".join(f"{role} {sec * 1000:.2f} ms" for role, sec in slowest))
    print(f"bar arrival -> bar handled (strategy, checkpoint, cancels, orders sent): "
          f"n={b['n']} p50={b['p50']} ms p99={b['p99']} ms max={b['max']} ms")


if __name__ == "__main__":
    main()
