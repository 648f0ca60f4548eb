"""The arguments several commands share, declared once here, and the run they load.

A command module calls ``add_run``, ``add_overrides``, ``add_data``, ``add_out`` ... in the
order its help lists them; the option names, metavars and destinations live only here (a
command may word a help text its own way). :func:`load` turns the run file, ``--set`` and the
data options into a checked :class:`~mtbt.config.RunConfig`.
"""
from __future__ import annotations

import argparse
import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

from mtbt.errors import ConfigError
from mtbt.research.metrics import CHOICES

RUN_HELP = "run file (default: built-in)"
OVERRIDE_HELP = "override a run-file key (repeatable)"

# option: (metavar, the run-file key it sets, JSON-quoted in the override, help)
DATA_OPTIONS = {
    "data": ("BARS.parquet", "data.bars", True, "1-minute bars (sets data.bars)"),
    "vix": ("VIX.parquet", "data.vix", True, "daily VIX closes (sets data.vix)"),
    "start": ("YYYY-MM-DD", "data.start", False, "first session to trade"),
    "end": ("YYYY-MM-DD", "data.end", False, "last session to trade"),
}

RAY_EPILOG = """\
Ray: without --address a local Ray is started on --workers CPUs (default: all cores) and
stopped at the end. --address HOST:6379 (or ray://HOST:10001, or "auto" on a cluster node)
runs on an existing cluster instead; every node needs mtbt installed (pip install
'mtbt[scale]', the same version). The bars are read once here and sent through Ray's object
store, so the data files are needed only on this machine."""


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help text whose prose paragraphs wrap to the terminal, while indented lines (examples
    and tables in an epilog) keep their own layout."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if any(line[:1].isspace() for line in lines):
                blocks.append("\n".join(indent + line for line in lines))
            else:
                blocks.append(textwrap.fill(" ".join(lines), width, initial_indent=indent,
                                            subsequent_indent=indent))
        return "\n\n".join(blocks)


def add_run(parser: argparse.ArgumentParser, help: str | None = RUN_HELP) -> None:
    """The optional RUN.toml positional (read by :func:`load`)."""
    parser.add_argument("run", nargs="?", metavar="RUN.toml", help=help)


def add_overrides(parser: argparse.ArgumentParser, help: str | None = OVERRIDE_HELP) -> None:
    """``--set SECTION.KEY=VALUE``, repeatable (read by :func:`load`)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help=help)


def add_data_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str,
                    help: str | None = None) -> None:
    """One of ``--data``, ``--vix``, ``--start``, ``--end``: :func:`load` sets its run-file key."""
    metavar, _, _, default_help = DATA_OPTIONS[name]
    parser.add_argument(f"--{name}", metavar=metavar,
                        help=default_help if help is None else help)


def add_data(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--vix``, ``--start`` and ``--end``."""
    for name in DATA_OPTIONS:
        add_data_option(parser, name)


def add_out(parser: argparse.ArgumentParser, default: str, what: str = "report folder",
            metavar: str = "DIR") -> None:
    """``--out``: where the command writes (``default`` says where without it); a folder
    (``metavar`` DIR) is checked at once (``out_folder``)."""
    parser.add_argument("--out", metavar=metavar, type=out_folder if metavar == "DIR" else str,
                        help=f"{what} (default: {default})")


def add_force(parser: argparse.ArgumentParser, what: str = "report files") -> None:
    """``--force``: write into a non-empty ``--out`` (see ``clear_out``)."""
    parser.add_argument("--force", action="store_true",
                        help=f"write into a non-empty --out, first removing the {what} of an "
                             "earlier run there (other files are kept)")


def clear_out(out: Path, force: bool, own: Callable[[Path], list[Path]]) -> None:
    """Refuse a non-empty ``out`` (an old report's files would mix with the new ones) unless
    ``force``, which first removes the files ``own(out)`` names (then any folder they
    leave empty)."""
    if not out.is_dir():
        return
    held = sorted(p.name for p in out.iterdir())
    if not held:
        return
    if not force:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise ConfigError(f"--out {out} is not empty ({shown}): choose a new folder, or add "
                          "--force to replace the report files in it")
    folders = set()
    for path in own(out):
        path.unlink()
        folders |= {p for p in path.parents if out in p.parents}
    for folder in sorted(folders, key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()


def out_folder(text: str) -> str:
    """``--out``: a folder that exists or can be made (checked before any work is done)."""
    path = Path(text).expanduser()
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "is a file" if part == path else f"is inside {part}, a file"
                raise argparse.ArgumentTypeError(f"{text} {where}, not a folder")
            if not os.access(part, os.W_OK | os.X_OK):
                raise argparse.ArgumentTypeError(f"{text}: {part} is not writable")
            break
    return text


def add_no_tearsheet(parser: argparse.ArgumentParser,
                     help: str = "skip the HTML tearsheet") -> None:
    parser.add_argument("--no-tearsheet", action="store_true", help=help)


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    parser.add_argument("--quiet", action="store_true", help=help)


def add_research(parser: argparse.ArgumentParser) -> None:
    """What ``sweep`` and ``walkforward`` share: the run, its grid, the metric and Ray."""
    add_run(parser)
    parser.add_argument("--grid", required=True, metavar="GRID.toml",
                        help="the values to try, e.g. [scaling_exits] tp1_pct = [0.008, 0.01]")
    add_overrides(parser)
    parser.add_argument("--metric", choices=CHOICES, default="total_pnl",
                        help="the figure that picks the best combination (default: total_pnl; "
                             "max_drawdown: the lowest)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="backtests at a time (default: all cores, or the cluster's CPUs)")
    parser.add_argument("--address", metavar="RAY_ADDRESS", help="an existing Ray cluster")
    add_out(parser, "<report.out_dir>/<command>-<run>-<timestamp>")
    add_quiet(parser)


def load(args: argparse.Namespace):
    """The run config with the data options turned into overrides (same checks as --set)."""
    from mtbt.config import load_run

    labels: dict[str, str] = {}
    overrides = list(args.overrides)
    for option, (_, key, quoted, _) in DATA_OPTIONS.items():
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
