"""``mtbt data ...``: download real bars (subcommands are added here).

``mtbt data fetch`` is a thin wrapper over :func:`feeds.download.fetch_bars`, and with
``--options`` over :func:`feeds.options_fetch.fetch_option_bars`; every problem a user can
fix comes back as a :class:`~mtbt.errors.MtbtError` (one line on stderr, exit 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtbt._progress import progress_bar
from mtbt.cli._common import Formatter, add_out
from mtbt.errors import MtbtError

_FETCH_EPILOG = """\
environment:
  POLYGON_API_KEY                     Polygon key (--source polygon)
  ALPACA_API_KEY, ALPACA_SECRET_KEY   Alpaca keys (--source alpaca)
  MTBT_POLYGON_URL                    Polygon base URL (default https://api.polygon.io)
  MTBT_ALPACA_DATA_URL                Alpaca data base URL (default https://data.alpaca.markets)
  MTBT_ALPACA_TRADING_URL             Alpaca trading base URL, where --options lists the
                                      contracts (default https://paper-api.alpaca.markets)

Long ranges are fetched in chunks (a month of minute bars, a year of hour bars, ten years of
day bars); finished chunks are kept in OUT.parts/, so rerunning the same command after a
failure or Ctrl-C fetches only the rest. 429/5xx answers, timeouts and dropped connections
are retried with backoff. Keys are never printed.

--options: for each session, the contracts expiring within --dte sessions whose strikes lie
within --moneyness of the underlying's open, and their 1-minute bars (OHLCV, vwap, trade
count), one file per session: OUT/SYMBOL/YYYY-MM-DD.parquet (OUT default data/options).
A session already in the store is skipped, so a rerun fetches only the rest; a session with
no bars leaves no file. Progress goes to stderr, one line per session. Alpaca's option
history starts in February 2024.

  mtbt data fetch SPY --options --start 2024-03-01 --end 2024-03-28 --dte 0 --moneyness 0.03"""

_OPTIONS_ONLY = ("dte", "moneyness")
_BARS_ONLY = ("timespan", "extended")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its subcommands to the top-level parser."""
    data = sub.add_parser("data", help="download real bars into parquet files",
                          description="Data tools: fetch bars from Polygon or Alpaca.")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    fetch = data_sub.add_parser(
        "fetch", help="download bars of one symbol into a parquet file",
        description="Download SYMBOL's bars from --start to --end (inclusive) into a parquet\n"
                    "file that follows the bar contract (timestamp = bar start, New York\n"
                    "time). Minute and hour bars keep the regular session only unless\n"
                    "--extended; day bars are stamped with the trading date at 00:00 New York.",
        epilog=_FETCH_EPILOG, formatter_class=Formatter)
    fetch.add_argument("symbol", metavar="SYMBOL", help="ticker, e.g. SPY or I:VIX (Polygon)")
    # the dates to download, not the run file's data.start/data.end (no run is loaded here)
    fetch.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="first date")
    fetch.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="last date")
    fetch.add_argument("--timespan", choices=("minute", "hour", "day"),
                       help="bar size (default: minute)")
    fetch.add_argument("--source", choices=("polygon", "alpaca"), default="polygon",
                       help="data provider (default: polygon)")
    add_out(fetch, "data/<SYMBOL>_<timespan>_<start>_<end>.parquet, ':' in the symbol "
                   "written as '_'; with --options the store folder data/options",
            what="output parquet (with --options: the options store's folder)",
            metavar="FILE|DIR")
    fetch.add_argument("--extended", action="store_true",
                       help="keep pre- and post-market bars (minute, hour)")
    options = fetch.add_argument_group("options (--options)")
    options.add_argument("--options", action="store_true",
                         help="fetch SYMBOL's option minute bars into the options store")
    options.add_argument("--dte", type=int, metavar="N",
                         help="expiries from each session to N sessions after it "
                              "(default: 0, the session's own expiry)")
    options.add_argument("--moneyness", type=float, metavar="F",
                         help="strikes within ±F of the session's open (default: 0.03)")
    fetch.set_defaults(func=cmd_fetch)


def cmd_fetch(args: argparse.Namespace) -> int:
    """Run ``data fetch``: download, write, print one summary line; returns the exit code."""
    if args.options:
        return _fetch_options(args)
    given = [f"--{name}" for name in _OPTIONS_ONLY if getattr(args, name) is not None]
    if given:
        raise MtbtError(f"{' and '.join(given)} select option contracts: add --options")
    if args.out and Path(args.out).is_dir():
        raise MtbtError(f"--out {args.out} is a folder: name the parquet file to write "
                        "(a folder is for --options)")
    from feeds.download import fetch_bars

    timespan = args.timespan or "minute"
    with progress_bar(enabled=True) as progress:
        result = fetch_bars(args.symbol, args.start, args.end, timespan=timespan,
                            source=args.source, out=args.out, extended=args.extended,
                            progress=progress)
    reused = f", {result.reused} chunk(s) resumed" if result.reused else ""
    print(f"{result.path}: {result.bars:,} {timespan} bars of {args.symbol} from "
          f"{result.first.isoformat()} to {result.last.isoformat()} ({args.source}{reused})")
    return 0


def _fetch_options(args: argparse.Namespace) -> int:
    """``data fetch --options``: one progress line per session on stderr, a summary on stdout."""
    given = [f"--{name}" for name in _BARS_ONLY
             if getattr(args, name) not in (None, False, "minute")]
    if given:
        raise MtbtError(f"{' and '.join(given)} apply to bar files, not to --options "
                        "(option bars are always 1-minute, regular session)")
    from feeds.options_fetch import fetch_option_bars

    result = fetch_option_bars(
        args.symbol, args.start, args.end, source=args.source, out=args.out,
        dte=0 if args.dte is None else args.dte,
        moneyness=0.03 if args.moneyness is None else args.moneyness,
        report=lambda line: print(line, file=sys.stderr, flush=True))
    written, skipped, empty = (result.count(s) for s in ("written", "skipped", "empty"))
    print(f"{result.folder}: {written} session(s) written ({result.bars:,} bars of "
          f"{result.contracts:,} contracts), {skipped} already there, {empty} without bars "
          f"({args.source})")
    return 0
