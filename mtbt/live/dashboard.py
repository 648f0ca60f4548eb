"""``mtbt dashboard``: a read-only web page of a paper session (stdlib ``http.server``).

It reads, never writes, the files a session leaves in its log folder, so it can be opened
while ``mtbt paper`` runs or afterwards:

- ``status_<SESSION>.json`` (``mtbt.live.status``): the last bar, the account, open trades
  with stage, stop and target, working orders, regime/VIX/ATR%, streams, latency;
- ``balance_progression_<SESSION>.csv``: the equity curve of the day;
- ``events_<SESSION>.jsonl``: the alerts as they happened (a missing file or a torn last
  line is fine);
- ``trades_<SESSION>.csv``: the trades closed so far;
- the state file (SQLite opened with ``mode=ro``: no write, no lock, the running session's
  file lock is left alone): what each working order is, and the open trades of the last
  checkpoint when there is no status file.

Routes: ``/`` (the page: inline script and style, no CDN) and ``/api/status`` (the JSON the
page polls). Nothing else is served, no file by path. Every field of the JSON is picked by
name, and every string in it has the values of the environment's keys and webhook URLs
replaced by ``***``. Bound to a loopback address it needs no token (but checks the Host
header, against DNS rebinding); bound elsewhere every request must carry the token (query
``token``, header ``X-Mtbt-Token`` or ``Authorization: Bearer``), compared in constant time.
"""
from __future__ import annotations

import csv
import datetime as dt
import errno
import hmac
import io
import ipaddress
import json
import logging
import os
import re
import secrets
import sqlite3
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from mtbt.alpaca.orders import describe
from mtbt.errors import MtbtError
from mtbt.live.dashboard_page import page
from mtbt.live.status import status_path
from mtbt.sessions import NY

log = logging.getLogger("mtbt.dashboard")

SESSION_RE = re.compile(r"PAPER_\d{8}_\d{6}")
_SESSION_FILE = re.compile(r"^(?:status|balance_progression|paper_trading|trades|events|"
                           r"session_summary)_(PAPER_\d{8}_\d{6})\.(?:json|csv|log|jsonl)$")
TOKEN_ENV = "MTBT_DASHBOARD_TOKEN"
MIN_TOKEN = 16
# environment variables whose values never leave the dashboard
SECRET_ENV = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY",
              "POLYGON_API_KEY", "MTBT_ALERT_WEBHOOK", TOKEN_ENV)
_WEBHOOK = re.compile(r"https?://[^\s\"']*(?:hooks?|webhooks?)[^\s\"']*", re.I)
MAX_EVENTS = 200
MAX_CLOSED = 100


class DashboardError(MtbtError):
    """The dashboard cannot start: no such folder, no session there, port in use, a token
    too short."""


# -- what a log folder holds ---------------------------------------------------------------
def sessions(folder: str | Path) -> list[str]:
    """The session ids with files in ``folder``, oldest first."""
    found = {m.group(1) for p in Path(folder).iterdir() if (m := _SESSION_FILE.match(p.name))}
    return sorted(found)


def pick_session(folder: str | Path, wanted: str | None = None) -> str:
    """``wanted`` (checked: an id of a session in ``folder``) or the latest session there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DashboardError(f"no such log folder: {folder} (pass the paper session's "
                             "--log-dir)")
    found = sessions(folder)
    if wanted is not None:
        if not SESSION_RE.fullmatch(wanted):
            raise DashboardError(f"--session {wanted!r}: not a session id "
                                 "(PAPER_YYYYMMDD_HHMMSS)")
        if wanted not in found:
            raise DashboardError(f"no session {wanted} in {folder}"
                                 + (f" (latest: {found[-1]})" if found else ""))
        return wanted
    if not found:
        raise DashboardError(f"no paper session in {folder} (no status_, balance_progression_ "
                             "or paper_trading_ file); start mtbt paper with --log-dir "
                             f"{folder}")
    return found[-1]


class Redactor:
    """Replaces the environment's key values and any webhook URL in text by ``***``."""

    def __init__(self, env: Mapping[str, str] = os.environ, extra: tuple[str, ...] = ()):
        values = [env.get(name, "") for name in SECRET_ENV] + list(extra)
        self.secrets = tuple(sorted({v for v in values if len(v) >= 4}, key=len,
                                    reverse=True))

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, "***")
        return _WEBHOOK.sub("***", value)

    def __call__(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value


def _pick(body, keys: tuple[str, ...]) -> dict:
    """Only ``keys`` of a dict (anything else: {})."""
    return {k: body.get(k) for k in keys} if isinstance(body, dict) else {}


_TRADE = ("trade_id", "side", "instrument", "label", "qty", "remaining", "stage",
          "entry_price", "entry_time", "premium", "levels_on", "stop", "stop_reason",
          "target", "target_reason", "last", "mark")
_STREAM = ("state", "connected", "down_since", "since", "connects")
_LATENCY = ("n", "p50", "p99", "max")


def _status_view(body: dict) -> dict:
    """The status file's fields the page shows, picked by name."""
    latency = body.get("latency_ms") if isinstance(body.get("latency_ms"), dict) else {}
    streams = body.get("streams") if isinstance(body.get("streams"), dict) else {}
    return _pick(body, ("session", "symbol", "run", "run_id", "dry_run", "state",
                        "stopped_by", "started", "updated", "bar_time", "bars",
                        "last_price", "bars_streamed", "bars_recovered")) | {
        "account": _pick(body.get("account"), ("equity", "cash", "day_pnl", "realized_pnl")),
        "risk": _pick(body.get("risk"), ("halted_today", "paused", "breaker_tripped",
                                         "breaker_trips", "drawdown")),
        "regime": _pick(body.get("regime"), ("name", "vix", "atr_pct")),
        "open_trades": [_pick(t, _TRADE) for t in body.get("open_trades") or []],
        "working_orders": [str(c) for c in body.get("working_orders") or []],
        "streams": {name: _pick(streams.get(name), _STREAM) for name in ("bars", "trades")},
        "latency_ms": {name: _pick(latency.get(name), _LATENCY)
                       for name in ("bar_to_order", "bar_handled")},
        "summary": _pick(body.get("summary"), ("trades", "wins", "win_rate", "total_pnl",
                                                "max_drawdown", "final_equity", "orders_sent",
                                                "open_trades"))
        if body.get("summary") else None}


def read_json(path: Path) -> dict | None:
    """A JSON object file, or None when missing or unreadable (being replaced, say)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def read_events(path: Path, limit: int = MAX_EVENTS) -> list[dict]:
    """The last ``limit`` events of an ``events_<SESSION>.jsonl`` file: time, event, text
    (a missing file is no event; a line that is not a whole JSON object, such as a torn
    last line, is skipped)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            body = json.loads(line)
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("event"):
            events.append({"time": str(body.get("time") or ""), "event": str(body["event"]),
                           "text": str(body.get("text") or "")})
    return events[-limit:]


def _csv_rows(path: Path) -> list[dict]:
    """The rows of a CSV file being appended to (a torn last row is dropped)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_equity(path: Path) -> list[list]:
    """``[[time, equity, day_pnl], ...]`` of the balance file (empty when missing)."""
    return [[row["time"], _float(row.get("equity")), _float(row.get("day_pnl"))]
            for row in _csv_rows(path) if row.get("time") and _float(row.get("equity"))
            is not None]


def read_closed(path: Path, limit: int = MAX_CLOSED) -> list[dict]:
    """The exit rows of ``trades_<SESSION>.csv`` (the last ``limit``)."""
    keys = ("trade_id", "instrument", "side", "entry_time", "entry_price", "exit_time",
            "exit_price", "qty", "pnl", "exit_reason")
    return [{k: row.get(k) for k in keys} for row in _csv_rows(path)][-limit:]


def read_state(path: Path, client_ids: list[str]) -> dict:
    """From the state file, read-only: the last checkpoint's day, open trades and risk
    flags, and what each of ``client_ids`` is. ``{"error": ...}`` when unreadable."""
    if not path.is_file():
        return {"error": f"no state file at {path.name}"}
    # no -wal file: no session writes it now, and the file is read as it stands, creating
    # nothing beside it; else read-only beside the running session (WAL: it never waits)
    immutable = not path.with_name(f"{path.name}-wal").exists()
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
    try:
        db = sqlite3.connect(uri, uri=True, timeout=2.0)
    except sqlite3.Error as exc:
        return {"error": f"state file unreadable ({exc})"}
    try:
        db.execute("PRAGMA query_only = ON")
        rows = dict(db.execute("SELECT name, body FROM checkpoint WHERE name = 'strategy'"))
        marks = ",".join("?" * len(client_ids))
        orders = db.execute(f"SELECT client_order_id, role, trade_id, spec FROM orders "
                            f"WHERE client_order_id IN ({marks})", client_ids).fetchall() \
            if client_ids else []
    except sqlite3.Error as exc:
        return {"error": f"state file unreadable ({exc})"}
    finally:
        db.close()
    try:
        strategy = json.loads(rows["strategy"]) if "strategy" in rows else {}
    except ValueError:
        return {"error": "state file: its checkpoint is not JSON"}
    risk = strategy.get("risk") or {}
    described = {}
    for cid, role, trade_id, spec in orders:
        try:
            text = describe(json.loads(spec))
        except (ValueError, KeyError, TypeError):
            text = role
        described[cid] = {"role": role, "trade_id": trade_id, "order": text}
    lots = [{"trade_id": lot.get("trade_id"), "side": "long" if lot.get("side", 0) > 0
             else "short", "instrument": (lot.get("structure") or {}).get("name") or "shares",
             "qty": lot.get("qty"), "remaining": lot.get("remaining"),
             "stage": lot.get("stage"), "entry_price": lot.get("entry_price"),
             "stop": lot.get("stop"), "stop_reason": lot.get("stop_reason")}
            for lot in strategy.get("lots") or [] if isinstance(lot, dict)]
    return {"day": strategy.get("day"), "open_trades": lots, "orders": described,
            "paused": bool(risk.get("paused")), "breaker_tripped": bool(risk.get("tripped"))}


class SessionReader:
    """The JSON the page polls, from the files of ``folder`` (``session``: a fixed one;
    None: the latest, looked up again on each read so a new session shows up)."""

    def __init__(self, folder: str | Path, session: str | None = None,
                 state_path: str | Path | None = None, redact: Redactor | None = None):
        self.folder = Path(folder)
        self.session = pick_session(self.folder, session)
        self.fixed = session is not None
        self.state_path = Path(state_path) if state_path else self.folder / "state.sqlite"
        self.redact = redact or Redactor()

    def snapshot(self) -> dict:
        """Everything the page shows, whitelisted and redacted."""
        found = sessions(self.folder) if self.folder.is_dir() else []
        if not self.fixed and found:
            self.session = found[-1]
        name, folder = self.session, self.folder
        raw = read_json(status_path(folder, name))
        status = _status_view(raw) if raw is not None else None
        working = (status or {}).get("working_orders") or []
        state = read_state(self.state_path, working)
        body = {"session": name, "sessions": found[-20:],
                "now": dt.datetime.now(ZoneInfo(NY)).isoformat(timespec="seconds"),
                "status": status, "state": state,
                "equity": read_equity(folder / f"balance_progression_{name}.csv"),
                "events": read_events(folder / f"events_{name}.jsonl"),
                "closed_trades": read_closed(folder / f"trades_{name}.csv")}
        return self.redact(body)


# -- the server ----------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_for(host: str, env: Mapping[str, str] = os.environ) -> tuple[str | None, bool]:
    """The token requests must carry, and whether it was generated (to print once).
    Loopback: ``MTBT_DASHBOARD_TOKEN`` or none. Elsewhere: that variable (at least 16
    characters) or a new random one."""
    token = env.get(TOKEN_ENV) or None
    if token is not None and len(token) < MIN_TOKEN:
        raise DashboardError(f"{TOKEN_ENV} is {len(token)} characters: use at least "
                             f"{MIN_TOKEN} (or unset it to get a random one)")
    if token is None and not is_loopback(host):
        return secrets.token_urlsafe(24), True
    return token, False


class DashboardServer(ThreadingHTTPServer):
    """The dashboard's HTTP server over one ``SessionReader``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], reader: SessionReader,
                 token: str | None = None, refresh: float = 2.0) -> None:
        self.reader, self.token, self.refresh = reader, token, refresh
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "mtbt-dashboard"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:   # never log a token in a query
        return

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        refusal = self._refusal(url)
        if refusal is not None:
            self._send(*refusal)
            return
        if url.path == "/":
            nonce = secrets.token_urlsafe(16)
            self._send(HTTPStatus.OK, page(nonce, self.server.refresh),
                       "text/html; charset=utf-8", nonce=nonce)
        elif url.path == "/api/status":
            try:
                body = self.server.reader.snapshot()
            except OSError as exc:           # the folder went away, say
                body = {"error": f"cannot read the log folder ({exc.strerror or exc})"}
            self._send(HTTPStatus.OK, json.dumps(body, allow_nan=False, default=str),
                       "application/json")
        else:
            self._send(HTTPStatus.NOT_FOUND, "not found\n")

    def do_HEAD(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, "")

    def _other(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET only\n")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other

    def _refusal(self, url) -> tuple[HTTPStatus, str] | None:
        token = self.server.token
        if token is None:         # loopback only: a foreign Host is a rebinding page
            host, port = self.server.server_address[:2]
            allowed = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}",
                       f"{host}:{port}"}
            if self.headers.get("Host", "") not in allowed:
                return HTTPStatus.FORBIDDEN, "unexpected Host header\n"
            return None
        given = (parse_qs(url.query).get("token", [""])[0]
                 or self.headers.get("X-Mtbt-Token", "")
                 or self.headers.get("Authorization", "").removeprefix("Bearer ").strip())
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HTTPStatus.UNAUTHORIZED, "a token is needed: open the URL printed at start\n"
        return None

    def _send(self, code: HTTPStatus, body: str, kind: str = "text/plain; charset=utf-8",
              nonce: str | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        src = f"'nonce-{nonce}'" if nonce else "'none'"
        self.send_header("Content-Security-Policy",
                         f"default-src 'none'; script-src {src}; style-src {src}; "
                         "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                         "base-uri 'none'; form-action 'none'")
        self.end_headers()
        self.wfile.write(data)


def make_server(folder: str | Path, *, host: str = "127.0.0.1", port: int = 8765,
                session: str | None = None, state_path: str | Path | None = None,
                token: str | None = None, refresh: float = 2.0) -> DashboardServer:
    """A dashboard server bound to ``host:port`` (not serving yet). A non-loopback host
    without ``token``: ``DashboardError``; a port in use: ``DashboardError``."""
    if token is None and not is_loopback(host):
        raise DashboardError(f"--host {host} is not a loopback address: a token is "
                             f"required ({TOKEN_ENV})")
    if token is not None and len(token) < MIN_TOKEN:
        raise DashboardError(f"the dashboard token must have at least {MIN_TOKEN} characters")
    reader = SessionReader(folder, session, state_path,
                           Redactor(extra=(token,) if token else ()))
    try:
        return DashboardServer((host, port), reader, token, refresh)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DashboardError(f"port {port} on {host} is in use (another dashboard?); "
                                 "pass another --port") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise DashboardError(f"port {port} on {host}: permission denied; pass a port "
                                 "above 1023") from None
        raise DashboardError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") \
            from None
