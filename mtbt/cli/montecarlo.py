"""``mtbt montecarlo``: bootstrap a finished run's trades.

A thin wrapper over :mod:`mtbt.research.montecarlo`; every problem a user can fix comes back
as a :class:`~mtbt.errors.MtbtError` (one line on stderr, exit 2).
"""
from __future__ import annotations

import argparse

from mtbt.cli._common import add_out
from mtbt.research.metrics import show


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``montecarlo`` command to the top-level parser."""
    mc = sub.add_parser(
        "montecarlo", help="bootstrap a finished run's trades",
        description="Resample the trades of REPORT_DIR (trades.csv, grouped by trade_id) with "
                    "replacement and write the distributions of total PnL and max drawdown "
                    "and the chance of reaching the run's daily and total drawdown limits "
                    "(config.json) to montecarlo.md, montecarlo.json and montecarlo.png.")
    mc.add_argument("report", metavar="REPORT_DIR", help="a backtest's or walk-forward's folder")
    mc.add_argument("--n", type=int, default=10_000, help="paths (default: 10000)")
    mc.add_argument("--seed", type=_seed, help="random seed, 0 or more (default: a new one, "
                                                "recorded)")
    add_out(mc, "REPORT_DIR", what="where to write")
    mc.set_defaults(func=cmd_montecarlo)


def _seed(text: str) -> int:
    """``--seed``: numpy's generators take a non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def cmd_montecarlo(args: argparse.Namespace) -> int:
    """Run ``montecarlo`` and print the headline figures."""
    from pathlib import Path

    from mtbt.research.montecarlo import bootstrap, new_seed, read_run
    from mtbt.research.montecarlo_report import write_report

    run = read_run(args.report)
    seed = new_seed() if args.seed is None else args.seed
    paths = bootstrap(run, args.n, seed)
    f = write_report(Path(args.out or args.report), run, paths, args.n, seed)
    pnl, dd = f["total_pnl"], f["max_drawdown"]
    print(f"montecarlo: {args.n:,} paths (seed {seed}) of {f['trades']} trades: total PnL "
          f"median {show(pnl['p50'], 'total_pnl')} (5%-95%: {show(pnl['p5'], 'total_pnl')} to "
          f"{show(pnl['p95'], 'total_pnl')}), max drawdown median "
          f"{show(dd['p50'], 'max_drawdown')} (95%: {show(dd['p95'], 'max_drawdown')}); "
          f"daily limit hit {f['p_daily_limit']:.1%}, total limit hit {f['p_total_limit']:.1%}")
    print(f"report: {Path(args.out or args.report) / 'montecarlo.md'}")
    return 0
