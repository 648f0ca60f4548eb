"""``mtbt backtest``: backtest a run file and write its reports."""
from __future__ import annotations

import argparse
from pathlib import Path

from analyzers.report import report_files
from mtbt._progress import progress_bar
from mtbt.cli._common import (
    add_data,
    add_no_tearsheet,
    add_out,
    add_overrides,
    add_quiet,
    add_run,
    load,
)
from mtbt.cli._console import print_summary
from mtbt.errors import ConfigError


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
    bt.add_argument("--force", action="store_true",
                    help="write into a non-empty --out, first removing the report files of "
                         "an earlier run there (other files are kept)")
    add_quiet(bt, help="no progress bar or summary table")
    bt.set_defaults(func=cmd_backtest)


def cmd_backtest(args: argparse.Namespace) -> int:
    import mtbt.compat
    from mtbt.runner import run_backtest

    cfg = load(args)
    if args.out:
        _clear_out(Path(args.out), args.force)
    mtbt.compat.apply()
    tearsheet = False if args.no_tearsheet else None
    with progress_bar(enabled=not args.quiet) as progress:
        result = run_backtest(cfg, out_dir=args.out, tearsheet=tearsheet, progress=progress)
    if not args.quiet:
        print_summary(result)
    return 0


def _clear_out(out: Path, force: bool) -> None:
    """Refuse a non-empty ``--out`` (an old report's files would mix with the new ones)
    unless ``--force``, which removes the report files there first."""
    if not out.is_dir():
        return
    held = sorted(p.name for p in out.iterdir())
    if not held:
        return
    if not force:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise ConfigError(f"--out {out} is not empty ({shown}): choose a new folder, or add "
                          "--force to replace the report files in it")
    for path in report_files(out):
        path.unlink()
