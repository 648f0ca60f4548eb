"""``mtbt data fetch SYMBOL --options``: the real Polygon and Alpaca SDK clients against the
local fake servers, writing the options bar store session by session."""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pandas as pd
import pytest

import feeds.download as download
from feeds.options_fetch import expiry_limit
from feeds.options_store import read_option_bars
from mtbt.cli import main
from mtbt.sessions import NY, sessions
from tests.fakes import alpaca_data_server, polygon_server
from tests.fakes.alpaca_data_server import AlpacaDataServer
from tests.fakes.polygon_server import PolygonServer
from tests.test_data_fetch import KEY, SECRET, fast

__all__ = ["fast"]       # the autouse fixture: no keys or URLs from the environment, quick
D1, D2, D3, FRI, MON = (dt.date(2024, 2, 5), dt.date(2024, 2, 6), dt.date(2024, 2, 7),
                        dt.date(2024, 2, 9), dt.date(2024, 2, 12))
OPENS = {D1: 494.0, D2: 496.5, D3: 497.0, FRI: 500.0}     # the underlying's 09:30 open
EXPIRIES = (D1, D2, D3, dt.date(2024, 2, 8), FRI, MON)
STRIKES = range(480, 511)
TRADED = (D1, D2, FRI)                     # option bars exist on these sessions only
MINUTES = ("09:29", "09:30", "09:31", "10:00", "15:59", "16:14", "16:15")
IN_SESSION = ("09:30", "09:31", "10:00", "15:59", "16:14")
MONEYNESS = 0.01


def _ms(day: dt.date, hhmm: str) -> int:
    return int(pd.Timestamp(f"{day} {hhmm}", tz=NY).timestamp() * 1000)


def underlying_bars() -> list[dict]:
    """SPY minute bars 09:25-09:44; the 09:25 pre-market bar is a trap for the open."""
    bars = []
    for day, open_ in OPENS.items():
        for i, t in enumerate(pd.date_range(f"{day} 09:25", periods=20, freq="1min", tz=NY)):
            o = 470.0 if i == 0 else open_ + 0.01 * (i - 5)
            bars.append({"t": int(t.timestamp() * 1000), "o": o, "h": o + 0.2, "l": o - 0.2,
                         "c": o + 0.05, "v": 1000.0, "vw": o, "n": 10})
    return bars


def occ(expiry: dt.date, right: str, strike: int) -> str:
    return f"SPY{expiry:%y%m%d}{right}{strike * 1000:08d}"


def option_bars(expiry: dt.date, right: str, strike: int) -> list[dict]:
    """Bars of one contract on each traded session up to its expiry; the contracts at
    strike 493 never trade (selected, but no bars)."""
    if strike == 493:
        return []
    bars = []
    for day in (d for d in TRADED if d <= expiry):
        for i, hhmm in enumerate(MINUTES):
            o = round(1.0 + 0.1 * (strike - 480) + 0.01 * i + (0.5 if right == "P" else 0), 2)
            bars.append({"t": _ms(day, hhmm), "o": o, "h": round(o + 0.05, 2),
                         "l": round(o - 0.04, 2), "c": round(o + 0.02, 2),
                         "v": float(5 + i), "vw": round(o + 0.01, 2), "n": 2 + i})
    return bars


def expected_rows(day: dt.date, dte: int) -> list[tuple]:
    """What the store file of ``day`` must hold, worked out from the rules, not the code."""
    open_ = OPENS[day]
    lo, hi = open_ * (1 - MONEYNESS), open_ * (1 + MONEYNESS)
    expiries = list(sessions(day, day + dt.timedelta(days=14)))[:dte + 1]
    rows = []
    for expiry in expiries:
        for right in "CP":
            for strike in STRIKES:
                if not lo <= strike <= hi:
                    continue
                for b in option_bars(expiry, right, strike):
                    when = pd.Timestamp(b["t"], unit="ms", tz="UTC").tz_convert(NY)
                    if when.date() == day and when.strftime("%H:%M") in IN_SESSION:
                        rows.append((when, occ(expiry, right, strike), expiry, right,
                                     float(strike), b["o"], b["h"], b["l"], b["c"], b["v"],
                                     b["vw"], float(b["n"])))
    return sorted(rows, key=lambda r: (r[1], r[0]))


def file_rows(path: Path) -> list[tuple]:
    df = read_option_bars(path)
    return [tuple(r) for r in df.itertuples(index=False)]


def _chain(contract, add_bars) -> list:
    """SPY's contracts of every expiry and strike (``contract(root, expiry, right, strike)``
    in a fake's format), their bars given to ``add_bars(occ symbol, bars)``."""
    contracts = []
    for expiry in EXPIRIES:
        for right in "CP":
            for strike in STRIKES:
                contracts.append(contract("SPY", expiry, right, strike))
                add_bars(occ(expiry, right, strike), option_bars(expiry, right, strike))
    return contracts


@pytest.fixture
def polygon(monkeypatch):
    with PolygonServer(forbidden=("forbidden-key-456",), page_size=3) as server:
        server.contracts_page_size = 7
        server.add_bars("SPY", "minute", underlying_bars())
        server.add_contracts(_chain(polygon_server.option_contract, lambda symbol, bars:
                                    server.add_bars(f"O:{symbol}", "minute", bars)))
        monkeypatch.setenv("POLYGON_API_KEY", KEY)
        monkeypatch.setenv("MTBT_POLYGON_URL", server.url)
        yield server


@pytest.fixture
def alpaca(monkeypatch):
    with AlpacaDataServer(forbidden=("forbidden-key-456",), page_size=7) as server:
        server.contracts_page_size = 7
        server.add_bars("SPY", "minute", underlying_bars())
        server.add_contracts(_chain(alpaca_data_server.option_contract,
                                    server.add_option_bars))
        monkeypatch.setenv("ALPACA_API_KEY", KEY)
        monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
        monkeypatch.setenv("MTBT_ALPACA_DATA_URL", server.url)
        monkeypatch.setenv("MTBT_ALPACA_TRADING_URL", server.url)   # contracts live there
        yield server


def fetch(out: Path, source: str, *args: str, start: dt.date = D1, end: dt.date = D2,
          symbol: str = "SPY") -> int:
    return main(["data", "fetch", symbol, "--options", "--start", str(start), "--end",
                 str(end), "--moneyness", str(MONEYNESS), "--source", source,
                 "--out", str(out), *args])


def one_error_line(capsys) -> str:
    cap = capsys.readouterr()
    lines = [line for line in cap.err.strip().splitlines() if line.startswith("mtbt: error")]
    assert len(lines) == 1, cap.err
    assert cap.err.strip().splitlines()[-1] == lines[0] and "Traceback" not in cap.err
    for secret in (KEY, SECRET, "wrong-key-123", "forbidden-key-456"):
        assert secret not in cap.out + cap.err
    return lines[0]


def every_file(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def is_contracts(r) -> bool:
    return r.path in ("/v3/reference/options/contracts", "/v2/options/contracts")


def is_option_bars(r) -> bool:
    return r.path.startswith("/v2/aggs/ticker/O:") or r.path == "/v1beta1/options/bars"


@pytest.mark.parametrize("source", ["polygon", "alpaca"])
def test_two_sessions_write_the_expected_files_and_rows(source, request, tmp_path, capsys):
    server = request.getfixturevalue(source)
    assert fetch(tmp_path, source) == 0
    assert every_file(tmp_path) == ["SPY/2024-02-05.parquet", "SPY/2024-02-06.parquet"]
    for day in (D1, D2):
        rows = file_rows(tmp_path / "SPY" / f"{day}.parquet")
        assert rows == expected_rows(day, dte=0)
        assert {r[2] for r in rows} == {day}                       # 0DTE: its own expiry
        assert len(rows) == len(IN_SESSION) * 2 * len(
            [k for k in STRIKES if k != 493 and abs(k / OPENS[day] - 1) <= MONEYNESS])
    cap = capsys.readouterr()
    err = cap.err.splitlines()
    assert "2024-02-05: SPY open 494, 18 contracts expiring 2024-02-05" in err[0]
    assert "489.06..498.94" in err[0]
    assert err[1].startswith("2024-02-05: 80 bars of 16 contracts (2 without trades) -> ")
    assert err[3].startswith("2024-02-06: 90 bars of 18 contracts (2 without trades) -> ")
    assert "2 session(s) written (170 bars of 34 contracts), 0 already there" in cap.out
    listings = [r for r in server.requests if is_contracts(r)]
    bar_requests = [r for r in server.requests if is_option_bars(r)]
    if source == "polygon":
        first = listings[0].query
        assert first["as_of"] == "2024-02-05" and first["underlying_ticker"] == "SPY"
        assert first["expiration_date.gte"] == first["expiration_date.lte"] == "2024-02-05"
        assert float(first["strike_price.gte"]) == pytest.approx(494 * 0.99)
        assert float(first["strike_price.lte"]) == pytest.approx(494 * 1.01)
        assert "expired" not in first
        assert any("cursor" in r.query for r in listings)              # contract pages
        assert any("cursor" in r.query for r in bar_requests)          # bar pages
        assert len({r.path.split("/")[4] for r in bar_requests}) == 18 + 20
    else:
        first = listings[0].query
        assert first["status"] == "inactive" and first["underlying_symbols"] == "SPY"
        assert first["expiration_date_gte"] == first["expiration_date_lte"] == "2024-02-05"
        assert float(first["strike_price_gte"]) == pytest.approx(494 * 0.99, abs=1e-4)
        assert any("page_token" in r.query for r in listings)          # contract pages
        assert any("page_token" in r.query for r in bar_requests)      # bar pages
        assert bar_requests[0].query["timeframe"] == "1Min"
        assert len(bar_requests[0].query["symbols"].split(",")) == 18
        assert all(r.headers["APCA-API-KEY-ID"] == KEY for r in server.requests)


@pytest.mark.parametrize("source", ["polygon", "alpaca"])
def test_dte_takes_the_next_sessions_expiries_across_a_weekend(source, request, tmp_path):
    request.getfixturevalue(source)
    assert fetch(tmp_path, source, "--dte", "1", start=D1, end=D1) == 0
    rows = file_rows(tmp_path / "SPY" / "2024-02-05.parquet")
    assert rows == expected_rows(D1, dte=1)
    assert {r[2] for r in rows} == {D1, D2}                  # not D3: one session ahead only
    assert fetch(tmp_path, source, "--dte", "1", start=FRI, end=FRI) == 0
    rows = file_rows(tmp_path / "SPY" / "2024-02-09.parquet")
    assert {r[2] for r in rows} == {FRI, MON} and rows == expected_rows(FRI, dte=1)
    lo, hi = OPENS[FRI] * (1 - MONEYNESS), OPENS[FRI] * (1 + MONEYNESS)
    assert all(lo <= r[4] <= hi for r in rows)
    assert {r[4] for r in rows} == {float(k) for k in range(495, 506)}


def test_expiry_limit_counts_sessions_not_days():
    by_day = sessions(D1, MON)
    assert expiry_limit(by_day[D1], 0) == D1
    assert expiry_limit(by_day[FRI], 1) == MON
    assert expiry_limit(by_day[FRI], 3) == dt.date(2024, 2, 14)
    assert expiry_limit(sessions(dt.date(2024, 3, 28), dt.date(2024, 3, 28))[
        dt.date(2024, 3, 28)], 1) == dt.date(2024, 4, 1)         # Good Friday is no session


@pytest.mark.parametrize("source", ["polygon", "alpaca"])
def test_a_rerun_skips_finished_sessions_and_refetches_a_broken_one(source, request, tmp_path,
                                                                    capsys):
    server = request.getfixturevalue(source)
    assert fetch(tmp_path, source) == 0
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "SPY").iterdir()}
    capsys.readouterr()
    seen = len(server.requests)
    assert fetch(tmp_path, source) == 0
    assert len(server.requests) == seen                      # nothing fetched at all
    cap = capsys.readouterr()
    assert cap.err.count("skipped, already in the store") == 2
    assert "0 session(s) written (0 bars of 0 contracts), 2 already there" in cap.out
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "SPY").iterdir()} == before
    broken = tmp_path / "SPY" / "2024-02-06.parquet"
    broken.write_bytes(b"not parquet")
    assert fetch(tmp_path, source) == 0
    err = capsys.readouterr().err
    assert "2024-02-06: fetching it again, the file there is invalid" in err
    assert "not a readable parquet file" in err
    again = server.requests[seen:]
    assert {r.chunk_start for r in again if is_option_bars(r)} == {D2}
    assert file_rows(broken) == expected_rows(D2, dte=0)


@pytest.mark.parametrize("source", ["polygon", "alpaca"])
def test_a_crash_mid_run_loses_only_the_session_in_flight(source, request, tmp_path, capsys,
                                                          monkeypatch):
    server = request.getfixturevalue(source)
    monkeypatch.setattr(download, "RETRY", download.RetryPolicy(attempts=2, wait=0.01))
    server.fail(500, times=None, when=lambda r: is_option_bars(r) and r.chunk_start == D2)
    stale = tmp_path / "SPY" / "2024-02-06.parquet.tmp"       # left by a killed run
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a file")
    assert fetch(tmp_path, source) == 2
    line = one_error_line(capsys)
    assert "on 2024-02-06 failed after 2 attempts" in line and "rerun" in line
    assert every_file(tmp_path) == ["SPY/2024-02-05.parquet"]    # no D2 file, no temp file
    server.clear_faults()
    seen = len(server.requests)
    assert fetch(tmp_path, source) == 0
    assert {r.chunk_start for r in server.requests[seen:] if is_option_bars(r)} == {D2}
    assert every_file(tmp_path) == ["SPY/2024-02-05.parquet", "SPY/2024-02-06.parquet"]
    assert file_rows(tmp_path / "SPY" / "2024-02-06.parquet") == expected_rows(D2, dte=0)
    assert "1 session(s) written" in capsys.readouterr().out


@pytest.mark.parametrize("source", ["polygon", "alpaca"])
def test_a_session_without_bars_is_reported_and_leaves_no_file(source, request, tmp_path,
                                                               capsys):
    request.getfixturevalue(source)
    assert fetch(tmp_path, source, start=D2, end=D3) == 0
    assert every_file(tmp_path) == ["SPY/2024-02-06.parquet"]
    cap = capsys.readouterr()
    assert "2024-02-07: no bars for any of the 18 contracts: no file" in cap.err
    assert "1 session(s) written" in cap.out and "1 without bars" in cap.out


@pytest.mark.parametrize("source", ["polygon", "alpaca"])
@pytest.mark.parametrize("fault", [429, 503, "slow", "drop"])
def test_transient_faults_are_retried(source, fault, request, tmp_path):
    server = request.getfixturevalue(source)
    server.slow_seconds = 30.0        # without a working read timeout this test would hang
    server.fail(fault, times=1, when=is_contracts)
    server.fail(fault, times=1, when=is_option_bars)
    began = time.monotonic()
    assert fetch(tmp_path, source, start=D1, end=D1) == 0
    assert time.monotonic() - began < 15
    assert file_rows(tmp_path / "SPY" / "2024-02-05.parquet") == expected_rows(D1, dte=0)
    assert sum(r.fault == fault for r in server.requests) == 2


@pytest.mark.parametrize("case, env, message", [
    ("missing key", {"POLYGON_API_KEY": ""}, "POLYGON_API_KEY not set"),
    ("bad key", {"POLYGON_API_KEY": "wrong-key-123"}, "Polygon refused the API key (HTTP 401"),
    ("unknown underlying", {}, "Polygon has no bars of NOPE on 2024-02-05 (unknown symbol"),
])
def test_polygon_errors_are_one_line(case, env, message, polygon, tmp_path, capsys,
                                     monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    symbol = "NOPE" if case == "unknown underlying" else "SPY"
    assert fetch(tmp_path / "store", "polygon", symbol=symbol) == 2
    assert message in one_error_line(capsys)
    assert every_file(tmp_path) == []


def test_polygon_refusing_the_contracts_names_them(polygon, tmp_path, capsys):
    polygon.fail(403, times=None, when=is_contracts)
    assert fetch(tmp_path, "polygon") == 2
    assert "Polygon refused access to the option contracts of SPY (HTTP 403: You are not " \
           "entitled" in one_error_line(capsys)


@pytest.mark.parametrize("args, env, message", [
    (["--start", "2024-01-30"], {}, "Alpaca's option history starts in February 2024: start "
                                    "2024-01-30 is earlier"),
    ([], {"ALPACA_SECRET_KEY": ""}, "ALPACA_SECRET_KEY not set"),
    ([], {"ALPACA_API_KEY": "wrong-key-123"}, "Alpaca refused the API key (HTTP 401"),
])
def test_alpaca_errors_are_one_line(args, env, message, alpaca, tmp_path, capsys,
                                    monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    start = dt.date.fromisoformat(args[1]) if args else D1
    assert fetch(tmp_path, "alpaca", start=start) == 2
    assert message in one_error_line(capsys)
    assert every_file(tmp_path) == []
    if args:
        assert alpaca.requests == []                          # refused before any request


def test_alpaca_refusing_the_contracts_names_them(alpaca, tmp_path, capsys):
    alpaca.fail(403, times=None, when=is_contracts)
    assert fetch(tmp_path, "alpaca") == 2
    assert "Alpaca refused access to the option contracts of SPY (HTTP 403: subscription" \
           in one_error_line(capsys)


@pytest.mark.parametrize("args, message", [
    (["--dte", "1"], "--dte select option contracts: add --options"),
    (["--options", "--timespan", "day"], "--timespan apply to bar files, not to --options"),
    (["--options", "--moneyness", "0"], "moneyness must lie between 0 and 1"),
    (["--options", "--dte", "-1"], "dte must be a whole number of sessions >= 0"),
])
def test_option_flags_are_checked_in_one_line(args, message, polygon, tmp_path, capsys):
    assert main(["data", "fetch", "SPY", "--start", "2024-02-05", "--end", "2024-02-06",
                 "--out", str(tmp_path), *args]) == 2
    assert message in one_error_line(capsys)
    assert polygon.requests == []


def test_the_default_store_folder(polygon, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "fetch", "SPY", "--options", "--start", "2024-02-05", "--end",
                 "2024-02-05"]) == 0
    assert every_file(tmp_path) == ["data/options/SPY/2024-02-05.parquet"]
    assert read_option_bars(tmp_path / "data/options/SPY/2024-02-05.parquet")["strike"].between(
        494 * 0.97, 494 * 1.03).all()


def test_fake_contracts_parse_into_the_sdk_models():
    """The fakes' contract wire dicts are what the SDKs' own models accept."""
    from alpaca.trading.enums import AssetStatus, ContractType
    from alpaca.trading.models import OptionContractsResponse
    from polygon.rest.models import OptionsContract

    wire = alpaca_data_server.option_contract("SPY", D1, "P", 492.5)
    parsed = OptionContractsResponse.model_validate(
        {"option_contracts": [{**wire, "status": "inactive"}], "next_page_token": None})
    c = parsed.option_contracts[0]
    assert (c.symbol, c.expiration_date, c.type, c.strike_price, c.size, c.status) == (
        "SPY240205P00492500", D1, ContractType.PUT, 492.5, "100", AssetStatus.INACTIVE)
    p = OptionsContract.from_dict(polygon_server.option_contract("SPY", D1, "C", 495))
    assert (p.ticker, p.expiration_date, p.strike_price, p.contract_type,
            p.shares_per_contract) == ("O:SPY240205C00495000", "2024-02-05", 495, "call", 100)


def test_help_documents_the_options_fetch(capsys):
    with pytest.raises(SystemExit):
        main(["data", "fetch", "--help"])
    text = capsys.readouterr().out
    for word in ("--options", "--dte", "--moneyness", "MTBT_ALPACA_TRADING_URL",
                 "February 2024", "data/options"):
        assert word in text


@pytest.mark.parametrize("source", ["polygon", "alpaca"])
def test_the_open_falls_back_to_the_daily_bar(source, request, tmp_path, capsys):
    server = request.getfixturevalue(source)
    late = _ms(D2, "09:45")                    # no minute bar in D2's first 15 minutes
    server.add_bars("SPY", "minute", [b for b in underlying_bars()
                                      if not _ms(D2, "00:00") <= b["t"] < late])
    server.add_bars("SPY", "day", [{"t": _ms(D2, "00:00"), "o": OPENS[D2], "h": 499.0,
                                    "l": 495.0, "c": 498.0, "v": 1e7, "vw": 497.0, "n": 9}])
    assert fetch(tmp_path, source, start=D2, end=D2) == 0
    assert "2024-02-06: SPY open 496.5, 20 contracts" in capsys.readouterr().err
    assert file_rows(tmp_path / "SPY" / "2024-02-06.parquet") == expected_rows(D2, dte=0)


def test_alpaca_lists_contracts_still_listed_as_active(alpaca, tmp_path):
    """On the session of today the 0DTE contracts are still active: both statuses are asked."""
    from feeds.options_fetch import fetch_option_bars

    alpaca.today = D1
    result = fetch_option_bars("SPY", D1, D1, moneyness=MONEYNESS, source="alpaca",
                               out=tmp_path, today=D1)
    assert result.count("written") == 1
    assert file_rows(tmp_path / "SPY" / "2024-02-05.parquet") == expected_rows(D1, dte=0)
    statuses = [r.query["status"] for r in alpaca.requests if is_contracts(r)]
    assert "inactive" in statuses and "active" in statuses
