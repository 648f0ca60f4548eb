"""The files of one paper session under ``logs/live_trading/`` (SESSION = PAPER_YYYYMMDD_HHMMSS).

- ``paper_trading_<SESSION>.log``: every decision, order, fill, reconnect and retry;
- ``trades_<SESSION>.csv``: the trades.csv contract, rewritten after every exit fill;
- ``balance_progression_<SESSION>.csv``: one row per bar, appended and flushed;
- ``session_summary_<SESSION>.json``, ``daily_<SESSION>.csv``, ``regime_<SESSION>.csv`` and
  ``alerts_<SESSION>.csv`` (the drawdown alerts), written at the end.

Files are written as the session goes, so a crash loses at most the current bar. A filter
replaces the Alpaca and Polygon keys with ``***`` in every log line, in case any text (an
error body, say) ever echoes one.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import logging
from pathlib import Path

import pandas as pd

from analyzers.journal import TRADE_COLUMNS
from analyzers.report import atomic_write

BALANCE_COLUMNS = ("time", "equity", "cash", "realized_pnl", "day_pnl", "open_trades",
                   "working_orders")


def session_id(now: dt.datetime | None = None) -> str:
    return f"PAPER_{(now or dt.datetime.now()):%Y%m%d_%H%M%S}"


class Redact(logging.Filter):
    """Replace each secret in a record's final text with ``***``."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(s in text for s in self.secrets):
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.msg, record.args = text, None
        return True


class SessionFiles:
    """Paths and writers of one session's files in ``folder``."""

    def __init__(self, folder: str | Path, session: str, secrets: tuple[str, ...] = ()):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.session = session
        self.log_path = self.path("paper_trading", ".log")
        self._handler = logging.FileHandler(self.log_path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self._handler.addFilter(Redact(secrets))
        self._loggers = [logging.getLogger("mtbt"), logging.getLogger("alpaca")]
        for logger in self._loggers:      # alpaca-py's reconnect notes go here, not stderr
            logger.addHandler(self._handler)
            logger.setLevel(logging.INFO)
        self._loggers[1].propagate = False
        self._balance = None          # opened at the first bar: no header-only file
        self._trades_written = -1

    def path(self, stem: str, suffix: str) -> Path:
        return self.folder / f"{stem}_{self.session}{suffix}"

    def bar(self, when: dt.datetime, strategy, broker) -> None:
        """After each bar: a balance row, and trades.csv again when a trade closed."""
        risk = strategy.risk
        if self._balance is None:
            self._balance = self.path("balance_progression", ".csv").open(
                "w", newline="", encoding="utf-8")
            self._balance_csv = csv.writer(self._balance)
            self._balance_csv.writerow(BALANCE_COLUMNS)
        self._balance_csv.writerow([
            pd.Timestamp(when).tz_localize("America/New_York").isoformat(),
            f"{broker.getvalue():.2f}", f"{broker.getcash():.2f}", f"{risk.realized:.2f}",
            f"{risk.day_pnl:.2f}", len(strategy.open_lots()), len(broker.working_orders())])
        self._balance.flush()
        journal = strategy.analyzers.journal
        if len(journal.rets) != self._trades_written:
            self.write_trades(journal.get_frame())
            self._trades_written = len(journal.rets)

    def write_trades(self, trades: pd.DataFrame) -> None:
        atomic_write(self.path("trades", ".csv"),
                     trades.reindex(columns=list(TRADE_COLUMNS)).to_csv(index=False))

    def finish(self, summary: dict, daily: pd.DataFrame, regimes: pd.DataFrame,
               alerts: list[tuple[dt.datetime, str]]) -> None:
        """The end-of-session files."""
        atomic_write(self.path("session_summary", ".json"),
                     json.dumps(summary, indent=2, default=str) + "\n")
        atomic_write(self.path("daily", ".csv"), daily.to_csv(index=False))
        atomic_write(self.path("regime", ".csv"), regimes.to_csv(index=False))
        atomic_write(self.path("alerts", ".csv"), pd.DataFrame(
            [(pd.Timestamp(t).isoformat(), text) for t, text in alerts],
            columns=["time", "alert"]).to_csv(index=False))

    def close(self) -> None:
        if self._balance is not None:
            self._balance.close()
        for logger in self._loggers:
            logger.removeHandler(self._handler)
        self._loggers[1].propagate = True
        self._handler.close()
