"""The slow reports of a backtest, written by a process forked when the run starts: the
payoff chart of each structure type as soon as the run first trades it (the backtest runs on
one core, this process on another), then, once the run is over, the tearsheet, while the
run's own process writes the other reports and then draws some of the tearsheet's charts
(``draw_charts``). Where forking is unsafe (other threads running, a daemonic pool worker)
or unavailable, the same reports are written in the run's process at its end."""
from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from analyzers.payoff import payoff_chart
from analyzers.tearsheet import draw_charts, quantstats, tearsheet_result, write_tearsheet

log = logging.getLogger("mtbt")

# each payoff chart, until the run has ended well (then renamed to payoff_<type>.png)
PAYOFF_PART = ".payoff_{}.png.part"
TEARSHEET_PART = ".tearsheet.html.part"


class ReportProcess:
    """Writes the payoff charts (``payoff``, during the run) and the tearsheet (``finish``,
    after it) into ``out``. ``model``: the run's option chain model (for the payoff charts).
    """

    def __init__(self, out: Path, model, *, tearsheet: bool):
        self.out, self.model, self.tearsheet = out, model, tearsheet
        self.payoffs: dict[str, dict] = {}
        self.conn: Connection | None = None
        self.child = None
        self.fork_tried = False   # once: a payoff kept here is never sent to a later process
        if tearsheet:
            self._fork()

    def _fork(self) -> None:
        """The process, once (none where forking is unsafe or unavailable)."""
        if self.fork_tried:
            return
        self.fork_tried = True
        if not _can_fork():
            return
        context = mp.get_context("fork")
        self.conn, theirs = context.Pipe()
        self.child = context.Process(target=_serve, args=(theirs, self.out, self.model,
                                                          self.tearsheet),
                                     daemon=True, name="mtbt-reports")
        gc.freeze()          # the child's collections leave this process's objects alone
        self.child.start()   # (fewer pages copied on write)
        gc.unfreeze()
        theirs.close()

    def payoff(self, name: str, fields: dict) -> None:
        """The run's first structure of type ``name`` (the journal's record of it)."""
        self.payoffs[name] = fields
        self._fork()
        if self.conn is not None:
            self.conn.send(("payoff", name, fields))

    def finish(self, tearsheet: dict | None) -> Callable[[], list[str]]:
        """Start the tearsheet (``tearsheet``: ``write_tearsheet``'s arguments, None for
        none) and name the payoff charts; the call returned (made after the other reports)
        draws charts for the tearsheet, waits, and gives notes for the user."""
        if self.conn is None:
            notes = _reports(self.out, self.model, self.payoffs, tearsheet, helper=None)
            return lambda: notes
        self.conn.send(("finish", tearsheet))

        def wait() -> list[str]:
            try:
                notes = draw_charts(self.conn)
            except EOFError:            # the process died before answering
                self.child.join()
                self._remove_parts()
                what = " and ".join(w for w, wanted in (("tearsheet", tearsheet),
                                                          ("payoff charts", self.payoffs))
                                    if wanted) or "the report process"
                notes = [f"{what} failed (its process exited with {self.child.exitcode}); "
                         "the other reports are fine"]
            self._close()
            return notes
        return wait

    def abort(self) -> None:
        """The run failed: stop the process and remove what it began."""
        if self.child is not None and self.child.is_alive():
            self.child.kill()
        self._close()
        self._remove_parts()

    def _close(self) -> None:
        if self.conn is not None:
            self.child.join()
            self.conn.close()
            self.conn = None

    def _remove_parts(self) -> None:
        for part in (*(PAYOFF_PART.format(name) for name in self.payoffs), TEARSHEET_PART):
            (self.out / part).unlink(missing_ok=True)


def _can_fork() -> bool:
    return (threading.active_count() == 1 and "fork" in mp.get_all_start_methods()
            and not mp.current_process().daemon)


def _serve(run: Connection, out: Path, model, tearsheet: bool) -> None:
    """The forked process: payoff charts as they come, then the rest at ``finish``."""
    if tearsheet:
        quantstats()    # imported now, while the run goes on (a second or more)
    payoffs: dict[str, dict] = {}
    notes: list[str] = []
    while True:
        message = run.recv()
        if message[0] == "payoff":
            payoffs[message[1]] = message[2]
            notes += _payoff(out, model, message[1], message[2])
        else:
            notes += _tearsheet(out, message[1], run) if message[1] else []
            for name in payoffs:
                part = out / PAYOFF_PART.format(name)
                if part.exists():
                    os.replace(part, out / f"payoff_{name}.png")
            tearsheet_result(run, notes)
            run.close()
            return


def _reports(out: Path, model, payoffs: dict[str, dict], tearsheet: dict | None,
             helper: Connection | None) -> list[str]:
    """Every payoff chart and the tearsheet, here (no process to write them)."""
    notes = []
    for name, fields in payoffs.items():
        notes += _payoff(out, model, name, fields)
        part = out / PAYOFF_PART.format(name)
        if part.exists():
            os.replace(part, out / f"payoff_{name}.png")
    return notes + (_tearsheet(out, tearsheet, helper) if tearsheet else [])


def _payoff(out: Path, model, name: str, fields: dict) -> list[str]:
    try:
        payoff_chart(out / PAYOFF_PART.format(name), name, model=model, **fields)
    except Exception as exc:
        log.exception("payoff chart %s failed", name)
        return [f"payoff_{name}.png failed ({type(exc).__name__}: {exc})"]
    return []


def _tearsheet(out: Path, arguments: dict, helper: Connection | None) -> list[str]:
    """Write tearsheet.html; a failure of quantstats costs the tearsheet, not the run."""
    tmp = out / TEARSHEET_PART
    try:
        write_tearsheet(path=tmp, helper=helper, **arguments)
    except Exception as exc:   # quantstats fails on some degenerate series
        tmp.unlink(missing_ok=True)
        log.exception("tearsheet failed")
        return [f"tearsheet failed ({type(exc).__name__}: {exc}); the other reports are fine"]
    os.replace(tmp, out / "tearsheet.html")
    return []
