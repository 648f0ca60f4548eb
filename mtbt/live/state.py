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
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

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
"""

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
    """The SQLite file at ``path`` (created with its folder when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

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
        return json.loads(rows[0][0]) if rows else None

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
