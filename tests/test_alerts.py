"""Alerts of a paper session: ``events_<SESSION>.jsonl`` and the webhook (issue 15, item 1).

A local HTTP sink on 127.0.0.1 (stdlib ``http.server`` in a thread) stands in for Slack or
Discord and records every body. The worker is tested on the sink alone (retries, a host that
never answers, a refusal); two replayed days (real SPY bars, skipped without ../shared) check
the alerts a session sends: a day that trips the drawdown breaker with a stream drop and a
refused order (every alert once), and an options day with an orphan leg against a sink that
never answers (the bar loop does not wait on it; the end is bounded).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from mtbt.config import ALERT_EVENTS, Alerts, load_run
from mtbt.errors import ConfigError
from mtbt.live import alert_webhook
from mtbt.live.alert_webhook import Webhook, body, webhook_url
from mtbt.live.alerts import AlertHub, risk_event
from mtbt.live.replay import replay, replay_config, simulator
from mtbt.risk import RiskManager
from mtbt.sim import Faults
from tests.test_paper import _open_orphan_leg

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")

KEYS = (f"alert-key-{uuid.uuid4().hex[:12]}", f"alert-secret-{uuid.uuid4().hex}")
TOKEN = f"T{uuid.uuid4().hex[:10]}/B{uuid.uuid4().hex[:10]}"     # the webhook URL's secret


# -- the sink -----------------------------------------------------------------------------
class Sink:
    """A webhook on 127.0.0.1 that records each request's JSON body and answers from
    ``answers`` (status codes, used in turn; the last one repeats), or never (``hang``)."""

    def __init__(self, answers=(204,), hang: bool = False, headers: dict | None = None):
        self.answers, self.hang, self.headers = list(answers), hang, headers or {}
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.release = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:                       # noqa: N802 - http.server
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.paths.append(self.path)
                sink.bodies.append(json.loads(raw))
                if sink.hang:
                    sink.release.wait(30)
                    return
                status = sink.answers.pop(0) if len(sink.answers) > 1 else sink.answers[0]
                self.send_response(status)
                for key, value in (sink.headers if status == 429 else {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def sink(**kwargs):
    s = Sink(**kwargs)
    try:
        yield s
    finally:
        s.close()


def _valid(payload: dict) -> None:
    """A body both Slack (``text``) and Discord (``content``, <= 2000 characters, a
    username of 1..80 characters) take: one line, no Slack markup characters."""
    assert set(payload) == {"text", "content", "username", "allowed_mentions"}
    assert payload["text"] == payload["content"] and 0 < len(payload["content"]) <= 2000
    assert 1 <= len(payload["username"]) <= 80 and payload["allowed_mentions"] == {"parse": []}
    assert "\n" not in payload["text"] and not set("<>&") & set(payload["text"])


def _secret_free(text: str) -> None:
    for secret in (*KEYS, TOKEN):
        assert secret not in text


# -- the worker, on the sink alone -------------------------------------------------------
def test_a_body_is_one_line_for_slack_and_discord() -> None:
    payload = body("a <b> & c\nd " + "x" * 3000)
    _valid(payload)
    assert payload["text"].startswith("a ‹b› + c d x") and payload["text"].endswith("…")


def test_a_sink_answering_500_then_200_gets_the_alert_after_a_retry(caplog) -> None:
    caplog.set_level(logging.INFO, logger="mtbt")
    with sink(answers=(500, 200)) as s:
        hook = Webhook(s.url)
        hook.send("breaker_trip", "max drawdown: tripped")
        assert hook.close(drain=10) == []
        assert len(s.bodies) == 2 and s.bodies[0] == s.bodies[1]
        assert (hook.stats.sent, hook.stats.retries, hook.stats.failed) == (1, 1, [])
        assert "alert breaker_trip to 127.0.0.1: HTTP 500; again in" in caplog.text
        assert TOKEN not in caplog.text          # the host only, never the URL


def test_a_429_waits_its_retry_after_then_sends() -> None:
    with sink(answers=(429, 204), headers={"Retry-After": "1"}) as s:
        hook = Webhook(s.url)
        start = time.monotonic()
        hook.send("reconnect", "bars stream back")
        assert hook.close(drain=10) == []
        assert len(s.bodies) == 2 and time.monotonic() - start >= 1.0


def test_a_refusal_is_not_retried_and_is_said_in_the_log(caplog) -> None:
    caplog.set_level(logging.INFO, logger="mtbt")
    with sink(answers=(400,)) as s:
        hook = Webhook(s.url)
        hook.send("session_start", "started")
        assert hook.close(drain=5) == ["session_start"]
        assert len(s.bodies) == 1
        assert "alert session_start refused by 127.0.0.1: HTTP 400" in caplog.text
        assert "ALERTS not sent to 127.0.0.1: 1 (session_start)" in caplog.text


def test_a_sink_that_never_answers_costs_the_sender_nothing_and_the_end_is_bounded(
        caplog) -> None:
    caplog.set_level(logging.INFO, logger="mtbt")
    with sink(hang=True) as s:
        hook = Webhook(s.url, timeout=(1.0, 1.0), deadline=30)
        start = time.monotonic()
        for event in ("session_start", "stream_down", "reconnect"):
            hook.send(event, "x")
        assert time.monotonic() - start < 0.05           # queued, never sent inline
        start = time.monotonic()
        unsent = hook.close(drain=2.5)
        assert time.monotonic() - start < 4.0
        assert unsent == ["session_start", "stream_down", "reconnect"]
        assert len(s.bodies) >= 2                      # tried, timed out, tried again
        assert "ALERTS not sent to 127.0.0.1: 3" in caplog.text


def test_the_url_comes_from_the_environment_and_is_checked() -> None:
    assert webhook_url({}) is None and webhook_url({"MTBT_ALERT_WEBHOOK": " "}) is None
    url = f"https://hooks.slack.com/services/{TOKEN}"
    assert webhook_url({"MTBT_ALERT_WEBHOOK": url}) == url
    for bad in (f"http://hooks.slack.com/services/{TOKEN}", f"ftp://x/{TOKEN}", TOKEN):
        with pytest.raises(ConfigError) as err:
            webhook_url({"MTBT_ALERT_WEBHOOK": bad})
        assert str(err.value).startswith("MTBT_ALERT_WEBHOOK: ") and TOKEN not in str(err.value)


def test_paper_refuses_a_plain_http_webhook_in_one_line_without_the_url(monkeypatch, capsys,
                                                                       tmp_path) -> None:
    from mtbt.cli import main

    monkeypatch.setenv("MTBT_ALERT_WEBHOOK", f"http://hooks.slack.com/services/{TOKEN}")
    assert main(["paper", "--log-dir", str(tmp_path / "logs")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("mtbt: error: MTBT_ALERT_WEBHOOK: ")
    assert TOKEN not in error and not (tmp_path / "logs").exists()


# -- the hub ------------------------------------------------------------------------------
def test_every_event_is_written_and_only_the_selected_ones_are_sent(tmp_path) -> None:
    with sink() as s:
        hub = AlertHub(tmp_path, "PAPER_X", Alerts(events=("breaker_trip",)), symbol="SPY",
                       secrets=KEYS, webhook=s.url)
        hub.emit("session_start", f"started with {KEYS[0]} at {s.url}")
        hub.emit("breaker_trip", f"max drawdown: {KEYS[1]}",
                 pd.Timestamp("2024-08-01 10:22").to_pydatetime())
        hub.emit("reconnect", "bars stream back", stream="bars")
        hub.close()
        lines = (tmp_path / "events_PAPER_X.jsonl").read_text().splitlines()
        events = [json.loads(line) for line in lines]
        assert [e["event"] for e in events] == ["session_start", "breaker_trip", "reconnect"]
        assert events[1]["time"] == "2024-08-01T10:22:00-04:00"
        assert pd.Timestamp(events[0]["time"]).utcoffset() is not None
        assert events[2]["stream"] == "bars" and events[0]["text"].count("***") == 2
        assert len(s.bodies) == 1 and "10:22 breaker_trip: max drawdown: ***" in \
            s.bodies[0]["text"]
        _secret_free("\n".join(lines) + json.dumps(s.bodies))
    with pytest.raises(ValueError, match="unknown alert event"):
        hub.emit("breaker", "x")


def test_the_risk_managers_own_alerts_are_classified() -> None:
    risk = RiskManager(account_size=25_000, daily_dd_limit=300, max_dd_threshold=200)
    risk.update_pnl(-350)
    assert [risk_event(t) for t in risk.alerts] == ["daily_limit", "breaker_trip"]
    assert risk_event("something else") is None


def test_alerts_events_refuses_an_unknown_name_naming_it() -> None:
    assert load_run().alerts.events == ALERT_EVENTS
    assert load_run().alerts.stream_down_seconds == 60
    with pytest.raises(ConfigError, match='alerts.events.*unknown event "breaker"'):
        load_run(None, ['alerts.events=["session_start", "breaker"]'])
    assert load_run(None, ["alerts.events=[]"]).run_id == load_run().run_id


# -- replayed days ------------------------------------------------------------------------
def _cfg(shared: Path, instrument: str, day: str, *overrides: str):
    cfg = load_run(None, [f'data.bars="{shared / "spy_1m_2024-03-26_2025-04-02.parquet"}"',
                          f'data.vix="{shared / "vix_1d_1990_2026.parquet"}"',
                          f'strategy.instrument="{instrument}"', "report.tearsheet=false",
                          *overrides])
    return replay_config(cfg, cfg.data.bars, pd.Timestamp(day).date())


@contextmanager
def _webhook_env(url: str):
    old = os.environ.get("MTBT_ALERT_WEBHOOK")
    os.environ["MTBT_ALERT_WEBHOOK"] = url
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MTBT_ALERT_WEBHOOK", None)
        else:
            os.environ["MTBT_ALERT_WEBHOOK"] = old


def _events(result) -> list[dict]:
    path = result.folder / f"events_{result.session}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def breaker_day(shared_data, tmp_path_factory):
    """2025-02-25 with max_dd_threshold 100: trade 2's stop trips the breaker at 13:01;
    trade 3's entry (1 share) is refused; both streams dropped once after the 5th bar."""
    cfg = _cfg(shared_data, "equity", "2025-02-25", "risk_management.max_dd_threshold=100",
               "alerts.stream_down_seconds=0.2")
    sim = simulator(cfg, Faults(drop_streams_at=5, reject_order="-t3-entry"), keys=KEYS)
    logs = tmp_path_factory.mktemp("alerts_breaker")
    with sink() as s, _webhook_env(s.url):
        result = replay(cfg, sim=sim, log_dir=logs, state_path=logs / "state.sqlite")
        time.sleep(0.2)
        return result, sim, list(s.bodies)


def test_a_replayed_day_sends_each_expected_alert_once(breaker_day) -> None:
    result, sim, bodies = breaker_day
    events = _events(result)
    assert sim._streams.drops >= 2 and any(f["status"] == 403 for f in sim.injected)
    seen = Counter((e["event"], e.get("stream")) for e in events)
    assert seen == {("session_start", None): 1, ("breaker_trip", None): 1,
                    ("order_rejected", None): 1, ("stream_down", "bars"): 1,
                    ("stream_down", "trades"): 1, ("reconnect", "bars"): 1,
                    ("reconnect", "trades"): 1, ("session_summary", None): 1}, seen
    assert events[0]["event"] == "session_start" and events[-1]["event"] == "session_summary"
    trip = next(e for e in events if e["event"] == "breaker_trip")
    assert trip["time"] == "2025-02-25T13:01:00-05:00"
    assert trip["text"].startswith("max drawdown: equity $")
    rejected = next(e for e in events if e["event"] == "order_rejected")
    assert "insufficient buying power" in rejected["text"]
    summary = events[-1]
    assert summary["trades"] == result.summary["trades"] >= 1
    assert summary["stopped_by"] == "session end" and summary["breaker_tripped"] is True
    # the webhook got each of them once, in order, in a body Slack and Discord take
    assert [b["text"].split(": ", 1)[1] for b in bodies] == [e["text"] for e in events]
    for payload in bodies:
        _valid(payload)
    _secret_free(json.dumps(bodies) + json.dumps(events))
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert "alerts: session_start, breaker_trip" in log and "to the webhook at 127.0.0.1" in log
    assert f"alerts: {len(bodies)} sent to 127.0.0.1" in log
    _secret_free(log)


@pytest.fixture(scope="module")
def orphan_day(shared_data, tmp_path_factory):
    """2025-01-02 on options: a leg added at the simulator behind the trader's back (an
    orphan, closed by the trader), every alert to a sink that never answers."""
    cfg = _cfg(shared_data, "options", "2025-01-02")
    sim = simulator(cfg, keys=KEYS)
    logs = tmp_path_factory.mktemp("alerts_orphan")
    done: dict = {}
    drain, alert_webhook.DRAIN = alert_webhook.DRAIN, 2.0
    try:
        with sink(hang=True) as s, _webhook_env(s.url):
            def run() -> None:
                done["result"] = replay(cfg, sim=sim, log_dir=logs,
                                        state_path=logs / "state.sqlite")
                done["ended"] = time.monotonic()
            trader = threading.Thread(target=run)
            trader.start()
            leg = _open_orphan_leg(sim, KEYS, trader)
            trader.join(timeout=300)
            return done["result"], done["ended"], leg.symbol, len(s.bodies)
    finally:
        alert_webhook.DRAIN = drain


def test_an_orphan_leg_is_an_alert_and_a_silent_webhook_never_slows_the_session(
        orphan_day) -> None:
    result, ended, symbol, tried = orphan_day
    events = _events(result)
    orphans = [e for e in events if e["event"] == "orphan_closed"]
    assert len(orphans) == 1 and orphans[0]["symbol"] == symbol, orphans
    assert "closing -1 at market" in orphans[0]["text"] or \
        "closing +1 at market" in orphans[0]["text"]
    assert [e["event"] for e in events].count("session_summary") == 1
    assert tried >= 1                                  # the sink was asked, never answered
    # the bar loop never waited on the webhook: one bar's time to its orders stays far
    # under one request's read timeout (5 s), the session_start alert's included
    handled = result.latency["bar_handled"]
    assert handled and max(handled) < alert_webhook.TIMEOUT[1] / 2, max(handled)
    # the end: the queue drained for DRAIN (2 s here), then the session ended and said so
    summary_at = pd.Timestamp(events[-1]["time"]).timestamp()
    assert time.time() - (time.monotonic() - ended) - summary_at < 2.0 + 6.0
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert "ALERTS not sent to 127.0.0.1:" in log and "orphan_closed" in log
    _secret_free(log + json.dumps(events))
