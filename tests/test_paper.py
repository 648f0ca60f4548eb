"""Paper trading end to end: alpaca-py's real clients against the local simulator.

Parity (the replayed day trades exactly like the backtest), faults (every knob on), the
breaker across days, and the helpers the other paper tests share (``test_paper_exits``:
refused and racing exits; ``test_paper_process``: SIGKILL, SIGTERM, refusals, keys; split
so the test workers share them out). The trader runs on real SPY bars (skipped without
../shared).
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
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


def _cfg(shared: Path, instrument: str, day: str | None = None, *overrides: str,
         run: str | None = None):
    cfg = load_run(run, [f'data.bars="{shared / "spy_1m_2024-03-26_2025-04-02.parquet"}"',
                         f'data.vix="{shared / "vix_1d_1990_2026.parquet"}"',
                         f'strategy.instrument="{instrument}"', "report.tearsheet=false",
                         *overrides])
    return replay_config(cfg, cfg.data.bars, pd.Timestamp(day or DAYS[instrument]).date())


_BACKTESTS: dict[str, pd.DataFrame] = {}


def _backtest(cfg, out: Path) -> pd.DataFrame:
    """trades.csv of ``cfg``'s backtest, run once per configuration in this process (many
    tests compare a replay of the same day with it)."""
    key = json.dumps(cfg.as_dict(), sort_keys=True, default=str)
    if key not in _BACKTESTS:
        run_backtest(cfg, out_dir=out, tearsheet=False)
        _BACKTESTS[key] = pd.read_csv(out / "trades.csv")
    return _BACKTESTS[key].copy()


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
    # both streams stop at once when the session ends (alpaca-py looks for a stop every 5 s)
    log = (result.folder / f"paper_trading_{result.session}.log").read_text().splitlines()
    stamp = {what: pd.Timestamp(next(line for line in log if what in line)[:23])
             for what in ("finished (session end)", "Trading stream stopped",
                          "data stream stopped")}
    finished = stamp.pop("finished (session end)")
    assert all(at - finished < pd.Timedelta(seconds=2) for at in stamp.values()), stamp


def test_replayed_condor_day_closes_at_its_limits_like_the_backtest(shared_data, paper_logs,
                                                                    tmp_path):
    """runs/iron_condor.toml on 2024-06-25: three condors closed at their profit target by
    limit orders (an mleg limit at Alpaca), one limit not reached at the next open: cancelled
    at Alpaca, judged again on that bar and closed a bar later, as in the backtest."""
    cfg = _cfg(shared_data, "options", "2024-06-25", run=str(ROOT / "runs/iron_condor.toml"))
    run_backtest(cfg, out_dir=tmp_path / "bt", tearsheet=False)      # its run.log is read
    expected = pd.read_csv(tmp_path / "bt" / "trades.csv")
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


def _open_orphan_leg(sim, keys: tuple[str, str], trader: threading.Thread):
    """Once a structure has filled (``trader`` still running), open one more contract of its
    first leg at the simulator from outside mtbt (client id ``not-mtbt``): an orphan leg.
    Returns that leg."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from alpaca.trading.client import TradingClient
        from alpaca.trading.enums import OrderSide, PositionIntent, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

    deadline = time.monotonic() + 120
    while not any(o.legs and o.status == "filled" for o in sim.orders):
        assert time.monotonic() < deadline and trader.is_alive()
        time.sleep(0.005)
    leg = next(o for o in sim.orders if o.legs and o.status == "filled").legs[0]
    client = TradingClient(*keys, paper=True, url_override=sim.trading_url)
    client.submit_order(MarketOrderRequest(
        symbol=leg.symbol, qty=1, side=OrderSide(leg.side), time_in_force=TimeInForce.DAY,
        position_intent=PositionIntent(f"{leg.side}_to_open"), client_order_id="not-mtbt"))
    return leg


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


class _Pacer:
    """Steps a simulator in lockstep in a thread; ``pause`` stops the clock (the trader
    then waits for its next bar), ``resume`` goes on."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.halt = threading.Event()
        self.thread: threading.Thread | None = None

    def resume(self) -> None:
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.sim.run, kwargs=dict(stop=self.halt),
                                       daemon=True)
        self.thread.start()

    def pause(self) -> None:
        self.halt.set()
        self.thread.join(timeout=10)


@contextmanager
def _paced(sim):
    """The simulator serving and stepping in lockstep (a ``_Pacer``) until the block ends."""
    with sim:
        pacer = _Pacer(sim)
        pacer.resume()
        try:
            yield pacer
        finally:
            pacer.halt.set()


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
