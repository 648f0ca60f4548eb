"""The paper session's status file and ``mtbt dashboard`` (issue 15, item 2).

One replayed day (2024-08-02, shares, against the local simulator, streams dropped every
second) is stopped with ``keep_positions`` as soon as the status file shows a filled trade:
the dashboard's JSON is read while the session still runs (its state file locked), and
its files are read afterwards, over HTTP, and in headless Chromium.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from mtbt.cli import main
from mtbt.config import load_run
from mtbt.live.dashboard import (
    DashboardError,
    Redactor,
    SessionReader,
    make_server,
    pick_session,
    read_events,
    token_for,
)
from mtbt.live.replay import replay, replay_config
from mtbt.live.status import StreamWatch
from mtbt.sim import Faults

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")

ROOT = Path(__file__).resolve().parents[1]
DAY = "2024-08-02"          # two short entries; the first fills at 09:43
TOKEN = "t0ken-for-the-dashboard-tests"
SECRET = "PKSECRETVALUE1234567890"       # as if it were an Alpaca key in the environment
# what the alerts' writer appends (issue 15 item 1); written here when the session did not
EVENTS = [{"time": f"{DAY}T09:31:00-04:00", "event": "session_start",
           "text": "paper session started: SPY, run default"},
          {"time": f"{DAY}T09:40:12-04:00", "event": "stream_down",
           "text": f"bar stream down for 61 s (key {SECRET})"},
          {"time": f"{DAY}T09:41:02-04:00", "event": "reconnect",
           "text": "bar stream reconnected after 111 s; 2 bars recovered over REST"}]


def _events_lines(events: list[dict]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events) + '{"time": "2024-08-02T09:4'


@pytest.fixture(scope="module")
def day(shared_data, tmp_path_factory) -> dict:
    """The replayed day, stopped at its first filled trade: the folder, the session, the
    status file as read then, and the dashboard's JSON read while the session ran."""
    out = tmp_path_factory.mktemp("dashboard_day")
    cfg = load_run(None, [f'data.bars="{shared_data / "spy_1m_2024-03-26_2025-04-02.parquet"}"',
                          f'data.vix="{shared_data / "vix_1d_1990_2026.parquet"}"',
                          'strategy.instrument="equity"', "report.tearsheet=false"])
    cfg = replay_config(cfg, cfg.data.bars, pd.Timestamp(DAY).date())
    stop, seen = threading.Event(), {}

    def watch() -> None:
        while not stop.is_set():
            for path in out.glob("status_*.json"):
                body = json.loads(path.read_text())        # atomic: never half a file
                if any(t["stage"] in ("open", "scaled") for t in body.get("open_trades", [])):
                    seen["status"] = body
                    seen["live"] = SessionReader(out).snapshot()
                    stop.set()
                    return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = replay(cfg, faults=Faults(drop_streams_every=1.0), log_dir=out,
                    state_path=out / "state.sqlite", stop=stop, keep_positions=True)
    stop.set()
    watcher.join(timeout=5)
    assert "status" in seen, "no status file ever showed a filled trade"
    events = out / f"events_{result.session}.jsonl"
    written = not events.exists()        # the session wrote none: the alerts come later
    if written:
        events.write_text(_events_lines(EVENTS))
    return {"folder": out, "session": result.session, "result": result, "written": written,
            "events": read_events(events), **seen}


# -- the status file -------------------------------------------------------------------------
def test_status_file_shows_the_open_trade_its_orders_regime_streams_and_latency(day):
    status = day["status"]
    assert status["state"] == "running" and status["session"] == day["session"]
    assert status["bar_time"].startswith(DAY) and status["bar_time"].endswith("-04:00")
    (trade,) = status["open_trades"]
    assert trade["side"] == "short" and trade["instrument"] == "shares"
    assert trade["stage"] == "open" and trade["remaining"] == trade["qty"] > 0
    assert trade["stop"] > trade["entry_price"] > trade["target"]       # short: stop above
    assert (trade["stop_reason"], trade["target_reason"]) == ("stop", "tp1")
    ids = status["working_orders"]
    assert {i.rsplit("-", 1)[1] for i in ids} == {"tp1", "stop"}
    assert all(f"-t{trade['trade_id']}-" in i for i in ids)
    account = status["account"]
    assert account["equity"] > 0 and account["day_pnl"] == 0.0     # nothing closed yet
    regime = status["regime"]
    assert regime["name"] == "TRADE_NORMAL" and 13 <= regime["vix"] <= 30
    assert regime["atr_pct"] >= 0.5
    assert {s["state"] for s in status["streams"].values()} <= {"connected", "down"}
    latency = status["latency_ms"]["bar_to_order"]
    assert latency["n"] >= 1 and 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    # every live bar came over the stream or, after one of the drops, over REST (a bar
    # backfilled while the feed is reconnecting is not counted as streamed)
    assert 0 < status["bars_streamed"] <= status["bars"] <= \
        status["bars_streamed"] + status["bars_recovered"]


def test_status_file_ends_with_the_session_end_state(day):
    body = json.loads((day["folder"] / f"status_{day['session']}.json").read_text())
    assert body["state"] == "ended" and body["stopped_by"] == "stop requested"
    assert [t["trade_id"] for t in body["open_trades"]] == \
        [t["trade_id"] for t in day["status"]["open_trades"]]          # kept, with its stop
    assert body["summary"]["open_trades"] == 1 and body["summary"]["trades"] == 0
    assert body["summary"]["orders_sent"] == day["result"].summary["orders_sent"]
    streams = body["streams"]
    assert max(s["connects"] for s in streams.values()) >= 2    # dropped every second


def test_stream_watch_says_down_since_when():
    class Stream:                       # the store's hook protocol (mtbt.alpaca.store)
        def __init__(self) -> None:
            self.on_connect, self.on_disconnect = [], []

    stream, watch = Stream(), StreamWatch()
    watch.attach(stream)
    assert watch.as_dict()["state"] == "connecting"
    stream.on_connect[0]()
    stream.on_disconnect[0]()
    down = watch.as_dict()
    assert down["state"] == "down" and not down["connected"] and down["down_since"]
    stream.on_connect[0]()
    assert watch.as_dict() | {"since": None} == {"state": "connected", "connected": True,
                                                 "down_since": None, "since": None,
                                                 "connects": 2}


def test_lot_view_levels_of_the_scaling_exits_and_of_a_condor():
    from types import SimpleNamespace

    from mtbt.exits import ExitRules, Lot, Stage
    from mtbt.live.status import lot_view
    from mtbt.options.structures import iron_condor

    rules = ExitRules()
    lot = Lot(3, 1, 10, entry_price=500.0, remaining=5, stage=Stage.SCALED, stop=500.0,
              stop_reason="breakeven")
    view = lot_view(SimpleNamespace(rules=rules, p=SimpleNamespace()), lot, 503.0)
    assert (view["stage"], view["stop"], view["stop_reason"]) == ("scaled", 500.0, "breakeven")
    assert view["target_reason"] == "tp2" and view["target"] == round(500 * (1 + rules.tp2_pct), 2)
    condor = iron_condor(pd.Timestamp(DAY).date(), 540.0, 550.0, 5.0)
    lot = Lot(4, -1, 2, entry_price=545.0, remaining=2, stage=Stage.OPEN, structure=condor,
              premium=-1.2)
    strat = SimpleNamespace(rules=rules, p=SimpleNamespace(profit_target=0.5, stop_loss=2.0))
    view = lot_view(strat, lot, 545.5)
    assert view["levels_on"] == "premium" and view["label"] == condor.label
    assert (view["target"], view["stop"]) == (-0.6, -3.6)     # half the credit; 2x more


# -- what the dashboard reads ------------------------------------------------------------------
def test_dashboard_json_read_while_the_session_runs(day):
    live = day["live"]
    assert live["session"] == day["session"] and live["status"]["state"] == "running"
    (trade,) = live["status"]["open_trades"]
    assert trade["stage"] == "open"
    # the state file, opened read-only while the session held it: what each order is
    orders = live["state"]["orders"]
    assert set(orders) == set(live["status"]["working_orders"])
    assert any(o["order"].startswith("buy") and "stop" in o["order"] for o in orders.values())
    assert live["state"]["day"] == DAY and "error" not in live["state"]
    assert len(live["equity"]) >= 10 and all(p[0].startswith(DAY) for p in live["equity"])


def test_events_file_missing_or_torn(tmp_path):
    assert read_events(tmp_path / "events_PAPER_20240802_093000.jsonl") == []
    path = tmp_path / "events.jsonl"
    path.write_text("not json\n[1, 2]\n" + _events_lines(EVENTS))
    assert [e["event"] for e in read_events(path)] == [e["event"] for e in EVENTS]
    assert read_events(path, limit=1) == [{k: EVENTS[-1][k] for k in ("time", "event", "text")}]


def test_session_choice_and_its_one_line_errors(tmp_path, capsys):
    for name in ("status_PAPER_20240801_093000.json", "paper_trading_PAPER_20240802_093000.log",
                 "status_PAPER_19990101_000000.json.part", "notes.txt"):
        (tmp_path / name).write_text("{}")
    assert pick_session(tmp_path) == "PAPER_20240802_093000"
    assert pick_session(tmp_path, "PAPER_20240801_093000") == "PAPER_20240801_093000"
    for wanted, message in (("PAPER_20240803_093000", "no session PAPER_20240803_093000"),
                            ("../state", "not a session id")):
        with pytest.raises(DashboardError, match=message):
            pick_session(tmp_path, wanted)
    cases = ((["--log-dir", str(tmp_path / "nope")], "no such log folder"),
             (["--log-dir", str(tmp_path / "nope2")], "no such log folder"))
    (tmp_path / "empty").mkdir()
    cases += ((["--log-dir", str(tmp_path / "empty")], "no paper session in"),)
    for args, message in cases:
        assert main(["dashboard", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_port_in_use_is_one_line(tmp_path, capsys):
    (tmp_path / "status_PAPER_20240802_093000.json").write_text("{}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", "--log-dir", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err and len(err.strip().splitlines()) == 1


# -- over HTTP -------------------------------------------------------------------------------
class Served:
    """A dashboard server on a free loopback port, in a thread."""

    def __init__(self, folder: Path, token: str | None = None, **kw) -> None:
        self.server = make_server(folder, port=0, token=token, refresh=0.5, **kw)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def get(self, path: str, method: str = "GET", **headers) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        return response.status, body


def test_json_endpoint_serves_whitelisted_redacted_fields_and_no_file(day, monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", SECRET)
    monkeypatch.setenv("MTBT_ALERT_WEBHOOK", "https://hooks.slack.com/services/T0/B0/XYZ")
    folder = day["folder"]
    with Served(folder) as served:
        code, text = served.get("/api/status")
        assert code == 200
        body = json.loads(text)
        assert set(body) == {"session", "sessions", "now", "status", "state", "equity",
                             "events", "closed_trades"}
        assert body["session"] == day["session"] and body["status"]["state"] == "ended"
        assert set(body["status"]["open_trades"][0]) <= {
            "trade_id", "side", "instrument", "label", "qty", "remaining", "stage",
            "entry_price", "entry_time", "premium", "levels_on", "stop", "stop_reason",
            "target", "target_reason", "last", "mark"}
        assert [e["event"] for e in body["events"]] == [e["event"] for e in day["events"]]
        assert SECRET not in text and "hooks.slack.com" not in text
        if day["written"]:
            assert "(key ***)" in text
        for path in ("/state.sqlite", "/../state.sqlite", f"/status_{day['session']}.json",
                     "/api/../state.sqlite", "/%2e%2e/etc/passwd", "/api/status/../../x"):
            code, text = served.get(path)
            assert code == 404 and "SQLite" not in text, path
        assert served.get("/api/status", method="POST")[0] == 405
        assert served.get("/api/status", Host="evil.example:80")[0] == 403   # rebinding
        code, page = served.get("/")
        assert code == 200 and "<svg" in page and "cdn" not in page.lower()
    assert body["state"]["day"] == DAY and body["state"]["orders"]
    assert sorted(p.name for p in folder.glob("state.sqlite*")) == \
        ["state.sqlite", "state.sqlite.lock"]             # read as it stands: nothing added


def test_token_rules(day, monkeypatch):
    monkeypatch.delenv("MTBT_DASHBOARD_TOKEN", raising=False)
    assert token_for("127.0.0.1") == (None, False)
    assert token_for("::1") == (None, False)
    token, generated = token_for("0.0.0.0")
    assert generated and len(token) >= 16 and token != token_for("0.0.0.0")[0]
    monkeypatch.setenv("MTBT_DASHBOARD_TOKEN", TOKEN)
    assert token_for("0.0.0.0") == (TOKEN, False) and token_for("127.0.0.1") == (TOKEN, False)
    monkeypatch.setenv("MTBT_DASHBOARD_TOKEN", "short")
    with pytest.raises(DashboardError, match="at least 16"):
        token_for("0.0.0.0")
    with pytest.raises(DashboardError, match="token is required"):
        make_server(day["folder"], host="0.0.0.0", port=0, token=None)
    with Served(day["folder"], token=TOKEN) as served:
        assert served.get("/api/status")[0] == 401
        assert served.get("/")[0] == 401
        assert served.get("/api/status?token=" + TOKEN[:-1] + "x")[0] == 401
        assert served.get("/api/status", **{"X-Mtbt-Token": "wrong"})[0] == 401
        assert served.get(f"/api/status?token={TOKEN}")[0] == 200
        assert served.get("/api/status", **{"X-Mtbt-Token": TOKEN})[0] == 200
        assert served.get("/api/status", Authorization=f"Bearer {TOKEN}")[0] == 200
        code, text = served.get(f"/api/status?token={TOKEN}")
        assert TOKEN not in text


def test_redactor_replaces_env_keys_and_webhooks():
    redact = Redactor({"POLYGON_API_KEY": "polykey123"})
    assert redact({"a": ["x polykey123 y", 3], "b": "see https://discord.com/api/webhooks/1/abc"}) \
        == {"a": ["x *** y", 3], "b": "see ***"}


# -- in a real browser -----------------------------------------------------------------------
def _browser():
    """Headless Chromium under selenium, or a skip saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install '.[test]')")
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)),
                  None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("headless Chromium not found: apt-get install chromium chromium-driver "
                    f"(chromium: {binary or 'missing'}, chromedriver: {driver or 'missing'})")
    return webdriver, Options, Service, binary, driver


def test_page_renders_the_open_trade_and_the_alert_in_chromium(day, tmp_path, monkeypatch):
    webdriver, Options, Service, binary, driver_path = _browser()
    monkeypatch.setenv("ALPACA_API_KEY", SECRET)         # the dashboard redacts what it knows
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = Options()
    options.binary_location = binary
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,1320", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    with Served(day["folder"], token=TOKEN) as served:
        browser = webdriver.Chrome(service=Service(executable_path=driver_path),
                                   options=options)
        try:
            browser.get(f"http://127.0.0.1:{served.port}/?token={TOKEN}")   # the JS sends it
            WebDriverWait(browser, 20).until(
                lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))
            trade = day["status"]["open_trades"][0]
            row = browser.find_element(
                By.CSS_SELECTOR, f"#open-trades tr[data-trade-id='{trade['trade_id']}']")
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            assert cells[:2] == [f"#{trade['trade_id']}", "short"] and cells[4] == "open"
            assert cells[6] == f"{trade['stop']:.2f} (stop)"
            assert cells[7] == f"{trade['target']:.2f} (tp1)"
            alerts = browser.find_element(By.ID, "alerts").text
            assert day["events"] and day["events"][-1]["text"].split(" (key")[0] in alerts
            assert SECRET not in browser.page_source
            assert browser.find_element(By.ID, "state").text.startswith("ended")
            orders = browser.find_element(By.ID, "orders").text
            assert all(cid in orders for cid in day["status"]["working_orders"])
            assert "oco limit" in orders
            assert browser.find_elements(By.CSS_SELECTOR, "#equity polyline")
            assert "TRADE_NORMAL" in browser.find_element(By.ID, "regime").text
            shot = (ROOT / "docs" / "dashboard.png" if os.environ.get("MTBT_SCREENSHOT")
                    else tmp_path / "dashboard.png")
            shot.parent.mkdir(exist_ok=True)
            assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        finally:
            browser.quit()


def test_latency_figures_are_linear_percentiles_in_milliseconds():
    from mtbt.live.status import latency_ms

    assert latency_ms([]) == {"n": 0, "p50": None, "p99": None, "max": None}
    got = latency_ms([0.001 * k for k in range(1, 102)])        # 1 .. 101 ms
    assert got == {"n": 101, "p50": 51.0, "p99": 100.0, "max": 101.0}
    assert latency_ms([0.002, 0.001]) == {"n": 2, "p50": 1.5, "p99": 1.99, "max": 2.0}
