"""``mtbt check``: validate a run file and print it resolved."""
from __future__ import annotations

import argparse
import json

from mtbt.cli._common import add_overrides, add_run, load


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``check`` command to the top-level parser."""
    check = sub.add_parser("check", help="validate a run file and print it resolved",
                           description="Load RUN.toml with the same strict checks as a "
                                       "backtest and print the resolved config as JSON.")
    add_run(check)
    add_overrides(check)
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    cfg = load(args)
    print(json.dumps({"run_id": cfg.run_id, **cfg.as_dict()}, indent=2))
    return 0
