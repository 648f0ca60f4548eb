"""``mtbt data ...``: download real bars (subcommands are added here).

``mtbt data fetch`` is a thin wrapper over :func:`feeds.download.fetch_bars`; every problem a
user can fix comes back as a :class:`~mtbt.errors.MtbtError` (one line on stderr, exit 2).
"""
from __future__ import annotations

import argparse

from mtbt._progress import progress_bar
from mtbt.cli._common import add_out

_FETCH_EPILOG = """\
environment:
  POLYGON_API_KEY                     Polygon key (--source polygon)
  ALPACA_API_KEY, ALPACA_SECRET_KEY   Alpaca keys (--source alpaca)
  MTBT_POLYGON_URL                    Polygon base URL (default https://api.polygon.io)
  MTBT_ALPACA_DATA_URL                Alpaca data base URL (default https://data.alpaca.markets)

Long ranges are fetched in chunks (a month of minute bars, a year of hour bars, ten years of
day bars); finished chunks are kept in OUT.parts/, so rerunning the same command after a
failure or Ctrl-C fetches only the rest. 429/5xx answers, timeouts and dropped connections
are retried with backoff. Keys are never printed."""


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
        epilog=_FETCH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    fetch.add_argument("symbol", metavar="SYMBOL", help="ticker, e.g. SPY or I:VIX (Polygon)")
    # the dates to download, not the run file's data.start/data.end (no run is loaded here)
    fetch.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="first date")
    fetch.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="last date")
    fetch.add_argument("--timespan", choices=("minute", "hour", "day"), default="minute",
                       help="bar size (default: minute)")
    fetch.add_argument("--source", choices=("polygon", "alpaca"), default="polygon",
                       help="data provider (default: polygon)")
    add_out(fetch, "data/<SYMBOL>_<timespan>_<start>_<end>.parquet, ':' in the symbol "
                   "written as '_'", what="output parquet", metavar="FILE")
    fetch.add_argument("--extended", action="store_true",
                       help="keep pre- and post-market bars (minute, hour)")
    fetch.set_defaults(func=cmd_fetch)


def cmd_fetch(args: argparse.Namespace) -> int:
    """Run ``data fetch``: download, write, print one summary line; returns the exit code."""
    from feeds.download import fetch_bars

    with progress_bar(enabled=True) as progress:
        result = fetch_bars(args.symbol, args.start, args.end, timespan=args.timespan,
                            source=args.source, out=args.out, extended=args.extended,
                            progress=progress)
    reused = f", {result.reused} chunk(s) resumed" if result.reused else ""
    print(f"{result.path}: {result.bars:,} {args.timespan} bars of {args.symbol} from "
          f"{result.first.isoformat()} to {result.last.isoformat()} ({args.source}{reused})")
    return 0
