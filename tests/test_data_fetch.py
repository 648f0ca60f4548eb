"""``mtbt data fetch``: the real SDK clients against local fake Polygon and Alpaca servers."""
from __future__ import annotations

import datetime as dt
import functools
import http.server
import re
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import feeds.download as download
from feeds.parquet import read_bars, read_daily
from mtbt.cli import main
from mtbt.sessions import NY, sessions
from tests.fakes.alpaca_data_server import AlpacaDataServer
from tests.fakes.polygon_server import PolygonServer

KEY, SECRET = "test-key", "test-secret"
ENV = ("POLYGON_API_KEY", "ALPACA_API_KEY", "ALPACA_SECRET_KEY", "MTBT_POLYGON_URL",
       "MTBT_ALPACA_DATA_URL", "MTBT_ALPACA_TRADING_URL")
JAN30, FEB1, MAR1 = dt.date(2024, 1, 30), dt.date(2024, 2, 1), dt.date(2024, 3, 1)
RANGE = ["--start", "2024-01-30", "--end", "2024-03-04"]          # three monthly chunks


@functools.cache
def _minute_bars(first: dt.date, last: dt.date) -> tuple[dict, ...]:
    stamps = [pd.date_range(f"{day} 09:00", f"{day} 16:30", freq="1min", inclusive="left",
                            tz=NY) for day in sessions(first, last)]
    times = stamps[0].append(stamps[1:]).as_unit("ms").asi8
    bars = []
    for i, t in enumerate(times.tolist()):
        base = round(100 + 0.01 * (i % 997), 2)
        bars.append({"t": t, "o": base, "h": round(base + 0.05, 2), "l": round(base - 0.03, 2),
                     "c": round(base + 0.01, 2), "v": float(100 + i % 50), "vw": base, "n": 3})
    return tuple(bars)


def minute_bars(first: dt.date, last: dt.date) -> list[dict]:
    """Deterministic minute bars, 09:00 to 16:30 New York, on the XNYS sessions first..last."""
    return list(_minute_bars(first, last))


def expected(bars: list[dict], *, extended: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame({"open": [b["o"] for b in bars], "high": [b["h"] for b in bars],
                          "low": [b["l"] for b in bars], "close": [b["c"] for b in bars],
                          "volume": [b["v"] for b in bars]},
                         index=pd.to_datetime([b["t"] for b in bars], unit="ms", utc=True)
                         .tz_convert(NY).as_unit("ns").rename("timestamp"))
    if not extended:
        wall = frame.index.strftime("%H:%M")
        frame = frame[(wall >= "09:30") & (wall < "16:00")]
    return frame


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    """No real keys or URLs from the environment; ~1 s timeouts and tiny retry waits."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(download, "TIMEOUT", (1.0, 0.5))
    monkeypatch.setattr(download, "RETRY", download.RetryPolicy(attempts=3, wait=0.01,
                                                                max_wait=0.05))


@pytest.fixture
def polygon(monkeypatch):
    with PolygonServer(forbidden=("forbidden-key-456",), page_size=2000) as server:
        server.add_bars("SPY", "minute", minute_bars(JAN30, dt.date(2024, 3, 4)))
        monkeypatch.setenv("POLYGON_API_KEY", KEY)
        monkeypatch.setenv("MTBT_POLYGON_URL", server.url)
        yield server


@pytest.fixture
def alpaca(monkeypatch):
    with AlpacaDataServer(forbidden=("forbidden-key-456",), page_size=3000) as server:
        server.add_bars("SPY", "minute", minute_bars(JAN30, dt.date(2024, 3, 4)))
        monkeypatch.setenv("ALPACA_API_KEY", KEY)
        monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
        monkeypatch.setenv("MTBT_ALPACA_DATA_URL", server.url)
        yield server


def fetch(out: Path, *args: str, symbol: str = "SPY") -> int:
    return main(["data", "fetch", symbol, *args, "--out", str(out)])


def one_error_line(capsys, *secrets: str) -> str:
    cap = capsys.readouterr()
    lines = [line for line in cap.err.strip().splitlines()      # retries are shown as they
             if not re.search(r" attempt \d+ of \d+ failed .*; again in ", line)]   # happen
    assert len(lines) == 1 and lines[0].startswith("mtbt: error: "), cap.err
    assert "Traceback" not in cap.err
    for secret in (KEY, SECRET, *secrets):
        assert secret not in cap.out + cap.err
    return lines[0]


def test_polygon_minute_bars_in_chunks_and_pages_regular_session_only(polygon, tmp_path,
                                                                       capsys):
    out = tmp_path / "spy.parquet"
    assert fetch(out, *RANGE) == 0
    bars = read_bars(out)
    pd.testing.assert_frame_equal(bars, expected(polygon.bars[("SPY", "minute")]))
    assert bars.index[0] == pd.Timestamp("2024-01-30 09:30", tz=NY)
    assert {r.chunk_start for r in polygon.requests} == {JAN30, FEB1, MAR1}
    assert sum(r.chunk_start == FEB1 for r in polygon.requests) > 1      # paginated
    assert all(r.path.startswith("/v2/aggs/ticker/SPY/range/1/minute/") for r in polygon.requests)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spy.parquet"]  # no parts, no temp
    cap = capsys.readouterr()
    assert cap.err == "" and f"{len(bars):,} minute bars" in cap.out and KEY not in cap.out


def test_extended_keeps_pre_and_post_market_bars(polygon, tmp_path):
    out = tmp_path / "spy.parquet"
    assert fetch(out, *RANGE, "--extended") == 0
    pd.testing.assert_frame_equal(read_bars(out),
                                  expected(polygon.bars[("SPY", "minute")], extended=True))


def test_polygon_daily_index_bars_with_the_default_out(polygon, tmp_path, monkeypatch, capsys):
    days = pd.date_range("2019-12-16", "2020-01-10", freq="B", tz=NY)
    polygon.add_bars("I:VIX", "day", [{"t": int(d.timestamp() * 1000), "o": 13.0 + i,
                                       "h": 14.5 + i, "l": 12.5 + i, "c": 14.0 + i}
                                      for i, d in enumerate(days)])
    monkeypatch.chdir(tmp_path)
    assert main(["data", "fetch", "I:VIX", "--timespan", "day", "--start", "2019-12-20",
                 "--end", "2020-01-10"]) == 0
    out = tmp_path / "data" / "I_VIX_day_2019-12-20_2020-01-10.parquet"
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert str(frame["timestamp"].dt.tz) == NY
    assert (frame["timestamp"].dt.strftime("%H:%M") == "00:00").all()
    assert (frame["volume"] == 0.0).all() and (frame.dtypes.iloc[1:] == "float64").all()
    closes = read_daily(out)
    assert closes.index[0] == pd.Timestamp("2019-12-20") and closes.iloc[0] == 18.0
    assert len(closes) == len(days) - 4
    assert {r.path.split("/")[4] for r in polygon.requests} == {"I:VIX"}   # sent verbatim
    assert len({r.chunk_start for r in polygon.requests}) == 2             # 2010s, 2020s
    assert "I_VIX_day" in capsys.readouterr().out


def test_hour_bars_by_year_keep_those_starting_in_the_session(polygon, tmp_path):
    hours = [ts for day in ("2023-12-29", "2024-01-02")
             for ts in pd.date_range(f"{day} 04:00", f"{day} 19:00", freq="1h", tz=NY)]
    polygon.add_bars("SPY", "hour", [{"t": int(ts.timestamp() * 1000), "o": 470.0, "h": 471.0,
                                      "l": 469.0, "c": 470.5, "v": 1e6} for ts in hours])
    out = tmp_path / "spy_1h.parquet"
    assert fetch(out, "--timespan", "hour", "--start", "2023-12-29", "--end", "2024-01-02") == 0
    bars = read_bars(out)
    assert sorted(set(bars.index.strftime("%H:%M"))) == [f"{h}:00" for h in range(10, 16)]
    assert len(bars) == 12 and len({r.chunk_start for r in polygon.requests}) == 2


def test_alpaca_minute_bars(alpaca, tmp_path):
    out = tmp_path / "spy.parquet"
    assert fetch(out, *RANGE, "--source", "alpaca") == 0
    pd.testing.assert_frame_equal(read_bars(out), expected(alpaca.bars[("SPY", "minute")]))
    assert any("page_token" in r.query for r in alpaca.requests)
    first = alpaca.requests[0]
    assert first.query["timeframe"] == "1Min" and first.query["symbols"] == "SPY"
    assert first.headers["APCA-API-KEY-ID"] == KEY


@pytest.mark.parametrize("source", ["polygon", "alpaca"])
@pytest.mark.parametrize("fault", [429, 500, 503, "slow", "drop"])
def test_transient_faults_are_retried(source, fault, request, tmp_path):
    server = request.getfixturevalue(source)
    server.slow_seconds = 30.0        # without a working read timeout this test would hang
    server.fail(fault, times=1)
    out = tmp_path / "spy.parquet"
    began = time.monotonic()
    assert fetch(out, "--start", "2024-02-05", "--end", "2024-02-06", "--source", source) == 0
    assert time.monotonic() - began < 10
    assert [r.fault for r in server.requests[:2]] == [fault, None]
    assert len(read_bars(out)) == 2 * 390


def test_polygon_errors_are_retried_by_our_loop_only_and_each_retry_is_shown(polygon,
                                                                            tmp_path, capsys):
    polygon.fail(500, times=2)             # the SDK's pool does not retry: one try each
    out = tmp_path / "spy.parquet"
    assert fetch(out, "--start", "2024-02-05", "--end", "2024-02-05") == 0
    assert [r.status for r in polygon.requests] == [500] * 2 + [200]
    err = capsys.readouterr().err
    assert "attempt 1 of 3 failed" in err and "attempt 2 of 3 failed" in err


def test_a_server_that_never_answers_fails_within_the_attempts_read_timeouts(polygon,
                                                                             tmp_path, capsys):
    polygon.slow_seconds = 60.0
    polygon.fail("slow", times=None)
    began = time.monotonic()
    assert fetch(tmp_path / "spy.parquet", "--start", "2024-02-05", "--end", "2024-02-05") == 2
    assert time.monotonic() - began < 3 * 0.5 + 5          # 3 attempts x 0.5 s read timeout
    assert len(polygon.requests) == 3
    assert "no answer within 0.5 s (read timeout)" in capsys.readouterr().err


def test_an_interrupted_run_resumes_without_refetching_finished_chunks(polygon, tmp_path,
                                                                        monkeypatch, capsys):
    monkeypatch.setattr(download, "RETRY", download.RetryPolicy(attempts=2, wait=0.01))
    polygon.fail(500, times=None, when=lambda r: r.chunk_start == FEB1)
    out = tmp_path / "spy.parquet"
    assert fetch(out, *RANGE) == 2
    line = one_error_line(capsys)
    assert "chunk 2024-02-01..2024-02-29" in line and "rerun" in line
    assert not out.exists()
    parts = tmp_path / "spy.parquet.parts"
    assert sorted(p.name for p in parts.iterdir()) == ["2024-01-30_2024-01-31.parquet",
                                                       "manifest.json"]
    polygon.clear_faults()
    seen = len(polygon.requests)
    assert fetch(out, *RANGE) == 0
    again = {r.chunk_start for r in polygon.requests[seen:]}
    assert again == {FEB1, MAR1}                             # January was not fetched again
    pd.testing.assert_frame_equal(read_bars(out), expected(polygon.bars[("SPY", "minute")]))
    assert not parts.exists()
    assert "1 chunk(s) resumed" in capsys.readouterr().out


def test_parts_of_another_request_are_refused(polygon, tmp_path, capsys):
    polygon.fail(403, times=None, when=lambda r: r.chunk_start == FEB1)
    out = tmp_path / "spy.parquet"
    assert fetch(out, *RANGE) == 2                           # January's part is kept
    capsys.readouterr()
    seen = len(polygon.requests)
    assert fetch(out, *RANGE, "--extended") == 2
    line = one_error_line(capsys)
    assert "spy.parquet.parts" in line and "delete that folder" in line
    assert "extended False there, True now" in line
    assert len(polygon.requests) == seen                     # nothing was requested


@pytest.mark.parametrize("case, args, env, message", [
    ("missing key", RANGE, {"POLYGON_API_KEY": ""}, "POLYGON_API_KEY not set"),
    ("unknown symbol", [*RANGE, "--timespan", "day"], {}, "no day bars for NOPE"),
    ("start after end", ["--start", "2024-02-02", "--end", "2024-02-01"], {},
     "empty range: start 2024-02-02 is after end 2024-02-01"),
    ("weekend", ["--start", "2024-02-03", "--end", "2024-02-04"], {}, "no minute bars for"),
    ("bad date", ["--start", "2024-02-30", "--end", "2024-03-01"], {}, "is not a date"),
    ("401", RANGE, {"POLYGON_API_KEY": "wrong-key-123"}, "refused the API key (HTTP 401"),
    ("403", RANGE, {"POLYGON_API_KEY": "forbidden-key-456"}, "HTTP 403: You are not entitled"),
])
def test_polygon_errors_are_one_line(case, args, env, message, polygon, tmp_path, capsys,
                                     monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    symbol = "NOPE" if case == "unknown symbol" else "SPY"
    out = tmp_path / "x.parquet"
    assert fetch(out, *args, symbol=symbol) == 2
    assert message in one_error_line(capsys, "wrong-key-123", "forbidden-key-456")
    assert sorted(tmp_path.iterdir()) == []                  # no file, no parts folder


def test_a_refused_connection_is_not_called_a_timeout(polygon, tmp_path, capsys,
                                                      monkeypatch):
    with socket.socket() as probe:           # a port nobody listens on (bound, then closed)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MTBT_POLYGON_URL", f"http://127.0.0.1:{port}")
    assert fetch(tmp_path / "x.parquet", *RANGE) == 2
    line = one_error_line(capsys)
    assert "cannot connect (connection refused or host unreachable)" in line
    assert "timeout" not in line


def test_an_out_folder_for_a_bar_file_is_refused_before_any_request(polygon, tmp_path,
                                                                     capsys):
    assert fetch(tmp_path, *RANGE) == 2
    assert f"--out {tmp_path} is a folder: name the parquet file" in one_error_line(capsys)
    assert polygon.requests == [] and sorted(tmp_path.iterdir()) == []


def test_a_base_url_that_is_no_url_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    monkeypatch.setenv("MTBT_POLYGON_URL", "notaurl")
    assert fetch(tmp_path / "x.parquet", *RANGE) == 2
    assert "MTBT_POLYGON_URL=notaurl: expected a base URL" in one_error_line(capsys)


def test_a_web_page_answer_is_not_called_an_unknown_symbol(tmp_path, capsys, monkeypatch):
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:           # noqa: N802 - the handler's name
            body = b"<!DOCTYPE html><html><body>Not here</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("POLYGON_API_KEY", KEY)
        monkeypatch.setenv("MTBT_POLYGON_URL", f"http://127.0.0.1:{server.server_port}")
        assert fetch(tmp_path / "x.parquet", *RANGE) == 2
    finally:
        server.shutdown()
        server.server_close()
    line = one_error_line(capsys)
    assert "HTTP 404 with a web page, not an API answer" in line and "symbol" not in line


def test_polygon_404_is_an_unknown_symbol(polygon, tmp_path, capsys):
    polygon.not_found.add("ZZZZ")
    assert fetch(tmp_path / "z.parquet", *RANGE, symbol="ZZZZ") == 2
    assert "does not know the symbol ZZZZ (HTTP 404" in one_error_line(capsys)


@pytest.mark.parametrize("env, message", [
    ({"ALPACA_SECRET_KEY": ""}, "ALPACA_SECRET_KEY not set"),
    ({"ALPACA_API_KEY": "wrong-key-123"}, "Alpaca refused the API key (HTTP 401"),
    ({"ALPACA_API_KEY": "forbidden-key-456"}, "HTTP 403: subscription does not permit"),
])
def test_alpaca_errors_are_one_line(env, message, alpaca, tmp_path, capsys, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert fetch(tmp_path / "x.parquet", *RANGE, "--source", "alpaca") == 2
    assert message in one_error_line(capsys, "wrong-key-123", "forbidden-key-456")


def test_help_documents_the_environment(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "fetch", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for word in ("--timespan", "--source", "--extended", "MTBT_POLYGON_URL",
                 "MTBT_ALPACA_DATA_URL", "POLYGON_API_KEY", "ALPACA_SECRET_KEY"):
        assert word in text


def test_chunks_follow_calendar_months_years_and_decades():
    plan = download.plan_chunks
    assert plan(dt.date(2024, 1, 30), dt.date(2024, 3, 4), "minute") == [
        (dt.date(2024, 1, 30), dt.date(2024, 1, 31)), (FEB1, dt.date(2024, 2, 29)),
        (MAR1, dt.date(2024, 3, 4))]
    assert plan(dt.date(2023, 12, 5), dt.date(2024, 2, 1), "hour") == [
        (dt.date(2023, 12, 5), dt.date(2023, 12, 31)), (dt.date(2024, 1, 1), FEB1)]
    assert len(plan(dt.date(1990, 1, 2), dt.date(2026, 7, 31), "day")) == 4
