"""``mtbt backtest``: backtest a run file and write its reports."""
from __future__ import annotations

import argparse
from pathlib import Path

from analyzers.report import report_files
from mtbt._progress import progress_bar
from mtbt.cli._common import (
    add_data,
    add_force,
    add_no_tearsheet,
    add_out,
    add_overrides,
    add_quiet,
    add_run,
    clear_out,
    load,
)
from mtbt.cli._console import print_summary


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``backtest`` command to the top-level parser."""
    bt = sub.add_parser(
        "backtest", help="backtest a run file and write its reports",
        description="Backtest RUN.toml (default: the built-in default run, which equals "
                    "runs/default.toml) on 1-minute bars, then write trades.csv, equity.csv, "
                    "daily.csv, regime.csv, summary.json, run.log and tearsheet.html. "
                    "Without --data it runs on the embedded SYNTHETIC sample.")
    add_run(bt)
    add_data(bt)
    add_out(bt, "<report.out_dir>/<run>-<timestamp>")
    add_overrides(bt, help="override a run-file key (repeatable), e.g. "
                           "--set risk_management.max_positions=2")
    add_no_tearsheet(bt)
    add_force(bt)
    add_quiet(bt, help="no progress bar or summary table")
    bt.set_defaults(func=cmd_backtest)


def cmd_backtest(args: argparse.Namespace) -> int:
    import mtbt.compat
    from mtbt.runner import run_backtest

    cfg = load(args)
    if args.out:
        clear_out(Path(args.out), args.force, report_files)
    mtbt.compat.apply()
    tearsheet = False if args.no_tearsheet else None
    with progress_bar(enabled=not args.quiet) as progress:
        result = run_backtest(cfg, out_dir=args.out, tearsheet=tearsheet, progress=progress)
    if not args.quiet:
        print_summary(result)
    return 0

