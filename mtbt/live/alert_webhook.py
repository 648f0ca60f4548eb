"""The webhook an alert goes to: ``MTBT_ALERT_WEBHOOK`` (a Slack or Discord incoming webhook).

``Webhook`` sends from its own worker thread, so a caller never waits on the network: ``send``
only puts the body on a queue. Each request has a timeout; a timeout, a refused connection, a
429 (after its ``Retry-After``) or a 5xx is retried with a doubling backoff until the alert's
deadline; any other answer ends that alert (said in the log). ``close`` lets the worker send
what is queued for a bounded time and says in the log what could not be sent. The URL carries
the webhook's token: it is never logged (only its host) and redirects are not followed.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from mtbt.errors import ConfigError

ENV = "MTBT_ALERT_WEBHOOK"
TIMEOUT = (3.05, 5.0)          # connect, read: seconds per request
DEADLINE = 60.0                # seconds an alert may take, retries included
DRAIN = 10.0                   # seconds ``close`` waits for the queue to empty
BACKOFF = (0.5, 8.0)           # first wait, longest wait between tries
MAX_TEXT = 1900                # Discord takes 2000 characters of ``content``
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger("mtbt.live")


def webhook_url(environ: dict | None = None) -> str | None:
    """The webhook URL from ``MTBT_ALERT_WEBHOOK`` (None when unset or empty).

    Raises ConfigError (naming the variable, never the URL) unless it is an https URL with a
    host, or http to this machine."""
    raw = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{ENV}: expected an https:// URL of a Slack or Discord incoming "
                          "webhook")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigError(f"{ENV}: http:// is taken only for 127.0.0.1 or localhost (the URL "
                          f"carries a token): use https:// for {parts.hostname}")
    return raw


def body(text: str) -> dict:
    """The JSON body of one alert, valid for both Slack and Discord incoming webhooks: Slack
    reads ``text``, Discord ``content`` (at most 2000 characters), both ignore the other's
    key; ``allowed_mentions`` keeps Discord from pinging anyone."""
    text = _plain(text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT - 1] + "…"
    return {"text": text, "content": text, "username": "mtbt",
            "allowed_mentions": {"parse": []}}


def _plain(text: str) -> str:
    """One line, without the characters Slack reads as markup (``<``, ``>``, ``&``)."""
    text = " ".join(text.split())
    return text.replace("&", "+").replace("<", "‹").replace(">", "›")


@dataclass
class _Item:
    body: dict
    event: str
    deadline: float
    tries: int = 0


@dataclass
class WebhookStats:
    """What the worker did: alerts sent, given up (event names), tries that failed."""

    sent: int = 0
    failed: list[str] = field(default_factory=list)
    retries: int = 0


class Webhook:
    """Sends alert bodies to ``url`` from a worker thread (see the module docstring)."""

    def __init__(self, url: str, *, timeout: tuple[float, float] = TIMEOUT,
                 deadline: float = DEADLINE) -> None:
        self.url, self.timeout, self.deadline = url, timeout, deadline
        self.host = urlsplit(url).hostname or "?"
        self.stats = WebhookStats()
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._closing = threading.Event()       # stop waiting between tries
        self._drain_until = float("inf")
        self._pending: list[_Item] = []         # taken from the queue, not done yet
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._work, name="mtbt-alerts", daemon=True)
        self._thread.start()

    def send(self, event: str, text: str) -> None:
        """Queue one alert (never blocks)."""
        self._queue.put_nowait(_Item(body(text), event, time.monotonic() + self.deadline))

    def close(self, drain: float | None = None) -> list[str]:
        """Let the worker send what is queued for at most ``drain`` seconds (default
        ``DRAIN``); the events of the alerts not sent (also said in the log)."""
        drain = DRAIN if drain is None else drain
        self._drain_until = time.monotonic() + drain
        self._queue.put_nowait(None)
        self._thread.join(drain + 0.5)
        self._closing.set()
        with self._lock:
            left = [i.event for i in self._pending] + [
                i.event for i in _drain(self._queue) if i is not None]
            self._pending.clear()
        unsent = self.stats.failed + left
        if unsent:
            log.warning("ALERTS not sent to %s: %d (%s)", self.host, len(unsent),
                        ", ".join(unsent))
        log.info("alerts: %d sent to %s", self.stats.sent, self.host)
        self._session.close()
        return unsent

    # -- the worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            with self._lock:
                self._pending.append(item)
            done = self._deliver(item)
            with self._lock:
                if item in self._pending:
                    self._pending.remove(item)
                    if not done:
                        self.stats.failed.append(item.event)
            if time.monotonic() >= self._drain_until:
                return

    def _deliver(self, item: _Item) -> bool:
        """Try until sent, refused or out of time; True once the host took it."""
        wait = BACKOFF[0]
        while True:
            end = min(item.deadline, self._drain_until)
            left = end - time.monotonic()
            if left <= 0:
                log.warning("alert %s not sent to %s: out of time after %d tr%s", item.event,
                            self.host, item.tries, "y" if item.tries == 1 else "ies")
                return False
            item.tries += 1
            retry_after, why = self._post(item, left)
            if retry_after is None:
                return why is None
            self.stats.retries += 1
            pause = min(max(retry_after, wait), BACKOFF[1])
            log.info("alert %s to %s: %s; again in %.1f s", item.event, self.host, why, pause)
            wait = min(wait * 2, BACKOFF[1])
            if self._sleep(min(pause, end - time.monotonic())):
                return False

    def _post(self, item: _Item, left: float) -> tuple[float | None, str | None]:
        """One request: (None, None) sent; (None, why) refused for good; (seconds, why) to
        try again after at least that long."""
        timeout = (min(self.timeout[0], left), min(self.timeout[1], left))
        try:
            reply = self._session.post(self.url, json=item.body, timeout=timeout,
                                       allow_redirects=False)
        except requests.Timeout:
            return 0.0, "timed out"
        except requests.RequestException as exc:
            return 0.0, type(exc).__name__
        code = reply.status_code
        if 200 <= code < 300:
            self.stats.sent += 1
            return None, None
        if code == 429 or code >= 500:
            return _retry_after(reply), f"HTTP {code}"
        log.warning("alert %s refused by %s: HTTP %s", item.event, self.host, code)
        return None, f"HTTP {code}"

    def _sleep(self, seconds: float) -> bool:
        """Wait; True when closing cut the wait short."""
        return self._closing.wait(max(0.0, seconds))


def _retry_after(reply: requests.Response) -> float:
    """Seconds the host asks to wait (``Retry-After``; Discord's ``retry_after``), or 0."""
    for value in (reply.headers.get("Retry-After"), _json_field(reply, "retry_after")):
        try:
            return max(0.0, float(value))
        except (TypeError, ValueError):
            continue
    return 0.0


def _json_field(reply: requests.Response, key: str):
    try:
        data = reply.json()
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None


def _drain(q: queue.Queue) -> list:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out
