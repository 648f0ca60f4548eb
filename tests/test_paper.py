"""Paper trading end to end: alpaca-py's real clients against the local simulator.

Parity (the replayed day trades exactly like the backtest), faults (every knob on), a SIGKILL
and restart, the refusals, and no key in any log. The trader runs on real SPY bars (skipped
without ../shared).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from mtbt.cli import main
from mtbt.config import load_run
from mtbt.live.replay import replay, replay_config, simulator
from mtbt.runner import run_backtest
from mtbt.sim import Faults

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")

ROOT = Path(__file__).resolve().parents[1]
# made up per run (never a real key): after the last test, conftest.py greps every file
# the tests wrote for them
KEYS = (f"test-key-{uuid.uuid4().hex[:12]}", f"test-secret-{uuid.uuid4().hex}")
# replayed days: shares, 2 short entries (tp1, trail, eod); options, a put butterfly and a
# signal the allocator sent to shares (tp1, then trail)
DAYS = {"equity": "2024-08-02", "options": "2025-01-02"}
EXITS = {"equity": {"tp1", "trail", "eod"}, "options": {"tp1", "trail"}}
COMPARE = ["trade_id", "instrument", "side", "entry_time", "entry_price", "exit_time",
           "exit_price", "qty", "pnl", "exit_reason"]


@pytest.fixture
def paper_logs(tmp_path) -> Path:
    """Where the test's paper sessions write (grepped for keys after the last test, by
    ``tests/conftest.py``'s ``no_file_holds_a_test_key``)."""
    (tmp_path / "paper_logs").mkdir()
    return tmp_path / "paper_logs"


def _cfg(shared: Path, instrument: str, day: str | None = None, *overrides: str,
         run: str | None = None):
    cfg = load_run(run, [f'data.bars="{shared / "spy_1m_2024-03-26_2025-04-02.parquet"}"',
                         f'data.vix="{shared / "vix_1d_1990_2026.parquet"}"',
                         f'strategy.instrument="{instrument}"', "report.tearsheet=false",
                         *overrides])
    return replay_config(cfg, cfg.data.bars, pd.Timestamp(day or DAYS[instrument]).date())


def _backtest(cfg, out: Path) -> pd.DataFrame:
    run_backtest(cfg, out_dir=out, tearsheet=False)
    return pd.read_csv(out / "trades.csv")


def _sorted(trades: pd.DataFrame) -> pd.DataFrame:
    frame = trades[COMPARE].sort_values(["trade_id", "exit_time", "exit_reason"])
    return frame.reset_index(drop=True)


@pytest.mark.parametrize("instrument", ["equity", "options"])
def test_replayed_day_trades_exactly_like_the_backtest(shared_data, paper_logs, tmp_path,
                                                       instrument):
    cfg = _cfg(shared_data, instrument)
    expected = _backtest(cfg, tmp_path / "bt")
    assert len(expected) >= 3 and EXITS[instrument] <= set(expected["exit_reason"])
    assert (instrument == "equity") == (expected["instrument"] == "equity").all()
    result = replay(cfg, log_dir=paper_logs / f"parity_{instrument}",
                    state_path=tmp_path / "state.sqlite")
    got = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    pd.testing.assert_frame_equal(got[COMPARE], expected[COMPARE], check_exact=True)
    assert result.summary["open_trades"] == 0 and result.stopped_by == "session end"


def test_replayed_condor_day_closes_at_its_limits_like_the_backtest(shared_data, paper_logs,
                                                                    tmp_path):
    """runs/iron_condor.toml on 2024-06-25: three condors closed at their profit target by
    limit orders (an mleg limit at Alpaca), one limit not reached at the next open: cancelled
    at Alpaca, judged again on that bar and closed a bar later, as in the backtest."""
    cfg = _cfg(shared_data, "options", "2024-06-25", run=str(ROOT / "runs/iron_condor.toml"))
    expected = _backtest(cfg, tmp_path / "bt")
    assert set(expected["exit_reason"]) == {"profit_target"} and len(expected) == 3
    assert "limit -0.21 not reached" in (tmp_path / "bt" / "run.log").read_text()
    sim = simulator(cfg, keys=KEYS)
    result = replay(cfg, sim=sim, log_dir=paper_logs / "condor",
                    state_path=tmp_path / "state.sqlite")
    got = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    pd.testing.assert_frame_equal(got[COMPARE], expected[COMPARE], check_exact=True)
    closes = [o for o in sim.orders if "profit_target" in o.client_order_id]
    assert {o.type for o in closes} == {"limit"} and len(closes) == 4
    assert [o.status for o in closes].count("canceled") == 1
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert "14:49 EXIT #2 profit_target: limit -0.21 not reached" in log
    assert sim.positions() == {} and result.summary["open_trades"] == 0


BREAKER_DAYS = ("2024-08-01", "2024-08-02")   # a day that loses ~$495, then the parity day
THRESHOLD = "risk_management.max_dd_threshold=100"


def test_a_tripped_breaker_holds_across_days_until_reset(shared_data, paper_logs, tmp_path,
                                                          capsys):
    """Day 1 trips the drawdown breaker and the state file keeps it; day 2 with the same
    state file enters nothing (a new day: day pnl 0, the breaker kept); day 2 again with
    ``--reset-breaker`` (the command line, in process) trades."""
    state, logs = tmp_path / "state.sqlite", paper_logs / "breaker"
    first = replay(_cfg(shared_data, "equity", BREAKER_DAYS[0], THRESHOLD),
                   log_dir=logs / "day1", state_path=state)
    held = _checkpoint(state)
    shutil.copy(state, tmp_path / "day1.sqlite")
    assert held["day"] == BREAKER_DAYS[0] and held["risk"]["realized"] <= -100
    risk = held["risk"]
    assert (risk["tripped"], risk["paused"], risk["trips"]) == (True, True, 1)
    assert len(held["breaker_trips"]) == 1
    assert first.summary["risk"]["breaker_tripped"] and len(first.summary["breaker_trips"]) == 1

    day2 = _cfg(shared_data, "equity", BREAKER_DAYS[1], THRESHOLD)
    sim = simulator(day2, keys=KEYS)
    second = replay(day2, sim=sim, log_dir=logs / "day2", state_path=state)
    log = (second.folder / f"paper_trading_{second.session}.log").read_text()
    realised = held["risk"]["realized"]
    assert f"RESUMED risk: day pnl +0.00, realised {realised:+.2f}, paused True" in log
    assert "SKIP" in log and "trading paused: drawdown reached max_dd_threshold" in log
    assert sim.orders == [] and second.summary["trades"] == 0
    assert second.summary["risk"]["paused"] and second.summary["breaker_trips"] == \
        first.summary["breaker_trips"]
    assert _checkpoint(state)["journal"]["trades"] == []     # day 1's journal stayed there

    # the same replay again on that state file: its simulator would start the day afresh
    # while the state file holds the day's session, so it is refused (never a wrong result)
    again = ["paper", "--replay", day2.data.bars, "--day", BREAKER_DAYS[1], "--vix",
             day2.data.vix, "--set", 'strategy.instrument="equity"', "--set", THRESHOLD]
    assert main(again + ["--log-dir", str(logs / "again"), "--state", str(state)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and f"already holds a session of {BREAKER_DAYS[1]}" in error

    account = day2.risk_management.account_size      # day 2 on day 1's state, reset
    assert main(again + ["--log-dir", str(logs / "reset"), "--state",
                         str(tmp_path / "day1.sqlite"), "--reset-breaker"]) == 0
    log = next((logs / "reset").glob("paper_trading_*.log")).read_text()
    drawdown = held["risk"]["peak"] - account - realised
    assert (f"BREAKER RESET (--reset-breaker): was tripped, drawdown ${drawdown:.2f}; the "
            f"drawdown counts from equity ${account + realised:.2f}") in log
    assert "ENTRY #" in log
    assert len(pd.read_csv(next((logs / "reset").glob("trades_*.csv")))) >= 1


def test_every_fault_at_once_loses_nothing_and_duplicates_nothing(shared_data, paper_logs,
                                                                  tmp_path):
    cfg = _cfg(shared_data, "equity")
    expected = _backtest(cfg, tmp_path / "bt")
    faults = Faults(drop_streams_every=2.0, error_every=5, error_orders_every=4, slow_every=13,
                    slow_seconds=0.3, duplicate_fills=True, reorder_fills=True,
                    partial_fills=True)
    sim = simulator(cfg, faults, keys=KEYS)
    result = replay(cfg, sim=sim, log_dir=paper_logs / "faults",
                    state_path=tmp_path / "state.sqlite")
    # the knobs really fired (error_orders_every: 2 orders of every 8 fail, one after it was
    # created, whatever the polls around them)
    assert sum(f["created"] for f in sim.injected) >= 2, "no order was created behind an error"
    assert {f["status"] for f in sim.injected} >= {500, 429}
    assert len({e["execution_id"] for e in sim.trade_events if "execution_id" in e}) < \
        sum("execution_id" in e for e in sim.trade_events)       # fills were sent twice
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert "bar stream dropped" in log and "retry" in log
    # nothing duplicated: every order reached the simulator once; a retried submit that had
    # got through was recognised, not sent again
    ids = [o.client_order_id for o in sim.orders]
    assert len(ids) == len(set(ids))
    assert result.summary["duplicate_submits_caught"] >= 1
    assert result.summary["duplicate_fill_events_dropped"] >= 1
    entries = [i for i in ids if i.endswith("-entry")]
    assert len(entries) == len(set(expected["trade_id"]))
    # nothing lost: every share the simulator filled is in the journal (in and out), the
    # books are flat like the simulator's, and the trades are still the backtest's
    traded = sum(e.qty for e in sim.executions)
    assert traded == 2 * expected["qty"].sum()
    assert sim.positions() == {} and result.summary["open_trades"] == 0
    pd.testing.assert_frame_equal(_sorted(result.trades), _sorted(expected), check_exact=True)


def test_the_first_bars_after_the_history_acted_on_when_they_come_over_rest(
        shared_data, paper_logs, tmp_path):
    """The bar stream drops as the day opens: its first bars come over REST. The session
    acts on them as on streamed ones (before, it never acknowledged them and a replay
    waited forever for the next bar)."""
    cfg = _cfg(shared_data, "equity")
    expected = _backtest(cfg, tmp_path / "bt")
    sim = simulator(cfg, Faults(unstreamed_bars=2), keys=KEYS)
    stop = threading.Event()
    guard = threading.Timer(240, stop.set)
    guard.start()
    try:
        result = replay(cfg, sim=sim, log_dir=paper_logs / "unstreamed", stop=stop,
                        state_path=tmp_path / "state.sqlite")
    finally:
        guard.cancel()
    assert result.stopped_by == "session end"
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert "no bar for 1 s after" in log and "asking REST" in log
    got = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    pd.testing.assert_frame_equal(got[COMPARE], expected[COMPARE], check_exact=True)


@pytest.mark.parametrize("refused", ["-t1-tp1", "-t1-stop"])
def test_a_refused_exit_leaves_nothing_of_its_pair_working(shared_data, paper_logs, tmp_path,
                                                           refused):
    """Alpaca refuses one order of the first trade's exit pair (its oco, or the plain stop
    for the rest): the stop is then refused whole, its other Alpaca order never sent or
    cancelled, and the pair placed again at the next bar is accepted; nothing is left
    working to buy twice, and the day ends as the backtest's did."""
    cfg = _cfg(shared_data, "equity")
    expected = _backtest(cfg, tmp_path / "bt")
    sim = simulator(cfg, Faults(reject_order=refused), keys=KEYS)
    result = replay(cfg, sim=sim, log_dir=paper_logs / f"refused{refused}",
                    state_path=tmp_path / "state.sqlite")
    assert [f["status"] for f in sim.injected] == [403]
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert log.count(" refused: ") == 1 and log.count("Rejected: re-placing") == 1
    assert "Traceback" not in log and result.stopped_by == "session end"
    assert sum(e.qty for e in sim.executions) == 2 * expected["qty"].sum()   # none twice
    assert sim.positions() == {} and result.summary["open_trades"] == 0
    pd.testing.assert_frame_equal(_sorted(result.trades), _sorted(expected), check_exact=True)


@pytest.mark.parametrize("refused, times, trade, reason", [
    ("-t1-tp1", 5, 1, "risk"),   # the exit pair, every time: closed at market at the third
    ("-t2-eod", 1, 2, "eod"),    # the end-of-day close once: sent again on the next bar
])
def test_an_exit_refused_again_and_again_is_bounded(shared_data, paper_logs, tmp_path,
                                                     refused, times, trade, reason):
    """Alpaca refusing a trade's exits does not leave it open with no stop, bar after bar:
    the third refusal of its exits closes it at market (reason ``risk``); a refused close is
    sent again on the next bar. The session ends flat, every trade closed."""
    cfg = _cfg(shared_data, "equity")
    sim = simulator(cfg, Faults(reject_order=refused, reject_times=times), keys=KEYS)
    result = replay(cfg, sim=sim, log_dir=paper_logs / f"refused{refused}",
                    state_path=tmp_path / "state.sqlite")
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    refusals = log.count(f"{refused} refused: HTTP 403")
    assert refusals == min(times, 3)
    got = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    reasons = list(got.loc[got["trade_id"] == trade, "exit_reason"])
    assert reasons and reasons[-1] == reason, f"trade {trade}'s exits: {reasons}"
    if reason == "risk":
        assert "refusal 3 of its exits: closing at market" in log
    else:
        assert "closing again next bar" in log
    assert result.summary["open_trades"] == 0 and sim.positions().get("SPY", 0) == 0


def _never_reversed(sim) -> None:
    """No trade's exits sold (or bought back) more than its entry: each trade's net
    position never crosses zero."""
    client = {leg.id: o.client_order_id for o in sim.orders for leg in o.legs or []}
    held: dict[str, float] = {}
    for fill in sim.executions:
        client_id = client.get(fill.order_id, fill.client_order_id)   # an oco's leg: its top's
        trade = client_id.split("-t")[1].split("-")[0]
        before = held.get(trade, 0.0)
        held[trade] = before + (fill.qty if fill.side == "buy" else -fill.qty)
        assert before * held[trade] >= 0, f"#{trade} reversed by {client_id}"


@pytest.mark.parametrize("trade", [1, 2])
def test_an_exit_that_fills_as_its_cancel_arrives_is_booked_and_never_sold_twice(
        shared_data, paper_logs, tmp_path, trade):
    """The strategy cancels a trade's exits to move them or to close the trade, and at
    Alpaca the stop fills first (the cancel comes back 422). The fill is that trade's exit,
    and what the strategy had prepared for the shares it no longer holds (the close, or
    the moved pair) is withdrawn, not sent: no trade is reversed, the account ends flat,
    every share of the trade closed once."""
    cfg = _cfg(shared_data, "equity")
    expected = _backtest(cfg, tmp_path / "bt")
    sim = simulator(cfg, Faults(fill_on_cancel=f"-t{trade}-"), keys=KEYS)
    result = replay(cfg, sim=sim, log_dir=paper_logs / f"late{trade}",
                    state_path=tmp_path / "state.sqlite")
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert f"LATE FILL #{trade} " in log and "WITHDRAWN" in log
    withdrawn = {line.split("WITHDRAWN ")[1].split(":")[0] for line in log.splitlines()
                 if "WITHDRAWN " in line}
    assert not withdrawn & {o.client_order_id for o in sim.orders}, "a withdrawn order went"
    _never_reversed(sim)
    assert sim.positions() == {} and result.summary["open_trades"] == 0
    got = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    mine = got["trade_id"] == trade
    assert got.loc[mine, "qty"].sum() == expected.loc[expected["trade_id"] == trade,
                                                      "qty"].sum()
    assert "Traceback" not in log and result.stopped_by == "session end"


def test_the_other_leg_of_a_filled_oco_is_left_to_alpaca(shared_data, paper_logs, tmp_path):
    """When one leg of an oco fills, Alpaca cancels the other itself and may say so a bar
    later. mtbt sends no cancel of its own for it (such a cancel came back 422, "already
    canceled", whenever Alpaca's came first), and the day trades like the backtest."""
    cfg = _cfg(shared_data, "equity")
    expected = _backtest(cfg, tmp_path / "bt")
    sim = simulator(cfg, Faults(late_oco_cancels=True), keys=KEYS)
    result = replay(cfg, sim=sim, log_dir=paper_logs / "late_oco",
                    state_path=tmp_path / "state.sqlite")
    filled = {o.id for o in sim.orders if o.order_class == "oco"
              and any(leg.status == "filled" for leg in o.legs or [])} | {
        o.id for o in sim.orders if o.order_class == "oco" and o.status == "filled"}
    assert filled, "no oco filled"
    assert not [r for r in sim.rejections if r[0] == 422], sim.rejections
    pd.testing.assert_frame_equal(_sorted(result.trades), _sorted(expected), check_exact=True)
    assert sim.positions() == {} and result.summary["open_trades"] == 0


def test_an_orphan_leg_is_found_logged_and_closed(shared_data, paper_logs, tmp_path):
    """A contract of a traded structure appears at Alpaca beyond mtbt's structures (as a
    partial fill or the broker would leave it): the trader closes the extra and trades on."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from alpaca.trading.client import TradingClient
        from alpaca.trading.enums import OrderSide, PositionIntent, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

    cfg = _cfg(shared_data, "options")
    expected = _backtest(cfg, tmp_path / "bt")
    sim = simulator(cfg, keys=KEYS)
    done: dict = {}
    trader = threading.Thread(target=lambda: done.update(result=replay(
        cfg, sim=sim, log_dir=paper_logs / "orphan", state_path=tmp_path / "state.sqlite")))
    trader.start()
    deadline = time.monotonic() + 120
    while not any(o.legs and o.status == "filled" for o in sim.orders):
        assert time.monotonic() < deadline and trader.is_alive()
        time.sleep(0.005)
    leg = next(o for o in sim.orders if o.legs and o.status == "filled").legs[0]
    client = TradingClient(*KEYS, paper=True, url_override=sim.trading_url)
    client.submit_order(MarketOrderRequest(
        symbol=leg.symbol, qty=1, side=OrderSide(leg.side), time_in_force=TimeInForce.DAY,
        position_intent=PositionIntent(f"{leg.side}_to_open"), client_order_id="not-mtbt"))
    trader.join(timeout=300)
    result = done["result"]
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert f"ORPHAN {leg.symbol}" in log and result.summary["orphans"]
    assert sim.positions() == {}
    pd.testing.assert_frame_equal(_sorted(result.trades), _sorted(expected), check_exact=True)


def _checkpoint(state: Path) -> dict | None:
    if not state.exists():
        return None
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("SELECT body FROM checkpoint WHERE name='strategy'").fetchone()
    except sqlite3.OperationalError:
        return None
    return json.loads(row[0]) if row else None


def _sim_env(sim) -> dict:
    """The environment that points ``mtbt paper`` at a running simulator."""
    return os.environ | {
        "ALPACA_API_KEY": KEYS[0], "ALPACA_SECRET_KEY": KEYS[1],
        "MTBT_ALPACA_TRADING_URL": sim.trading_url, "MTBT_ALPACA_DATA_URL": sim.data_url,
        "MTBT_ALPACA_STREAM_URL": sim.trade_stream_url,
        "MTBT_ALPACA_DATA_STREAM_URL": sim.data_stream_url,
        "MTBT_SIM_READY_URL": f"{sim.trading_url}/_sim/ready"}


@contextmanager
def _paced(sim):
    """The simulator serving and stepping in lockstep (in a thread) until the block ends."""
    halt = threading.Event()
    with sim:
        threading.Thread(target=sim.run, kwargs=dict(stop=halt), daemon=True).start()
        try:
            yield sim
        finally:
            halt.set()


def _paper_args(cfg, instrument: str, logs: Path, state: Path, *extra: str) -> list[str]:
    """``python -m mtbt paper`` for ``cfg``'s VIX file against the simulator of ``_sim_env``."""
    return [sys.executable, "-m", "mtbt", "paper", "--set",
            f'strategy.instrument="{instrument}"', "--vix", cfg.data.vix,
            "--log-dir", str(logs), "--state", str(state), *extra]


def _wait_for(state: Path, process, stage: str, seconds: float = 240) -> dict:
    """The first checkpoint with a lot in ``stage`` (the trader still running)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        snap = _checkpoint(state)
        if snap and any(lot["stage"] == stage for lot in snap["lots"]):
            return snap
        time.sleep(0.02)
    raise AssertionError(f"no {stage} trade before the trader ended ({process.poll()})")


@pytest.mark.parametrize("instrument", ["equity", "options"])
def test_sigkill_mid_day_then_restart_resumes_without_duplicates(shared_data, paper_logs,
                                                                 tmp_path, instrument):
    cfg = _cfg(shared_data, instrument)
    expected = _backtest(cfg, tmp_path / "bt")
    sim = simulator(cfg, keys=KEYS)
    state, logs = tmp_path / "state.sqlite", paper_logs / f"restart_{instrument}"
    with _paced(sim):
        env, args = _sim_env(sim), _paper_args(cfg, instrument, logs, state)
        with (tmp_path / "first.out").open("w") as out:
            first = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
            _wait_for(state, first, "scaled")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        killed = _checkpoint(state)          # the last state the killed trader committed
        assert any(lot["stage"] == "scaled" for lot in killed["lots"])
        before = {o.client_order_id for o in sim.orders}

        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-3000:]
    logs_text = {p.name: p.read_text() for p in logs.glob("paper_trading_*.log")}
    resumed = next(t for t in logs_text.values() if "RESUMED" in t)
    for lot in killed["lots"]:
        line = (f"RESUMED #{lot['trade_id']} stage {lot['stage']} qty {lot['remaining']} "
                f"stop {lot['stop']:.2f}")
        assert line in resumed
    assert f"day pnl {killed['risk']['day_pnl']:+.2f}" in resumed
    # no order twice: unique client ids, one entry per trade, and no working exit of a
    # resumed trade was placed again while the old one still worked
    ids = [o.client_order_id for o in sim.orders]
    assert len(ids) == len(set(ids))
    entries = [i for i in ids if i.endswith("-entry")]
    assert len(entries) == len(set(entries)) == len(set(expected["trade_id"]))
    assert sim.positions() == {}
    after = [o for o in sim.orders if o.client_order_id not in before]
    assert not any(o.client_order_id.endswith("-entry") and
                   int(o.client_order_id.split("-t")[1].split("-")[0]) in
                   {lot["trade_id"] for lot in killed["lots"]} for o in after)
    # the restarted session's journal holds the whole day: the backtest's trades
    trades = pd.read_csv(sorted(logs.glob("trades_*.csv"))[-1])
    pd.testing.assert_frame_equal(_sorted(trades), _sorted(expected), check_exact=True)


@pytest.mark.parametrize("keep", [False, True])
def test_sigterm_cancels_entries_flattens_and_writes_the_files(shared_data, paper_logs,
                                                               tmp_path, keep):
    cfg = _cfg(shared_data, "equity")
    sim = simulator(cfg, keys=KEYS)
    state, logs = tmp_path / "state.sqlite", paper_logs / f"sigterm_{keep}"
    with _paced(sim):
        args = _paper_args(cfg, "equity", logs, state, *(["--keep-positions"] if keep else []))
        with (tmp_path / "out.txt").open("w") as out:
            trader = subprocess.Popen(args, env=_sim_env(sim), stdout=out,
                                      stderr=subprocess.STDOUT)
            snap = _wait_for(state, trader, "open")
            trader.send_signal(signal.SIGTERM)
            assert trader.wait(timeout=60) == 0, (tmp_path / "out.txt").read_text()[-3000:]
        positions = sim.positions()
        working = [o for o in sim.orders if o.status in ("new", "accepted")]
    summary = json.loads(next(logs.glob("session_summary_*.json")).read_text())
    assert summary["stopped_by"] == "SIGTERM"
    trades = pd.read_csv(next(logs.glob("trades_*.csv")))
    held = sum(-lot["remaining"] if lot["side"] < 0 else lot["remaining"]
               for lot in snap["lots"])
    if keep:     # open trades stay, with their protective exits working at Alpaca
        assert positions and summary["open_trades"] >= 1 and working
        assert "shutdown" not in set(trades["exit_reason"])
    else:
        assert positions == {} and summary["open_trades"] == 0 and not working
        assert "shutdown" in set(trades["exit_reason"]) and held != 0
    for name in ("paper_trading", "balance_progression", "daily", "regime", "alerts"):
        assert list(logs.glob(f"{name}_*")), name


def test_sigterm_withdraws_a_working_limit_close_and_closes_at_market(shared_data, paper_logs,
                                                                     tmp_path):
    """A condor's limit close works at Alpaca when SIGTERM comes: it is cancelled there
    first (else Alpaca would hold the contracts for it), then the condor closes at market."""
    cfg = _cfg(shared_data, "options", "2024-06-25", run=str(ROOT / "runs/iron_condor.toml"))
    sim = simulator(cfg, keys=KEYS)
    logs = paper_logs / "sigterm_limit"
    args = [sys.executable, "-m", "mtbt", "paper", str(ROOT / "runs/iron_condor.toml"),
            "--vix", cfg.data.vix, "--log-dir", str(logs), "--state", str(tmp_path / "s.sqlite")]
    with sim, (tmp_path / "out.txt").open("w") as out:
        trader = subprocess.Popen(args, env=_sim_env(sim), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while not any(o.is_open and "profit_target" in o.client_order_id for o in sim.orders):
            assert sim.bars_left and trader.poll() is None and time.monotonic() < deadline
            if sim.may_emit():             # step by hand, to stop with the limit working
                sim.step()
            time.sleep(0.001)
        limit = next(o for o in sim.orders if o.is_open)
        trader.send_signal(signal.SIGTERM)
        while limit.status != "canceled":  # cancelled before anything else steps
            assert trader.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        halt = threading.Event()
        threading.Thread(target=sim.run, kwargs=dict(stop=halt), daemon=True).start()
        assert trader.wait(timeout=60) == 0, (tmp_path / "out.txt").read_text()[-3000:]
        halt.set()
    assert sim.positions() == {}
    assert sim.orders[-1].client_order_id.endswith("-shutdown") and \
        sim.orders[-1].status == "filled"
    summary = json.loads(next(logs.glob("session_summary_*.json")).read_text())
    assert summary["stopped_by"] == "SIGTERM" and summary["open_trades"] == 0
    log = next(logs.glob("paper_trading_*.log")).read_text()
    assert "withdrawn for the shutdown: cancelling" in log


@pytest.mark.parametrize("env, args, message", [
    ({"ALPACA_API_KEY": KEYS[0], "ALPACA_SECRET_KEY": KEYS[1],
      "MTBT_ALPACA_TRADING_URL": "https://api.alpaca.markets"}, [],
     "https://api.alpaca.markets is a live-money endpoint"),
    ({"ALPACA_API_KEY": KEYS[0], "ALPACA_SECRET_KEY": KEYS[1],
      "MTBT_ALPACA_STREAM_URL": "wss://api.alpaca.markets/stream"}, [],
     "live-money endpoint"),
    ({"ALPACA_API_KEY": KEYS[0], "ALPACA_SECRET_KEY": KEYS[1],
      "MTBT_ALPACA_DATA_URL": "https://example.com"}, [], "not an Alpaca paper or local"),
    ({}, [], "ALPACA_API_KEY and ALPACA_SECRET_KEY not set"),
    ({"ALPACA_API_KEY": KEYS[0]}, [], "ALPACA_SECRET_KEY not set"),
    ({"ALPACA_API_KEY": KEYS[0], "ALPACA_SECRET_KEY": KEYS[1]},
     ["--set", "deployment.paper_mode=false"], "paper"),
    ({"ALPACA_API_KEY": KEYS[0], "ALPACA_SECRET_KEY": KEYS[1],
      "MTBT_ALPACA_TRADING_URL": "http://127.0.0.1:9"}, [],      # nothing listens there
     "cannot reach Alpaca at http://127.0.0.1:9"),
])
def test_paper_refuses_with_one_clear_line(monkeypatch, capsys, tmp_path, env, args, message):
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "MTBT_ALPACA_TRADING_URL",
                 "MTBT_ALPACA_DATA_URL", "MTBT_ALPACA_STREAM_URL",
                 "MTBT_ALPACA_DATA_STREAM_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    vix = tmp_path / "vix.parquet"
    pd.DataFrame({"timestamp": pd.date_range("2024-01-02", periods=30, freq="B"),
                  "close": 15.0}).to_parquet(vix)
    assert main(["paper", *args, "--vix", str(vix), "--log-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert KEYS[0] not in err and KEYS[1] not in err


@pytest.mark.parametrize("speed", ["-5", "nan", "fast"])
def test_a_replay_speed_under_zero_or_not_a_number_is_refused(capsys, speed):
    with pytest.raises(SystemExit) as stop:
        main(["paper", "--replay", "bars.parquet", "--speed", speed])
    assert stop.value.code == 2
    assert "argument --speed: expected" in capsys.readouterr().err


def test_dry_run_sends_nothing_and_logs_would_be_orders(shared_data, paper_logs, tmp_path):
    cfg = _cfg(shared_data, "equity")
    sim = simulator(cfg, keys=KEYS)
    result = replay(cfg, sim=sim, dry_run=True, log_dir=paper_logs / "dry")
    assert sim.orders == [] and sim.positions() == {}
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert "DRY RUN" in log and "WOULD SEND mtbt-20240802-0001-t1-entry sell" in log
    assert not (paper_logs / "dry" / "state.sqlite").exists()


def test_the_key_check_finds_a_key_written_anywhere(tmp_path):
    """conftest.py's ``no_file_holds_a_test_key`` greps every file the tests wrote for
    ``KEYS`` after the last test; here it finds one, deep in a folder, and nothing else."""
    from tests.conftest import files_holding

    leak = tmp_path / "logs" / "deep" / "paper_trading_X.log"
    leak.parent.mkdir(parents=True)
    leak.write_text(f"ok\nAPCA-API-KEY-ID: {KEYS[0]}\n")
    (tmp_path / "clean.log").write_text("APCA-API-KEY-ID: ***")
    assert files_holding(tmp_path, KEYS) == [str(leak)]
    leak.unlink()                                # the suite's own check must stay green
