"""``python -m mtbt``: a thin router over the library (parse, load the run, run, report)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mtbt._progress import progress_bar
from mtbt._version import __version__
from mtbt.errors import ConfigError, MtbtError

_DATA_OPTIONS = (("data", "data.bars", True), ("vix", "data.vix", True),
                 ("start", "data.start", False), ("end", "data.end", False))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtbt",
        description="Wave-Renko intraday system for SPY/QQQ on backtrader: backtests on "
                    "parquet bars (or the embedded synthetic sample) with quantstats reports.",
        epilog="Run 'mtbt COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"mtbt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    bt = sub.add_parser(
        "backtest", help="backtest a run file and write its reports",
        description="Backtest RUN.toml (default: the built-in default run, which equals "
                    "runs/default.toml) on 1-minute bars, then write trades.csv, equity.csv, "
                    "daily.csv, regime.csv, summary.json, run.log and tearsheet.html. "
                    "Without --data it runs on the embedded SYNTHETIC sample.")
    bt.add_argument("run", nargs="?", metavar="RUN.toml", help="run file (default: built-in)")
    bt.add_argument("--data", metavar="BARS.parquet", help="1-minute bars (sets data.bars)")
    bt.add_argument("--vix", metavar="VIX.parquet", help="daily VIX closes (sets data.vix)")
    bt.add_argument("--start", metavar="YYYY-MM-DD", help="first session to trade")
    bt.add_argument("--end", metavar="YYYY-MM-DD", help="last session to trade")
    bt.add_argument("--out", metavar="DIR",
                    help="report folder (default: <report.out_dir>/<run>-<timestamp>)")
    bt.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="SECTION.KEY=VALUE",
                    help="override a run-file key (repeatable), e.g. "
                         "--set risk_management.max_positions=2")
    bt.add_argument("--no-tearsheet", action="store_true", help="skip the HTML tearsheet")
    bt.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    bt.set_defaults(func=cmd_backtest)

    check = sub.add_parser("check", help="validate a run file and print it resolved",
                           description="Load RUN.toml with the same strict checks as a "
                                       "backtest and print the resolved config as JSON.")
    check.add_argument("run", nargs="?", metavar="RUN.toml")
    check.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="SECTION.KEY=VALUE")
    check.set_defaults(func=cmd_check)

    val = sub.add_parser(
        "validate", help="run the validation windows and compare with the report",
        description="Run each validation scenario (default: runs/validate_*.toml) on the data "
                    "it finds in --data-dir, twice: with the drawdown breaker pausing (as "
                    "deployed) and only alerting (max_dd_action pause | alert). Print our "
                    "trades, win rate, PnL, max drawdown, profit factor and breaker trips next "
                    "to the readiness report's, PASS or MISS per metric and run. Writes "
                    "validate.md and each run's reports (NAME/pause, NAME/alert). Exit code 0 "
                    "unless a run errored (--strict: also 1 on a MISS in a pause row).")
    val.add_argument("runs", nargs="*", metavar="RUN.toml", help="scenario files")
    val.add_argument("--data-dir", default="data", metavar="DIR",
                     help="where to look for bar and VIX files (default: data)")
    val.add_argument("--out", metavar="DIR",
                     help="report folder (default: reports/validate-<timestamp>)")
    val.add_argument("--strict", action="store_true",
                     help="exit 1 on a MISS in a pause row (the deployed breaker)")
    val.add_argument("--no-tearsheet", action="store_true", help="skip the HTML tearsheets")
    val.set_defaults(func=cmd_validate)

    from mtbt import _cli_data, _cli_paper
    _cli_data.register(sub)
    _cli_paper.register(sub)
    from mtbt import _cli_research
    _cli_research.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 a user error, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (MtbtError, OSError) as exc:    # OSError: e.g. a report folder that cannot be made
        print(f"mtbt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mtbt: interrupted", file=sys.stderr)
        return 130


def _load(args: argparse.Namespace):
    """The run config with the data options turned into overrides (same checks as --set)."""
    from mtbt.config import load_run

    labels: dict[str, str] = {}
    overrides = list(args.overrides)
    for option, key, quoted in _DATA_OPTIONS:
        value = getattr(args, option, None)
        if value is not None:
            override = f"{key}={json.dumps(value) if quoted else value}"
            labels[f"--set {override}:"] = f"--{option} {value}:"
            overrides.append(override)
    try:
        return load_run(args.run, overrides)
    except ConfigError as exc:
        text = str(exc)
        for raw, label in labels.items():
            text = text.replace(raw, label)
        raise ConfigError(text) from None


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args)
    print(json.dumps({"run_id": cfg.run_id, **cfg.as_dict()}, indent=2))
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    import mtbt.compat
    from mtbt.runner import run_backtest

    cfg = _load(args)
    mtbt.compat.apply()
    tearsheet = False if args.no_tearsheet else None
    with progress_bar(enabled=not args.quiet) as progress:
        result = run_backtest(cfg, out_dir=args.out, tearsheet=tearsheet, progress=progress)
    if not args.quiet:
        _print_summary(result)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    import datetime as dt
    from pathlib import Path

    from analyzers.report import atomic_write
    from mtbt.validate import any_miss, run_scenario
    from mtbt.validate_report import HEADER, footnotes, markdown, rows

    paths = [Path(p) for p in args.runs] or sorted(Path("runs").glob("validate_*.toml"))
    if not paths:
        raise MtbtError("no scenarios: name run files, or run from the project folder "
                        "(runs/validate_*.toml)")
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise MtbtError(f"--data-dir {data_dir}: no such folder")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("reports") / f"validate-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in paths:
        print(f"validate: running {path}", file=sys.stderr)
        results += run_scenario(path, data_dir, out, tearsheet=not args.no_tearsheet)
    atomic_write(out / "validate.md", markdown(results, data_dir))
    _print_table("mtbt validate", HEADER, rows(results), footnotes(results, data_dir))
    print(f"reports: {out}")
    missed = args.strict and any_miss(results, "pause")
    return 1 if any(r.error for r in results) or missed else 0


def _print_table(title: str, header, body, notes) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in header:
        table.add_column(name, overflow="fold")     # wrap a long file name, never cut it
    for row in body:
        table.add_row(*row)
    console = Console(width=160)
    console.print(table)
    for note in notes:
        console.print(f"- {note}")


def _print_summary(result) -> None:
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    console = Console()
    table = Table(title="mtbt backtest", show_header=False)
    if s["data"] == "synthetic":
        table.add_row("data", "[bold yellow]SYNTHETIC sample (not market data)[/]")
    else:
        table.add_row("data", s["data"])
    rows = [("period", f"{s['start'][:10]} to {s['end'][:10]}" if s["start"] else "-"),
            ("bars", f"{result.bars:,} in {result.seconds:.1f} s"),
            ("trades", f"{s['trades']} ({s['wins']} won, {s['win_rate']:.1%})"),
            ("total PnL", f"${s['total_pnl']:,.2f}"),
            ("max drawdown", f"${s['max_drawdown']:,.2f}"),
            ("sharpe", _num(s["sharpe"])), ("profit factor", _num(s["profit_factor"])),
            ("final equity", f"${s['final_equity']:,.2f}"),
            *_alert_rows(result.alerts, s),
            *_allocator_rows(s.get("allocator")),
            *_regime_rows(result.regimes),
            ("reports", str(result.out_dir))]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")


def _alert_rows(alerts: list, summary: dict) -> list[tuple[str, str]]:
    """The count of risk alerts, and the drawdown breaker's trips."""
    if not alerts:
        return []
    rows = [("risk alerts", f"{len(alerts)} (see run.log)")]
    trips = [(when, text) for when, text in alerts if text.startswith("max drawdown")]
    if summary.get("max_dd_action") == "alert" and trips:
        first = trips[0][0]
        rows.append(("breaker (alert)", f"tripped {len(trips)} time(s), first "
                                        f"{first:%Y-%m-%d %H:%M}; trading went on"))
    else:
        rows += [("trading paused", f"{when:%Y-%m-%d %H:%M}: {text}") for when, text in trips]
    return rows


def _allocator_rows(counts: dict | None) -> list[tuple[str, str]]:
    """How the options allocator decided the run's signals."""
    if not counts:
        return []
    picked = ", ".join(f"{name} {n}" for name, n in counts["structures"].items()) or "none"
    return [("options", f"{counts['signals']} signals: structures {picked}; as shares "
                        f"{counts['shares']}; skipped {counts['skipped']} (allocator.csv)")]


def _regime_rows(regimes: dict[str, int]) -> list[tuple[str, str]]:
    """Sessions per regime at the open (the volatility filter's pauses)."""
    if not regimes:
        return []
    return [("regime", ", ".join(f"{name} {n}" for name, n in regimes.items()) + " sessions")]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
