"""``mtbt walkforward``: choose parameters on rolling train windows, test on the next.

A thin wrapper over :func:`mtbt.research.walkforward.run_walkforward`; every problem a user
can fix comes back as a :class:`~mtbt.errors.MtbtError` (one line on stderr, exit 2). Exit
code 1 when a backtest failed (the others are reported).
"""
from __future__ import annotations

import argparse

from mtbt._progress import progress_bar
from mtbt.cli._common import RAY_EPILOG, Formatter, add_no_tearsheet, add_research
from mtbt.research.metrics import show


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``walkforward`` command to the top-level parser."""
    walk = sub.add_parser(
        "walkforward", help="choose parameters on rolling train windows, test on the next",
        description="Rolling windows of --train sessions followed by --test sessions: every "
                    "combination of GRID.toml is backtested on the train sessions, the best "
                    "by --metric is backtested on the test sessions, and the test windows "
                    "are stitched into one out-of-sample run (equity.csv, trades.csv, "
                    "summary.json, tearsheet.html) with walkforward.md, which shows in-sample "
                    "and out-of-sample figures side by side, and windows.csv.",
        epilog=RAY_EPILOG, formatter_class=Formatter)
    add_research(walk)
    walk.add_argument("--train", required=True, metavar="Nd",
                      help="train window in trading sessions, e.g. 60d")
    walk.add_argument("--test", required=True, metavar="Nd",
                      help="test window in trading sessions, e.g. 20d (also the step)")
    add_no_tearsheet(walk)
    walk.set_defaults(func=cmd_walkforward)


def cmd_walkforward(args: argparse.Namespace) -> int:
    """Run ``walkforward`` and print in-sample against out-of-sample per window."""
    from mtbt.research.walkforward import run_walkforward
    from mtbt.research.windows import parse_span

    train, test = parse_span(args.train, "--train"), parse_span(args.test, "--test")
    with progress_bar(enabled=not args.quiet) as progress:
        result = run_walkforward(args.run, args.grid, train=train, test=test,
                                 overrides=args.overrides, out=args.out, workers=args.workers,
                                 address=args.address, metric=args.metric,
                                 tearsheet=not args.no_tearsheet, progress=progress)
    for r in result.windows:
        w, ins, oos = r.window, r.in_sample or {}, r.out_of_sample or {}
        print(f"window {w.number}: test {w.test_first} to {w.test_last}, combination "
              f"{r.chosen.number if r.chosen else '-'}: in-sample "
              f"{show(ins.get('total_pnl'), 'total_pnl')}, out-of-sample "
              f"{show(oos.get('total_pnl'), 'total_pnl')}" + (f" ({r.note})" if r.note else ""))
    s = result.summary
    print(f"out-of-sample: {s['trades']} trades, total PnL {show(s['total_pnl'], 'total_pnl')},"
          f" max drawdown {show(s['max_drawdown'], 'max_drawdown')}, sharpe "
          f"{show(s['sharpe'], 'sharpe')}")
    print(f"report: {result.out / 'walkforward.md'}")
    return 1 if result.failed else 0
