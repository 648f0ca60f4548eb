"""A rich progress bar on stderr for the CLI commands (only when stderr is a terminal)."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator:
    """A rich progress bar on stderr when it is a terminal; yields the callback or None."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda phase, done, total: bar.update(task, description=phase, completed=done,
                                                    total=total or None)
