"""``mtbt compare``: paper days against backtests of the bars the session recorded.

Replayed days (the paper trader against the local simulator, real SPY bars; skipped without
../shared) compare with zero differences; a fill the simulator slips on purpose (the ``slip``
fault) is reported with its sign and size; missed and extra trades, the verdicts and the
one-line errors are checked on top.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from feeds.parquet import read_bars, read_daily, regular_hours
from mtbt.cli import main
from mtbt.config import load_run
from mtbt.live.compare_report import DIFFERS, MATCH, TOO_FEW, figures, overall
from mtbt.live.compare_trades import DIFF_COLUMNS, compare_day
from mtbt.live.record import read_record
from mtbt.live.replay import replay, replay_config, simulator
from mtbt.sim import Faults

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")

BARS = "spy_1m_2024-03-26_2025-04-02.parquet"
DAYS = {"equity": "2024-08-02", "options": "2025-01-02"}
SLIP, SLIP_FILL = 0.05, 6          # the 6th equity fill of 2024-08-02: an eod cover (a buy)


def _cfg(shared: Path, instrument: str):
    cfg = load_run(None, [f'data.bars="{shared / BARS}"',
                          f'data.vix="{shared / "vix_1d_1990_2026.parquet"}"',
                          f'strategy.instrument="{instrument}"', "report.tearsheet=false"])
    return replay_config(cfg, cfg.data.bars, pd.Timestamp(DAYS[instrument]).date())


def _replay(shared: Path, base: Path, instrument: str, faults: Faults | None = None):
    cfg = _cfg(shared, instrument)
    sim = simulator(cfg, faults)
    result = replay(cfg, sim=sim, log_dir=base / "logs", state_path=base / "state.sqlite")
    return result, sim


@pytest.fixture(scope="module")
def equity_day(shared_data, tmp_path_factory):
    return _replay(shared_data, tmp_path_factory.mktemp("equity"), "equity")


@pytest.fixture(scope="module")
def options_day(shared_data, tmp_path_factory):
    return _replay(shared_data, tmp_path_factory.mktemp("options"), "options")


@pytest.fixture(scope="module")
def slipped_day(shared_data, tmp_path_factory):
    return _replay(shared_data, tmp_path_factory.mktemp("slipped"), "equity",
                   Faults(slip=SLIP, slip_fill=SLIP_FILL))


def _compare(logs: Path, out: Path, capsys, *extra: str) -> tuple[pd.DataFrame, str]:
    assert main(["compare", str(logs), "--out", str(out), *extra]) == 0
    printed = capsys.readouterr().out
    return pd.read_csv(out / "compare.csv"), printed


@pytest.mark.parametrize("day", ["equity_day", "options_day"])
def test_a_replayed_day_compares_with_zero_differences(request, tmp_path, capsys, day):
    result, _ = request.getfixturevalue(day)
    rows, printed = _compare(result.folder, tmp_path, capsys)
    paper = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    assert len(rows) == len(paper) >= 3 and set(rows["status"]) == {"matched"}
    assert (rows[list(DIFF_COLUMNS)] == 0).all().all()
    for column in ("exit_reason", "qty", "entry_time", "entry_price", "exit_time",
                   "exit_price", "pnl"):
        assert (rows[f"paper_{column}"] == rows[f"backtest_{column}"]).all(), column
    if day == "options_day":      # a structure (premiums) and the allocator's shares
        assert rows["instrument"].nunique() == 2
    md = (tmp_path / "compare.md").read_text()
    for text in (md, printed):
        assert f"{len(rows)} matched ({len(rows)} identical), 0 missed" in text
        assert "| win rate |" in text and "| signals per week |" in text
        assert text.count("| +0.0% |") == 3 and "verdict: TOO FEW TRADES" in text
    assert f"report: {tmp_path / 'compare.csv'}, {tmp_path / 'compare.md'}" in printed
    assert (tmp_path / f"backtest_{DAYS[day.split('_')[0]]}" / "trades.csv").is_file()


def test_the_record_holds_the_delivered_bars_the_vix_and_the_run(equity_day, shared_data):
    result, _ = equity_day
    rec = read_record(result.folder, result.session)
    bars = read_bars(rec.bars)
    source = regular_hours(read_bars(shared_data / BARS))
    source = source[(source.index >= bars.index[0]) & (source.index <= bars.index[-1])]
    pd.testing.assert_frame_equal(bars[list(source.columns)], source, check_freq=False)
    days = bars.index.normalize().unique()
    assert str(days[-1].date()) == DAYS["equity"] == rec.manifest["day"]
    assert rec.manifest["sessions_before"] == len(days) - 1 == 20
    assert rec.manifest["complete"] and rec.manifest["stopped_by"] == "session end"
    vix = read_daily(rec.vix)
    assert vix.index[0] < days[0].tz_localize(None) and vix.index[-1] <= days[-1].tz_localize(
        None)
    cfg = _cfg(shared_data, "equity")
    assert load_run(rec.run_file).run_id == cfg.run_id == rec.run().run_id


def test_a_slipped_fill_is_reported_with_its_sign_and_size(slipped_day, tmp_path, capsys):
    result, sim = slipped_day
    (slip,) = sim.exchange.matcher.slipped             # the knob fired, once
    assert slip["side"] == "buy" and slip["filled"] == pytest.approx(slip["price"] + SLIP)
    trade = int(slip["client_order_id"].split("-t")[1].split("-")[0])
    rows, printed = _compare(result.folder, tmp_path, capsys)
    assert set(rows["status"]) == {"matched"}
    hit = rows[(rows["paper_trade"] == trade) & (rows["paper_exit_reason"] == "eod")]
    (i,) = hit.index
    row = rows.loc[i]
    assert row["side"] == "short"            # covered dearer: worse for paper, positive
    assert row["exit_slip"] == pytest.approx(SLIP)
    assert row["exit_slip_bps"] == pytest.approx(round(SLIP / row["backtest_exit_price"] * 1e4,
                                                       2))
    assert row["entry_slip"] == 0 and row["exit_delay_s"] == 0
    assert row["slip_pnl"] == pytest.approx(-SLIP * row["paper_qty"])
    assert row["pnl_diff"] == pytest.approx(row["slip_pnl"], abs=0.011)
    others = rows.drop(index=i)
    assert (others[list(DIFF_COLUMNS)] == 0).all().all()
    assert f"slippage {row['slip_pnl']:+,.2f} $" in printed
    assert f"(+{SLIP:.4f} $, +{row['exit_slip_bps']:.1f} bps)" in printed


def test_missed_extra_and_late_trades(equity_day):
    result, _ = equity_day
    day = pd.Timestamp(DAYS["equity"]).date()
    backtest = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    paper = backtest[backtest["trade_id"] != 3].copy()          # trade 3 not taken: missed
    extra = backtest[backtest["trade_id"] == 2].assign(         # a trade only paper made
        trade_id=9, side="long", entry_time="2024-08-02T13:00:00-04:00", pnl=-12.5)
    late = paper["trade_id"] == 1                               # entered a minute late
    paper.loc[late, "entry_time"] = "2024-08-02T09:44:00-04:00"
    paper.loc[late, "entry_price"] += 0.10                      # a short sold dearer: better
    rows = compare_day(day, pd.concat([paper, extra]), backtest, multiplier=1)
    missed = rows[rows["status"] == "missed"]
    assert list(missed["backtest_trade"]) == [3] and missed["paper_trade"].isna().all()
    assert (missed["pnl_diff"] == -missed["backtest_pnl"]).all()
    added = rows[rows["status"] == "extra"]
    assert list(added["paper_trade"]) == [9] and list(added["pnl_diff"]) == [-12.5]
    first = rows[rows["backtest_trade"] == 1]
    assert len(first) == 2 and set(first["status"]) == {"matched"}
    assert (first["entry_delay_s"] == 60).all()
    assert first["entry_slip"].tolist() == pytest.approx([-0.10] * 2)   # negative: better
    assert first["slip_pnl"].tolist() == pytest.approx((0.10 * first["paper_qty"]).tolist())


def _frame(pnls: list[float], day: str = "2024-08-02") -> pd.DataFrame:
    return pd.DataFrame({"day": day, "trade_id": range(1, len(pnls) + 1), "pnl": pnls})


def test_the_verdicts_say_too_few_trades_instead_of_pretending():
    few = figures(_frame([100, -50]), _frame([100, -60]), days=1, tolerance=0.1)
    assert {f.verdict for f in few} == {TOO_FEW} and overall(few) == TOO_FEW
    assert few[0].one_trade == 1.0 and few[2].one_trade == 0.5
    many = [100.0] * 40 + [-50.0] * 20                  # 60 trades over 12 sessions
    same = figures(_frame(many), _frame(many), days=12, tolerance=0.1)
    assert [f.verdict for f in same] == [MATCH] * 3 and overall(same) == MATCH
    worse = figures(_frame([100.0] * 30 + [-50.0] * 30), _frame(many), days=12, tolerance=0.1)
    assert worse[0].verdict == DIFFERS and worse[0].rel == pytest.approx(-0.25)
    assert worse[2].verdict == MATCH and overall(worse) == DIFFERS


def _one_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_is_one_line_naming_the_file(equity_day, tmp_path, capsys):
    result, _ = equity_day
    assert "no such folder" in _one_line(capsys, ["compare", str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    assert "no paper sessions here" in _one_line(capsys, ["compare", str(tmp_path / "empty")])
    logs = tmp_path / "logs"
    shutil.copytree(result.folder, logs)
    old = "PAPER_20000101_093000"        # a session of the day before, from older mtbt
    (logs / f"paper_trading_{old}.log").write_text("")
    (logs / f"balance_progression_{old}.csv").write_text(
        "time,equity\n2024-08-01T09:31:00-04:00,25000.00\n")
    err = _one_line(capsys, ["compare", str(logs), "--days", "2"])
    assert f"{logs / f'bars_{old}.parquet'}: not found" in err
    rows, _ = _compare(logs, tmp_path / "out", capsys, "--days", "1")   # the last day only
    assert set(rows["day"]) == {DAYS["equity"]}
    (logs / f"record_{result.session}.json").unlink()      # as a session of older mtbt
    err = _one_line(capsys, ["compare", str(logs), "--days", "1"])
    assert f"bars_{result.session}.parquet: not found" in err


def test_a_restarted_day_is_one_comparison_on_the_last_session(equity_day, tmp_path, capsys):
    result, _ = equity_day
    logs = tmp_path / "logs"
    shutil.copytree(result.folder, logs)
    killed = "PAPER_20000101_093000"      # the same day, killed before this session
    (logs / f"paper_trading_{killed}.log").write_text("")
    (logs / f"balance_progression_{killed}.csv").write_text(
        f"time,equity\n{DAYS['equity']}T09:31:00-04:00,25000.00\n")
    rows, printed = _compare(logs, tmp_path / "out", capsys, "--tolerance", "5%")
    assert set(rows["status"]) == {"matched"} and rows["day"].nunique() == 1
    assert f"restarted: sessions {killed}, {result.session}" in printed
    assert "±5%, --tolerance" in printed


def test_an_unusable_tolerance_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["compare", "logs", "--tolerance", "150%"])
    assert stop.value.code == 2 and "expected 0 to 1" in capsys.readouterr().err
