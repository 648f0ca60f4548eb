"""``mtbt sweep``: backtest every combination of a parameter grid on Ray.

A thin wrapper over :func:`mtbt.research.sweep.run_sweep`; every problem a user can fix comes
back as a :class:`~mtbt.errors.MtbtError` (one line on stderr, exit 2). Exit code 1 when a
combination's backtest failed (the others are reported).
"""
from __future__ import annotations

import argparse

from mtbt._progress import progress_bar
from mtbt.cli._common import RAY_EPILOG, Formatter, add_research
from mtbt.research.metrics import show


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` command to the top-level parser."""
    sweep = sub.add_parser(
        "sweep", help="backtest every combination of a parameter grid on Ray",
        description="Backtest RUN.toml with every combination of the values in GRID.toml (the "
                    "run file's sections, a list of values per key) and write sweep.csv (one "
                    "row per combination) and heatmap.html. Every combination is checked "
                    "before anything runs. Finished results are kept in OUT/results.jsonl: "
                    "rerunning with the same --out runs only the rest.",
        epilog=RAY_EPILOG, formatter_class=Formatter)
    add_research(sweep)
    sweep.add_argument("--axes", metavar="KEY[,KEY]",
                       help="the heatmap's x and y keys, e.g. scaling_exits.tp1_pct,"
                            "scaling_exits.stop_pct (default: the first two swept keys)")
    sweep.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``sweep``: the sweep, then the best combination and where the files are."""
    from mtbt.research.sweep import run_sweep

    with progress_bar(enabled=not args.quiet) as progress:
        result = run_sweep(args.run, args.grid, overrides=args.overrides, out=args.out,
                           workers=args.workers, address=args.address, metric=args.metric,
                           axes=args.axes, progress=progress)
    o = result.outcome
    print(f"sweep: {len(result.table)} combinations ({o.ran} run now, {o.skipped} already "
          f"done, {len(o.failed)} failed)")
    if result.best:
        b, columns = result.best, list(result.table.columns)
        params = ", ".join(f"{k}={b[k]}" for k in columns[1:columns.index("trades")])
        print(f"best by {args.metric}: combination {b['combination']} ({params}): "
              + ", ".join(f"{m} {show(b[m], m)}" for m in
                          ("total_pnl", "trades", "win_rate", "max_drawdown", "sharpe",
                           "profit_factor")))
    print(f"sweep.csv: {result.out / 'sweep.csv'}")
    if result.heatmap:
        print(f"heatmap: {result.heatmap}")
    return 1 if o.failed else 0
