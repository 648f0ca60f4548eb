"""``mtbt sweep``, ``mtbt walkforward`` and ``mtbt montecarlo``: research over many backtests.

Thin wrappers over :mod:`mtbt.research`; every problem a user can fix comes back as a
:class:`~mtbt.errors.MtbtError` (one line on stderr, exit 2). Exit code 1 when a backtest of
a sweep or walk-forward failed (the others are reported).
"""
from __future__ import annotations

import argparse

from mtbt.research.metrics import CHOICES, show

_RAY_EPILOG = """\
Ray: without --address a local Ray is started on --workers CPUs (default: all cores) and
stopped at the end. --address HOST:6379 (or ray://HOST:10001, or "auto" on a cluster node)
runs on an existing cluster instead; every node needs mtbt installed (pip install
'mtbt[scale]', the same version). The bars are read once here and sent through Ray's object
store, so the data files are needed only on this machine."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sweep``, ``walkforward`` and ``montecarlo`` to the top-level parser."""
    sweep = sub.add_parser(
        "sweep", help="backtest every combination of a parameter grid on Ray",
        description="Backtest RUN.toml with every combination of the values in GRID.toml (the "
                    "run file's sections, a list of values per key) and write sweep.csv (one "
                    "row per combination) and heatmap.html. Every combination is checked "
                    "before anything runs. Finished results are kept in OUT/results.jsonl: "
                    "rerunning with the same --out runs only the rest.",
        epilog=_RAY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(sweep)
    sweep.add_argument("--axes", metavar="KEY[,KEY]",
                       help="the heatmap's x and y keys, e.g. scaling_exits.tp1_pct,"
                            "scaling_exits.stop_pct (default: the first two swept keys)")
    sweep.set_defaults(func=cmd_sweep)

    walk = sub.add_parser(
        "walkforward", help="choose parameters on rolling train windows, test on the next",
        description="Rolling windows of --train sessions followed by --test sessions: every "
                    "combination of GRID.toml is backtested on the train sessions, the best "
                    "by --metric is backtested on the test sessions, and the test windows "
                    "are stitched into one out-of-sample run (equity.csv, trades.csv, "
                    "summary.json, tearsheet.html) with walkforward.md, which shows in-sample "
                    "and out-of-sample figures side by side, and windows.csv.",
        epilog=_RAY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(walk)
    walk.add_argument("--train", required=True, metavar="Nd",
                      help="train window in trading sessions, e.g. 60d")
    walk.add_argument("--test", required=True, metavar="Nd",
                      help="test window in trading sessions, e.g. 20d (also the step)")
    walk.add_argument("--no-tearsheet", action="store_true", help="skip the HTML tearsheet")
    walk.set_defaults(func=cmd_walkforward)

    mc = sub.add_parser(
        "montecarlo", help="bootstrap a finished run's trades",
        description="Resample the trades of REPORT_DIR (trades.csv, grouped by trade_id) with "
                    "replacement and write the distributions of total PnL and max drawdown "
                    "and the chance of reaching the run's daily and total drawdown limits "
                    "(config.json) to montecarlo.md, montecarlo.json and montecarlo.png.")
    mc.add_argument("report", metavar="REPORT_DIR", help="a backtest's or walk-forward's folder")
    mc.add_argument("--n", type=int, default=10_000, help="paths (default: 10000)")
    mc.add_argument("--seed", type=int, help="random seed (default: a new one, recorded)")
    mc.add_argument("--out", metavar="DIR", help="where to write (default: REPORT_DIR)")
    mc.set_defaults(func=cmd_montecarlo)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", nargs="?", metavar="RUN.toml", help="run file (default: built-in)")
    p.add_argument("--grid", required=True, metavar="GRID.toml",
                   help="the values to try, e.g. [scaling_exits] tp1_pct = [0.008, 0.01]")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="override a run-file key (repeatable)")
    p.add_argument("--metric", choices=CHOICES, default="total_pnl",
                   help="the figure that picks the best combination (default: total_pnl; "
                        "max_drawdown: the lowest)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="backtests at a time (default: all cores, or the cluster's CPUs)")
    p.add_argument("--address", metavar="RAY_ADDRESS", help="an existing Ray cluster")
    p.add_argument("--out", metavar="DIR",
                   help="report folder (default: <report.out_dir>/<command>-<run>-<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``sweep``: the sweep, then the best combination and where the files are."""
    from mtbt._progress import progress_bar
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


def cmd_walkforward(args: argparse.Namespace) -> int:
    """Run ``walkforward`` and print in-sample against out-of-sample per window."""
    from mtbt._progress import progress_bar
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
