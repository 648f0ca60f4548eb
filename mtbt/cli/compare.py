"""``mtbt compare``: paper days against backtests of the bars they traded on.

A thin wrapper over :func:`mtbt.live.compare.compare`; every problem a user can fix comes
back as a :class:`~mtbt.errors.MtbtError` (one line on stderr, exit 2).
"""
from __future__ import annotations

import argparse

from mtbt.cli._common import Formatter, add_out

_EPILOG = """\
Each day's last session recorded the bars it traded on (bars_<SESSION>.parquet: warm-up
history and the day), the VIX closes and its resolved run (run_<SESSION>.toml); the backtest
reruns exactly those, trading only that day. A session from before mtbt recorded its bars
cannot be compared (one line names its file, exit 2).

Verdicts per figure: MATCH (within the tolerance), DIFFERS, or TOO FEW TRADES where one
trade alone moves the figure by more than the tolerance (a 10% band on 2 trades is noise);
the per-trade table is then what to read."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` command to the top-level parser."""
    cmp = sub.add_parser(
        "compare", help="paper days against backtests of exactly the bars they traded on",
        description="For the last N trading days of the paper sessions in LOG_DIR, backtest "
                    "each day's recorded bars with the session's run file and print, per "
                    "trade, the entry and exit time and price differences (slippage in $ "
                    "and bps, and its PnL effect), missed trades (backtest only) and extra "
                    "ones (paper only); then win rate, average PnL per trade and signals "
                    "per week side by side with a verdict. Writes compare.md, compare.csv "
                    "and each day's backtest (backtest_<DAY>/).",
        epilog=_EPILOG, formatter_class=Formatter)
    cmp.add_argument("log_dir", metavar="LOG_DIR", help="the paper sessions' folder "
                                                         "(paper --log-dir)")
    cmp.add_argument("--days", type=_days, default=10, metavar="N",
                     help="the last N trading days (default: 10, the readiness report's "
                          "paper phase; 0: all)")
    cmp.add_argument("--tolerance", type=_tolerance, metavar="T",
                     help="relative tolerance of the verdicts, e.g. 0.1 or 10%% (default: "
                          "the last session's run file's [benchmark] tolerance, 10%% unless "
                          "it sets one)")
    add_out(cmp, "LOG_DIR", what="where compare.md, compare.csv and the backtests go")
    cmp.set_defaults(func=cmd_compare)


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (all) or more, got {value}")
    return value


def _tolerance(text: str) -> float:
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction or a percent, got {text!r}") \
            from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected 0 to 1 (0%% to 100%%), got {text}")
    return value


def cmd_compare(args: argparse.Namespace) -> int:
    """Run ``compare``, print its text and where it went."""
    import mtbt.compat
    from mtbt.live.compare import compare

    mtbt.compat.apply()
    result = compare(args.log_dir, days=args.days or None, out=args.out,
                     tolerance=args.tolerance)
    print("\n".join(line for line in result.text if line.strip() not in ("```",)))
    print("report: " + ", ".join(str(p) for p in result.files))
    return 0
