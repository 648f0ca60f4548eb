"""The paper trader's durable state: one SQLite file (``StateStore``).

It holds what must survive a crash or a kill:

- ``orders``: every order mtbt sends, written with its deterministic ``client_order_id``
  **before** it is sent; a restarted trader finds each one again at Alpaca by that id (and
  sends the ones that never got there);
- ``checkpoint``: the strategy's lots with their exit stage and orders, the RiskManager's
  counters and the broker's books (cash, positions, how far each order has filled),
  rewritten after every bar, before that bar's orders are sent.

Writes are transactions in WAL mode with ``synchronous=NORMAL``: a killed process (even
SIGKILL) leaves the last committed state, never a half-written one; only a power cut or an
OS crash can lose the last transactions (the broker then finds the orders at Alpaca by
client id, or reports them as positions it does not know), and commits need no fsync.

One session at a time: the file is held with an OS lock (``<state>.lock``, released by the
OS when the process dies, even by SIGKILL) and the holder's pid is in the file's ``meta``
table, so a second session refuses in one line naming it. A file that is not SQLite, fails
SQLite's integrity check, holds other tables, or holds another symbol's state is refused
in one line (``StateError``) before anything is sent.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from mtbt.errors import StateError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    day TEXT NOT NULL,
    trade_id INTEGER,
    role TEXT NOT NULL,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_TABLES = frozenset({"orders", "checkpoint", "meta"})
FORMAT = "1"

@dataclass
class OrderRow:
    """One order as recorded before it was sent: its client id and what it was for."""

    client_order_id: str
    seq: int
    day: str
    trade_id: int | None
    role: str
    spec: dict


class StateStore:
    """The SQLite file at ``path`` (created with its folder when missing), held by this
    process until ``close``; ``symbol``: the underlying whose state it holds (checked)."""

    def __init__(self, path: str | Path, symbol: str | None = None) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._held = None
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._held = _hold(self.path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None)
            self._open(symbol)
        except BaseException:
            if hasattr(self, "_db"):
                self._db.close()
            self._release()
            raise

    def _open(self, symbol: str | None) -> None:
        """Check that the file is mtbt's (and ``symbol``'s), create the tables, record the
        holder; ``StateError`` otherwise."""
        where = self.path
        try:
            tables = {r[0] for r in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables - _TABLES:
                raise StateError(f"state file {where}: an SQLite file that is not mtbt's "
                                 f"(tables {', '.join(sorted(tables))}); pass another --state")
            if tables and self._db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state file {where}: unreadable ({exc}); it is corrupt or not "
                             "an mtbt state file: move it away, or pass another --state") from None
        if meta.get("format", FORMAT) != FORMAT:
            raise StateError(f"state file {where}: format {meta['format']}, this mtbt reads "
                             f"format {FORMAT}")
        if symbol and meta.get("symbol", symbol) != symbol:
            raise StateError(f"state file {where} holds the state of {meta['symbol']}; this "
                             f"run trades {symbol}: pass another --state")
        rows = {"format": FORMAT, "holder": str(os.getpid())} | (
            {"symbol": symbol} if symbol else {})
        self._transaction([("INSERT OR REPLACE INTO meta VALUES (?, ?)", item)
                           for item in rows.items()])

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._release()

    def _release(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None

    # -- orders ----------------------------------------------------------------------------
    def next_seq(self, day: str) -> int:
        """The next order sequence number of ``day`` (1 on a fresh day)."""
        row = self._query("SELECT MAX(seq) FROM orders WHERE day = ?", (day,))
        return (row[0][0] or 0) + 1

    def record_orders(self, rows: list[OrderRow]) -> None:
        """Write orders before they are sent (each client id must be new), in one go."""
        self.save(rows)

    def orders(self, day: str | None = None) -> list[OrderRow]:
        """The recorded orders (of ``day``), oldest first."""
        sql, args = "SELECT * FROM orders", ()
        if day is not None:
            sql, args = sql + " WHERE day = ?", (day,)
        return [OrderRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]))
                for r in self._query(sql + " ORDER BY day, seq", args)]

    # -- checkpoints -----------------------------------------------------------------------
    def save(self, rows: list[OrderRow] = (), **bodies: dict) -> None:
        """Record ``rows`` (orders about to be sent) and replace the named checkpoints
        (JSON-able bodies), all in one transaction."""
        statements = [("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
                       (r.client_order_id, r.seq, r.day, r.trade_id, r.role,
                        json.dumps(r.spec))) for r in rows]
        statements += [("INSERT OR REPLACE INTO checkpoint VALUES (?, ?)",
                        (name, json.dumps(body, default=str))) for name, body in bodies.items()]
        self._transaction(statements)

    def load(self, name: str) -> dict | None:
        rows = self._query("SELECT body FROM checkpoint WHERE name = ?", (name,))
        if not rows:
            return None
        try:
            return json.loads(rows[0][0])
        except json.JSONDecodeError:
            raise StateError(f"state file {self.path}: its {name} checkpoint is not JSON "
                             "(corrupt); move it away, or pass another --state") from None

    # -- internals -------------------------------------------------------------------------
    def _transaction(self, statements: list[tuple[str, tuple]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()


def _hold(path: Path) -> FileLock:
    """The OS lock of the state file ``path``, or ``StateError`` naming the holder's pid."""
    lock = FileLock(f"{path}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StateError(f"state file {path} is in use by another mtbt session "
                         f"(pid {_holder(path)}); one session per state file: stop that one, "
                         "or pass another --state") from None
    return lock


def _holder(path: Path) -> str:
    """The pid recorded by the session holding ``path`` ("unknown" if unreadable)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'holder'").fetchone()
        return row[0] if row else "unknown"
    except sqlite3.Error:
        return "unknown"
