"""``python -m mtbt``: a thin router over the library (parse, load the run, run, report).

One module per command, each with ``register(sub)`` and its ``cmd_*``: :mod:`.backtest`,
:mod:`.check`, :mod:`.validate`, :mod:`.data`, :mod:`.options`, :mod:`.paper`,
:mod:`.dashboard`, :mod:`.sweep`, :mod:`.walkforward`, :mod:`.montecarlo`. The arguments
several commands share (RUN.toml, ``--set``, ``--data/--vix/--start/--end``, ``--out``,
...) are declared once in :mod:`._common`, which also loads the run; the console tables are
in :mod:`._console`. No command module imports this one. Heavy imports stay inside the
``cmd_*`` functions, so ``--help`` stays quick.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mtbt._version import __version__
from mtbt.cli import (
    backtest,
    check,
    compare,
    dashboard,
    data,
    montecarlo,
    options,
    paper,
    sweep,
    validate,
    walkforward,
)
from mtbt.errors import MtbtError

# in the order the top-level help lists them
COMMANDS = (backtest, check, validate, data, options, paper, dashboard, compare, sweep,
            walkforward, montecarlo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtbt",
        description="Wave-Renko intraday system for SPY/QQQ on backtrader: backtests on "
                    "parquet bars (or the embedded synthetic sample) with quantstats reports.",
        epilog="Run 'mtbt COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"mtbt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 a user error, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MtbtError as exc:
        print(f"mtbt: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:           # e.g. a disk that filled up, a folder made read-only
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mtbt: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mtbt: interrupted", file=sys.stderr)
        return 130
