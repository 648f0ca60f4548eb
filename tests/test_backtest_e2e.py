"""``python -m mtbt backtest`` end to end: every report, and trades that obey the rules."""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from analyzers.journal import TRADE_COLUMNS
from analyzers.summary import SUMMARY_KEYS
from mtbt.cli import main
from mtbt.sessions import sessions
from tests.bars import session_frame

REPORTS = ("trades.csv", "summary.json", "equity.csv", "daily.csv", "regime.csv", "run.log",
           "tearsheet.html", "config.json")
STRUCTURES = {"long_call", "call_debit_spread", "call_butterfly", "call_bwb", "long_put",
              "put_debit_spread", "put_butterfly", "put_bwb"}
EQUITY = ["--set", 'strategy.instrument="equity"']


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> Path:
    """The default run (options) on the synthetic sample."""
    out = tmp_path_factory.mktemp("sample") / "report"
    assert main(["backtest", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def equity_run(tmp_path_factory) -> Path:
    """The same run trading shares."""
    out = tmp_path_factory.mktemp("equity") / "report"
    assert main(["backtest", "--out", str(out), "--quiet", "--no-tearsheet", *EQUITY]) == 0
    return out


def check_option_rules(out: Path) -> pd.DataFrame:
    """trades.csv and legs.csv of an options run: structures flat by 15:25 with legs for all,
    signals the allocator sent to shares by the shares' rules."""
    trades = check_trade_rules(out)
    structures = trades[trades["instrument"] != "equity"]
    assert set(structures["instrument"]) <= STRUCTURES
    legs = pd.read_csv(out / "legs.csv")
    assert set(legs["trade_id"]) == set(structures["trade_id"])
    opened = legs[legs["action"] == "open"].groupby("trade_id")["qty"].apply(
        lambda q: q.abs().min())
    closed = structures.groupby("trade_id")["qty"].sum()
    assert (opened == closed.reindex(opened.index)).all()     # every contract came back
    assert (legs["expiry"] == legs["time"].str.slice(0, 10)).all()   # 0DTE
    sells = legs[(legs["action"] == "open") & (legs["qty"] < 0)]
    assert (sells["fill"] > 0).all()                           # no leg sold at a zero bid
    return trades


WAVE_EXITS = {"stop", "tp1", "tp2", "trail", "breakeven", "eod", "risk"}
CONDOR_EXITS = {"profit_target", "stop_loss", "time", "eod", "risk"}


def check_trade_rules(out: Path, *, max_positions: int = 3, reasons: set = WAVE_EXITS,
                      window: tuple[str, str] = ("09:30", "11:00")) -> pd.DataFrame:
    """The rules every trades.csv of the default run must obey (shares flat 15 minutes
    before the close, structures 35)."""
    trades = pd.read_csv(out / "trades.csv")
    assert tuple(trades.columns) == TRADE_COLUMNS
    entry = pd.to_datetime(trades["entry_time"].str.slice(0, 19))
    exit_ = pd.to_datetime(trades["exit_time"].str.slice(0, 19))
    assert trades["entry_time"].str.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d").all()
    # entries inside the window (09:30-11:00 New York)
    assert trades["entry_time"].str.slice(11, 16).between(*window).all()
    # flat by the force close: minutes before that session's close, early closes included
    cal = sessions(entry.min().date(), exit_.max().date())
    before = (trades["instrument"] == "equity").map({True: 15, False: 35})
    force = [cal[t.date()].minutes_before_close(b) for t, b in zip(exit_, before, strict=True)]
    assert (exit_ <= pd.Series(force, index=exit_.index)).all()
    assert (exit_.dt.date == entry.dt.date).all()
    assert (trades["regime"] == "TRADE_NORMAL").all()
    # at most max_positions lots open at any moment
    per_trade = trades.assign(entry=entry, exit=exit_).groupby("trade_id").agg(
        entry=("entry", "first"), exit=("exit", "max"))
    for t in per_trade["entry"]:
        open_now = ((per_trade["entry"] <= t) & (per_trade["exit"] > t)).sum()
        assert open_now <= max_positions
    check_loss_limits(trades.assign(entry=entry, exit=exit_))
    assert set(trades["exit_reason"]) <= reasons
    shares = trades[trades["instrument"] == "equity"]
    if shares.empty:
        return trades
    # the hard stop is about -0.7% and tp1 +1% (to the cent), per side
    sign = shares["side"].map({"long": 1, "short": -1})
    move = sign * (shares["exit_price"] / shares["entry_price"] - 1)
    stops = shares["exit_reason"] == "stop"
    assert move[stops].between(-0.0075, -0.0069).all()     # gaps may fill beyond the stop
    tp1 = shares["exit_reason"] == "tp1"           # a limit: at its price, or better on a gap
    tp1_level = (shares["entry_price"] * (1 + 0.01 * sign)).round(2)
    assert (sign * (shares["exit_price"] - tp1_level) >= -1e-9)[tp1].all()
    assert (move[tp1] < 0.0105).all()
    return trades


def check_loss_limits(trades: pd.DataFrame, daily: float = 500, total: float = 1_000) -> None:
    """No entry after the day's realised loss reached ``daily`` (that day) or after realised
    equity fell ``total`` below its peak (ever)."""
    booked = trades.sort_values("exit")
    equity = 25_000 + booked["pnl"].cumsum()
    paused = booked["exit"][(equity.cummax() - equity) >= total - 1e-6]
    if len(paused):
        assert (trades["entry"] <= paused.iloc[0]).all(), "an entry after the drawdown pause"
    for day, rows in booked.groupby(booked["exit"].dt.date):
        halted = rows["exit"][rows["pnl"].cumsum() <= -daily + 1e-6]
        if len(halted):
            later = trades["entry"][(trades["entry"].dt.date == day)
                                    & (trades["entry"] > halted.iloc[0])]
            assert later.empty, f"an entry after the daily loss limit on {day}"


def test_default_backtest_writes_every_report(sample_run):
    for name in (*REPORTS, "legs.csv", "allocator.csv"):
        assert (sample_run / name).stat().st_size > 0, name
    charts = list(sample_run.glob("payoff_*.png"))
    trades = pd.read_csv(sample_run / "trades.csv")
    assert {c.stem[len("payoff_"):] for c in charts} == set(trades["instrument"]) - {"equity"}
    assert not list(sample_run.glob(".*"))          # no temporary files left behind


def test_the_demo_shows_the_system(sample_run):
    """``python -m mtbt backtest`` with no arguments: enough trades and exits to see the
    strategy work, and the volatility regime pausing it (before any breaker trip)."""
    trades = pd.read_csv(sample_run / "trades.csv")
    assert trades["trade_id"].nunique() >= 10
    assert len(set(trades["exit_reason"])) >= 3
    daily = pd.read_csv(sample_run / "daily.csv")
    first_trade = daily.index[daily["trades"] > 0][0]
    trips = daily.index[daily["breaker_trips"] > 0]
    until = trips[0] if len(trips) else len(daily)
    paused = daily.loc[first_trade:until, "regime"].str.startswith("PAUSE")
    assert paused.sum() >= 5
    summary = json.loads((sample_run / "summary.json").read_text())
    counts = summary["allocator"]
    assert counts["signals"] == len(pd.read_csv(sample_run / "allocator.csv"))
    assert sum(counts["structures"].values()) >= 1


def test_default_backtest_trades_options_by_the_rules(sample_run):
    trades = check_option_rules(sample_run)
    assert len(trades) > 0


def test_equity_backtest_trades_obey_the_rules(equity_run):
    trades = check_trade_rules(equity_run)
    assert (trades["instrument"] == "equity").all()
    assert trades["trade_id"].nunique() >= 8          # 9 on the sample
    assert {"stop", "tp1", "eod"} <= set(trades["exit_reason"])


def test_the_iron_condor_run(tmp_path):
    out = tmp_path / "condor"
    run = Path(__file__).resolve().parents[1] / "runs" / "iron_condor.toml"
    assert main(["backtest", str(run), "--out", str(out), "--quiet", "--no-tearsheet"]) == 0
    trades = check_trade_rules(out, max_positions=2, reasons=CONDOR_EXITS,
                               window=("09:45", "14:30"))
    assert set(trades["instrument"]) == {"iron_condor"} and len(trades) >= 10
    entry = trades["entry_time"].str.slice(11, 16)
    assert set(entry) <= {"09:45", "11:30", "13:00", "14:30"}
    assert (out / "payoff_iron_condor.png").exists()


def test_summary_matches_the_contract_and_the_journal(sample_run):
    summary = json.loads((sample_run / "summary.json").read_text())
    assert tuple(summary) == SUMMARY_KEYS
    trades = pd.read_csv(sample_run / "trades.csv")
    assert summary["trades"] == trades["trade_id"].nunique()
    assert summary["data"] == "synthetic"
    # every dollar of the account's change is in the journal (flat at the end)
    assert trades["pnl"].sum() == pytest.approx(summary["total_pnl"], abs=0.05)
    assert summary["final_equity"] == pytest.approx(25_000 + summary["total_pnl"])
    equity = pd.read_csv(sample_run / "equity.csv")
    assert equity["equity"].iloc[-1] == pytest.approx(summary["final_equity"])


def test_daily_and_regime_logs(sample_run):
    daily = pd.read_csv(sample_run / "daily.csv")
    assert list(daily.columns) == ["date", "pnl", "trades", "wins", "equity", "drawdown",
                                   "regime", "breaker_trips"]
    summary = json.loads((sample_run / "summary.json").read_text())
    assert daily["breaker_trips"].sum() == len(summary["breaker_trips"])
    assert daily["pnl"].sum() == pytest.approx(daily["equity"].iloc[-1] - 25_000, abs=0.05)
    assert (daily["drawdown"] >= 0).all()
    assert daily["trades"].sum() == pd.read_csv(sample_run / "trades.csv")["trade_id"].nunique()
    regimes = pd.read_csv(sample_run / "regime.csv")
    assert {"TRADE_NORMAL", "PAUSE_ULTRA_LOW_VOL", "PAUSE_HIGH_VOL"} <= set(regimes["regime"])
    assert set(daily["regime"]) <= set(regimes["regime"])


def test_reports_say_synthetic(sample_run):
    log = (sample_run / "run.log").read_text()
    assert "SYNTHETIC DATA" in log
    assert "SYNTHETIC DATA" in (sample_run / "tearsheet.html").read_text()


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.opened: list[str] = []
        self.decls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.opened.append(tag)

    def handle_decl(self, decl):
        self.decls.append(decl.lower())


def test_tearsheet_is_a_valid_html_page(sample_run):
    page = (sample_run / "tearsheet.html").read_text()
    parser = _Tags()
    parser.feed(page)
    parser.close()
    assert parser.decls[0] == "doctype html"
    assert parser.opened[0] == "html" and page.rstrip().lower().endswith("</html>")
    assert {"html", "head", "body", "title", "svg", "table"} <= set(parser.opened)
    assert "buy &amp; hold" in page                   # the benchmark from the run's own bars


def test_the_tearsheet_covers_the_run_and_its_drawdown(sample_run):
    """The header's period is the run's first to last session (not from its first trade),
    and the strategy's max drawdown is that of its end-of-day equity (daily.csv)."""
    page = (sample_run / "tearsheet.html").read_text()
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    summary = json.loads((sample_run / "summary.json").read_text())
    first, last = (pd.Timestamp(summary[k]) for k in ("start", "end"))
    assert f"{first.day} {first:%b, %Y} - {last.day} {last:%b, %Y}" in text
    assert "matched dates" not in text and "\ufe6a" not in page
    equity = pd.read_csv(sample_run / "daily.csv")["equity"]
    worst = (equity / equity.cummax() - 1).min()
    strategy_dd = re.search(r"Max Drawdown (\S+)% (\S+)%", text).group(2)   # bench, strategy
    assert float(strategy_dd) == pytest.approx(worst * 100, abs=0.01)


def _figure_texts(page: str, div_id: str) -> list[str]:
    figure = re.search(rf'<div id="{div_id}">(.*?)</div>', page, re.S).group(1)
    return [html.unescape(t).strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", figure)]


def test_the_tearsheet_charts_read_right(sample_run):
    """The daily returns chart has readable percent ticks (no "0%" beside "-0%"), and the
    monthly heatmap has a cell for each month of the run and none for the months around it."""
    page = (sample_run / "tearsheet.html").read_text()
    ticks = [t for t in _figure_texts(page, "daily_returns") if t.endswith("%")]
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks
    assert "-0%" not in ticks and "Cumulative Sum" not in " ".join(
        _figure_texts(page, "daily_returns"))
    daily = pd.read_csv(sample_run / "daily.csv", parse_dates=["date"])
    months = daily["date"].dt.to_period("M").nunique()
    cells = [t for t in _figure_texts(page, "monthly_heatmap") if re.fullmatch(r"-?\d+\.\d\d", t)]
    assert len(cells) == months, (cells, months)


@pytest.mark.parametrize("instrument", ["options", "equity"])
def test_real_spy_data(shared_data, tmp_path, instrument):
    """The default run on a year of real SPY minutes obeys every rule, limits included, in
    options mode (the default) and trading shares (where stops and targets show in prices)."""
    out = tmp_path / "real"
    code = main(["backtest", "--data", str(shared_data / "spy_1m_2024-03-26_2025-04-02.parquet"),
                 "--vix", str(shared_data / "vix_1d_1990_2026.parquet"), "--out", str(out),
                 "--no-tearsheet", "--quiet", "--set", f'strategy.instrument="{instrument}"'])
    assert code == 0
    trades = check_option_rules(out) if instrument == "options" else check_trade_rules(out)
    assert trades["trade_id"].nunique() >= 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"].endswith("spy_1m_2024-03-26_2025-04-02.parquet")
    assert summary["start"].startswith("2024-03-26") and summary["end"].startswith("2025-04-02")
    assert len(summary["data_sha256"]) == 2


def test_real_spy_window(shared_data, tmp_path):
    out = tmp_path / "window"
    code = main(["backtest", "--data", str(shared_data / "spy_1m_2024-03-26_2025-04-02.parquet"),
                 "--vix", str(shared_data / "vix_1d_1990_2026.parquet"),
                 "--start", "2024-06-03", "--end", "2024-08-30", "--out", str(out),
                 "--no-tearsheet", "--quiet"])
    assert code == 0
    check_option_rules(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["start"].startswith("2024-06-03") and summary["end"].startswith("2024-08-30")


def test_too_little_data_says_why_nothing_traded(tmp_path):
    days = [dt.date(2024, 1, 3), dt.date(2024, 1, 4), dt.date(2024, 1, 5)]
    bars = pd.concat([session_frame(d) for d in days]).drop(columns="vix")
    bars.reset_index().to_parquet(tmp_path / "bars.parquet")
    vix = pd.DataFrame({"timestamp": pd.to_datetime(["2024-01-02", *map(str, days)]),
                        "close": 15.0})
    vix.to_parquet(tmp_path / "vix.parquet")
    out = tmp_path / "report"
    assert main(["backtest", "--data", str(tmp_path / "bars.parquet"), "--vix",
                 str(tmp_path / "vix.parquet"), "--out", str(out), "--quiet"]) == 0
    log = (out / "run.log").read_text()
    assert "regime never allowed trading in these 3 sessions (the daily ATR(14)" in log
    assert "tearsheet skipped: the account never changed" in log
    assert not (out / "tearsheet.html").exists()
    assert pd.read_csv(out / "trades.csv").empty
    assert json.loads((out / "summary.json").read_text())["trades"] == 0


def test_event_mode_trades_exactly_like_the_vectorised_backtest():
    """Live trading runs backtrader bar by bar (runonce and preload off): same trades."""
    from feeds.arrays import BarFeed
    from feeds.loader import load_market_data
    from mtbt.config import load_run
    from mtbt.runner import backtest_venue, build_cerebro

    cfg = load_run(None, ["data.sample_sessions=40"])
    market = load_market_data(cfg.data)
    days = market.bars.index.tz_localize(None).normalize()
    journals = []
    for mode in (dict(runonce=True, preload=True), dict(runonce=False, preload=False)):
        cerebro = build_cerebro(cfg, backtest_venue(cfg, BarFeed(dataname=market.bars),
                                                    first=days[0].date(), last=days[-1].date(),
                                                    trade_from=market.trade_from))
        (strat,) = cerebro.run(**mode)
        journals.append(strat.analyzers.journal.get_frame())
    assert len(journals[0]) >= 5
    pd.testing.assert_frame_equal(journals[0], journals[1])


def test_the_iron_condor_on_real_spy(shared_data, tmp_path):
    out = tmp_path / "condor"
    run = Path(__file__).resolve().parents[1] / "runs" / "iron_condor.toml"
    code = main(["backtest", str(run), "--data",
                 str(shared_data / "spy_1m_2024-03-26_2025-04-02.parquet"), "--vix",
                 str(shared_data / "vix_1d_1990_2026.parquet"), "--start", "2024-06-03",
                 "--end", "2024-08-30", "--out", str(out), "--quiet"])
    assert code == 0
    trades = check_trade_rules(out, max_positions=2, reasons=CONDOR_EXITS,
                               window=("09:45", "14:30"))
    assert len(trades) >= 10 and set(trades["instrument"]) == {"iron_condor"}
    targets = trades[trades["exit_reason"] == "profit_target"]
    assert len(targets) >= 5 and (targets["pnl"] > 0).all()   # judged at executable prices
    for name in (*REPORTS, "legs.csv", "payoff_iron_condor.png"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.parametrize("failure, note", [
    ("raise", "tearsheet failed (ValueError: degenerate); the other reports are fine"),
    ("exit", "tearsheet failed (its process exited with 3); the other reports are fine"),
    ("chart", "tearsheet failed (RuntimeError: a chart failed in the process that drew it "
              "(see its log)); the other reports are fine"),
])
def test_a_failed_tearsheet_costs_the_tearsheet_only(tmp_path, monkeypatch, failure, note):
    """The tearsheet is written beside the other reports (in a forked process where it can
    be, this one drawing some of its charts): quantstats raising, that process dying, or a
    chart failing here leaves a note and every other file."""
    import analyzers.report_process
    from analyzers.tearsheet import quantstats

    def broken(*_, **__):
        if failure == "exit":
            os._exit(3)
        raise ValueError("degenerate")

    # forked even if an earlier test in this pytest worker left a thread running
    monkeypatch.setattr(analyzers.report_process, "_can_fork", lambda: True)
    if failure == "chart":   # drawn by this process (the forked one draws the rest)
        monkeypatch.setattr(quantstats().plots, "log_returns", broken)
    else:
        monkeypatch.setattr(analyzers.report_process, "write_tearsheet", broken)
    out = tmp_path / "report"
    assert main(["backtest", "--out", str(out), "--quiet", "--set",
                 'strategy.instrument="equity"']) == 0
    assert note in (out / "run.log").read_text()
    if failure == "chart":
        assert "tearsheet chart log_returns failed" in (out / "run.log").read_text()
    assert not (out / "tearsheet.html").exists()
    assert not (out / ".tearsheet.html.part").exists()
    assert {"trades.csv", "equity.csv", "daily.csv", "summary.json"} <= {
        p.name for p in out.iterdir()}
