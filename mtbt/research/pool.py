"""Run backtests on Ray: locally on this machine's cores, or on a cluster (``--address``).

The driver puts the bars into Ray's object store once and every task receives that
reference, so no worker reads a data file. Results come back as tasks finish;
with a ``journal`` each finished result is appended to a JSON-lines file at once, so an
interrupted run keeps what it finished and a rerun skips it (a failed task is run again).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mtbt.errors import MtbtError
from mtbt.research.tasks import Task, run_task

Progress = Callable[[str, int, int], None]
#: What the journal keeps of a result (trades and equity frames stay in memory).
_KEPT = ("key", "label", "params", "metrics", "seconds", "error")


@dataclass
class Outcome:
    """Results by task key (each a dict with ``metrics`` or ``error``), and counts."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    ran: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)


def import_ray():
    """``ray``, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MtbtError("ray is not installed: pip install 'mtbt[scale]'") from None
    return ray


def check_address(address: str, timeout: float = 5.0) -> None:
    """Refuse, in one line and within ``timeout`` s, a ``--address`` nothing answers at
    (``ray.init`` would retry for minutes) and a ``ray://`` one without Ray's client."""
    if address == "auto":
        return
    client = address.startswith("ray://")
    if client:
        try:
            import grpc  # noqa: F401  (ray[client] brings it)
        except ImportError:
            raise MtbtError(f"--address {address}: ray:// needs Ray's client "
                            "(pip install 'ray[client]'), or use HOST:6379 on a cluster "
                            "node") from None
    where = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = where.hostname, where.port or (10001 if client else 6379)
    except ValueError as exc:
        raise MtbtError(f"--address {address}: expected HOST:PORT ({exc})") from None
    if not host:
        raise MtbtError(f"--address {address}: expected HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise MtbtError(f"--address {address}: nothing answers at {host}:{port} ({why}); "
                        "is the Ray cluster up (ray start --head)?") from None


class RayPool:
    """A Ray session for the tasks of one command (``with RayPool(...) as pool:``).

    Ray starts on the first task there is to run (a rerun with nothing left starts none):
    with ``address`` None a local Ray on ``workers`` CPUs (default: all cores), otherwise a
    connection to that cluster, keeping at most ``workers`` tasks running (default: all the
    cluster's CPUs). A Ray that is already initialised is used as it is and left running.
    """

    def __init__(self, workers: int | None = None, address: str | None = None):
        if workers is not None and workers < 1:
            raise MtbtError(f"--workers {workers}: expected 1 or more")
        self.workers, self.address = workers, address
        self.slots = 0
        self._ray = None
        self._owned = False
        self._refs: dict[int, Any] = {}     # id(market) -> its object-store reference

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._owned:
            self._ray.shutdown()

    def _start(self):
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        if not ray.is_initialized():
            quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
            if self.address:
                check_address(self.address)
            try:
                if self.address:
                    ray.init(address=self.address, **quiet)
                else:
                    ray.init(address="local", num_cpus=self.workers or os.cpu_count(),
                             include_dashboard=False, **quiet)   # never a running cluster
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"--address {self.address}" if self.address else "local Ray"
                raise MtbtError(f"{where}: cannot start Ray ({exc})") from None
            self._owned = True
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.slots = min(self.workers, cpus) if self.workers else cpus
        self._ray = ray
        return ray

    def _ref(self, market: Any):
        """``market`` in the object store: put there once, however many runs use it."""
        if id(market) not in self._refs:
            self._refs[id(market)] = (self._ray.put(market), market)
        return self._refs[id(market)][0]

    def run(self, tasks: Iterable[Task], market: Any, *, journal: Path | None = None,
            progress: Progress | None = None, phase: str = "backtests",
            fn: Callable[[Task, Any], dict] = run_task) -> Outcome:
        """Run every task not already finished in ``journal``: ``fn(task, market)`` on a
        worker (default :func:`~mtbt.research.tasks.run_task`), ``market`` from the store."""
        tasks = list(tasks)
        report = progress or (lambda phase, done, total: None)
        finished = read_journal(journal) if journal else {}
        outcome = Outcome({t.key: finished[t.key] for t in tasks if t.key in finished})
        outcome.skipped = len(outcome.results)
        todo = iter([t for t in tasks if t.key not in outcome.results])
        report(phase, len(outcome.results), len(tasks))
        if len(outcome.results) == len(tasks):
            return outcome
        if journal is not None:
            _end_line(journal)
        ray = self._start()
        remote, ref = ray.remote(num_cpus=1)(fn), self._ref(market)
        pending: dict[Any, Task] = {}
        try:
            while True:
                while len(pending) < self.slots and (task := next(todo, None)) is not None:
                    pending[remote.remote(task, ref)] = task
                if not pending:
                    return outcome
                (done,), _ = ray.wait(list(pending), num_returns=1)
                task = pending.pop(done)
                record = {"key": task.key, "label": task.label, "params": task.params,
                          **self._get(done)}
                self._record(outcome, task, record, journal, phase)
                report(phase, len(outcome.results), len(tasks))
        except KeyboardInterrupt:
            for waiting in pending:
                ray.cancel(waiting)
            raise

    def _get(self, ref) -> dict[str, Any]:
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:   # the task raised, a worker died, ...
            cause = getattr(exc, "cause", None) or exc
            lines = str(cause).strip().splitlines() or [""]
            return {"error": f"{type(cause).__name__}: {lines[-1]}"}

    @staticmethod
    def _record(outcome: Outcome, task: Task, record: dict, journal: Path | None,
                phase: str) -> None:
        outcome.results[task.key] = record
        outcome.ran += 1
        if "error" in record:
            outcome.failed.append(task.label)
            print(f"{phase}: {task.label} failed: {record['error']}", file=sys.stderr)
        if journal is not None:
            kept = {k: record[k] for k in _KEPT if k in record}
            with journal.open("a", encoding="utf-8") as f:
                f.write(json.dumps(kept, default=str) + "\n")


def _end_line(path: Path) -> None:
    """Finish a last line cut short by a crash, so the next result starts a line."""
    if path.exists() and path.stat().st_size:
        with path.open("rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")


def read_journal(path: Path) -> dict[str, dict[str, Any]]:
    """The finished results in a journal by key (failed ones are left out: they run again);
    a line cut short by a crash is ignored."""
    if not path.exists():
        return {}
    done = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "key" in record and "error" not in record:
            done[record["key"]] = record
    return done
