"""``mtbt validate``: run the validation windows and compare with the readiness report."""
from __future__ import annotations

import argparse
import sys

from mtbt.cli._common import add_force, add_no_tearsheet, add_out, clear_out
from mtbt.cli._console import print_table
from mtbt.errors import MtbtError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``validate`` command to the top-level parser."""
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
    add_out(val, "reports/validate-<timestamp>")
    add_force(val, "validate.md and run reports")
    val.add_argument("--strict", action="store_true",
                     help="exit 1 on a MISS in a pause row (the deployed breaker)")
    add_no_tearsheet(val, help="skip the HTML tearsheets")
    val.set_defaults(func=cmd_validate)


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
    clear_out(out, args.force, _validate_files)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in paths:
        print(f"validate: running {path}", file=sys.stderr)
        results += run_scenario(path, data_dir, out, tearsheet=not args.no_tearsheet)
    atomic_write(out / "validate.md", markdown(results, data_dir))
    print_table("mtbt validate", HEADER, rows(results), footnotes(results, data_dir))
    print(f"reports: {out}")
    missed = args.strict and any_miss(results, "pause")
    return 1 if any(r.error for r in results) or missed else 0


def _validate_files(out):
    """What ``validate`` writes in ``out``: validate.md and each run's report files."""
    from analyzers.report import report_files

    runs = [folder for folder in out.glob("*/*") if folder.is_dir()]
    return [p for p in [out / "validate.md"] if p.is_file()] + [
        p for folder in runs for p in report_files(folder)]
