"""``mtbt paper``: trade the run on an Alpaca paper account, or rehearse a recorded day.

A thin wrapper over :func:`mtbt.live.session.run_paper` and :func:`mtbt.live.replay.replay`;
problems a user can fix come back as :class:`~mtbt.errors.MtbtError` (one line, exit 2).
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import sys

from mtbt.cli._common import Formatter, add_data_option, add_overrides, add_run, load
from mtbt.errors import ConfigError

_EPILOG = """\
environment:
  ALPACA_API_KEY, ALPACA_SECRET_KEY   the paper account's keys (not needed with --replay)
  POLYGON_API_KEY                     daily VIX from Polygon when [data] vix is not set
  MTBT_ALPACA_TRADING_URL, MTBT_ALPACA_DATA_URL, MTBT_ALPACA_STREAM_URL,
  MTBT_ALPACA_DATA_STREAM_URL         endpoints (paper-api.alpaca.markets, Alpaca's data
                                      service or 127.0.0.1 only; anything else is refused)

The session ends after today's close, or on Ctrl-C / SIGTERM: working entries are
cancelled, open trades closed (unless --keep-positions), the session files written.
Run it again the same day and it resumes from the state file; a later day keeps the run's
counters from it (realised PnL, the drawdown breaker). Once the breaker has tripped
([risk_management] max_dd_action = "pause"), no session enters a trade until one runs with
--reset-breaker. Keys are never printed."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``paper`` command to the top-level parser."""
    paper = sub.add_parser(
        "paper", help="trade the run on an Alpaca paper account (or rehearse a day)",
        description="Trade RUN.toml on the Alpaca paper account for today's session: history "
                    "first, then live 1-minute bars, the same strategy, risk limits and exits "
                    "as a backtest. Files go to --log-dir (paper_trading_<SESSION>.log, "
                    "trades_, balance_progression_, session_summary_...). With --replay it "
                    "runs against a local Alpaca simulator fed by a recorded bar file, "
                    "without keys.",
        epilog=_EPILOG, formatter_class=Formatter)
    add_run(paper)
    add_overrides(paper)
    paper.add_argument("--dry-run", action="store_true",
                       help="do everything but send orders (they are logged as WOULD SEND)")
    paper.add_argument("--keep-positions", action="store_true",
                       help="on Ctrl-C/SIGTERM leave open trades (and their stops) working")
    paper.add_argument("--log-dir", default="logs/live_trading", metavar="DIR",
                       help="session files (default: logs/live_trading)")
    paper.add_argument("--state", metavar="FILE",
                       help="state file (default: <log-dir>/state.sqlite)")
    paper.add_argument("--reset-breaker", action="store_true",
                       help="clear a tripped drawdown breaker in the state file (the drawdown "
                            "then counts from today's equity), log it, and trade as usual")
    rehearse = paper.add_argument_group("rehearsal (local simulator, no keys)")
    rehearse.add_argument("--replay", metavar="BARS.parquet",
                          help="1-minute bars to replay: warm-up history, then the day")
    rehearse.add_argument("--day", metavar="YYYY-MM-DD",
                          help="the day to replay (default: the file's last session)")
    add_data_option(rehearse, "vix", help="daily VIX closes (data.vix)")
    rehearse.add_argument("--speed", type=_speed, default=0.0, metavar="N",
                          help="at most N times real time (default 0: as fast as the trader)")
    rehearse.add_argument("--fault", dest="faults", action="append", default=[],
                          metavar="KNOB=VALUE",
                          help="simulator fault, e.g. drop_streams_every=20, error_every=7, "
                               "duplicate_fills=true (repeatable)")
    paper.set_defaults(func=cmd_paper)


def _speed(text: str) -> float:
    """``--speed``: a multiple of real time, 0 (as fast as the trader) or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected 0 or more (0: as fast as the trader), "
                                         f"got {text}")
    return value


def cmd_paper(args: argparse.Namespace) -> int:
    import mtbt.compat

    cfg = load(args)
    mtbt.compat.apply()
    common = dict(dry_run=args.dry_run, keep_positions=args.keep_positions,
                  log_dir=args.log_dir, state_path=args.state,
                  reset_breaker=args.reset_breaker)
    if args.replay:
        from mtbt.live.replay import replay, replay_config

        try:
            day = dt.date.fromisoformat(args.day) if args.day else None
        except ValueError:
            raise ConfigError(f"--day {args.day}: not a date (YYYY-MM-DD)") from None
        cfg = replay_config(cfg, args.replay, day)
        result = replay(cfg, speed=args.speed, faults=_faults(args.faults), **common)
    else:
        if args.faults or args.day or args.speed:
            raise ConfigError("--day, --speed and --fault need --replay")
        from mtbt.live.session import run_paper

        result = run_paper(cfg, **common)
    s = result.summary
    print(f"session {result.session} ({result.stopped_by}): {s['trades']} trade(s), "
          f"pnl {s['total_pnl'] or 0:+,.2f}, orders sent {s['orders_sent']}, "
          f"open trades {s['open_trades']}", file=sys.stderr)
    print(f"files: {result.folder}/*_{result.session}.*", file=sys.stderr)
    return 0


def _faults(items: list[str]):
    """``Faults`` from KNOB=VALUE strings (names and values checked)."""
    import dataclasses

    from mtbt.sim import Faults

    types = {"float": float, "int": int, "bool": bool, "str": str}
    fields = {f.name: types[str(f.type)] for f in dataclasses.fields(Faults)}
    values = {}
    for item in items:
        name, _, raw = item.partition("=")
        if name not in fields:
            raise ConfigError(f"--fault {item}: unknown knob (one of {', '.join(fields)})")
        kind = fields[name]
        try:
            values[name] = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
        except ValueError:
            raise ConfigError(f"--fault {item}: {raw!r} is not a {kind.__name__}") from None
    return Faults(**values)
