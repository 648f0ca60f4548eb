"""Every restart path of the paper trader, with the trader in its own process.

The test steps the simulator itself, bar by bar, each bar once the trader has handled the
one before (lockstep), so it can SIGKILL the trader at an exact point: right after an entry
was sent, right after an exit was sent, while a structure order works. The simulator then
runs one more bar with nobody connected (the order fills while the trader is down), and a
second trader, started with the same command, must finish the day with the backtest's
trades, the stops in place and no order sent twice. Skipped without ../shared.
"""
from __future__ import annotations

import datetime as dt
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from mtbt.live.replay import replay, simulator
from mtbt.sim import Faults
from tests.test_paper import (
    KEYS,
    _backtest,
    _cfg,
    _checkpoint,
    _never_reversed,
    _paced,
    _paper_args,
    _sim_env,
    _sorted,
    _wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")


def _kill_when(sim, trader: subprocess.Popen, sent) -> object:
    """Step ``sim`` in lockstep with ``trader`` until ``sent(order)`` holds for an order
    it received, or a request is held (``sim.hold``); SIGKILL the trader there (the order
    sent, its answer maybe not read; or the held request never arrived) and return that
    order, or the held request."""
    seen: set[str] = set()
    while trader.poll() is None:
        if sim.held:
            trader.send_signal(signal.SIGKILL)
            trader.wait(timeout=30)
            sim.hold(None)
            return sim.held[0]
        if not sim.wait_ready(timeout=0.2):
            continue
        for order in sim.orders:
            if order.client_order_id not in seen:
                seen.add(order.client_order_id)
                if sent(order):
                    trader.send_signal(signal.SIGKILL)
                    trader.wait(timeout=30)
                    return order
        if not sim.step():
            break
    raise AssertionError(f"the trader ended ({trader.poll()}) before the order was sent")


def _restart(cfg, instrument: str, tmp_path: Path, logs: Path, sent, down_bars: int = 1,
             hold=None, force=None, sim=None):
    """Run the day, kill the trader at ``sent`` (or at the first request ``hold`` holds),
    let ``down_bars`` bars pass (filling the orders ``force`` picks by client id, as
    ``Simulator.force_fills``), run it again; returns (the order or request at the kill,
    the simulator, the restarted trader's trades, its stderr). ``sim``: a simulator of
    ``cfg`` made by the caller."""
    sim = sim or simulator(cfg, keys=KEYS)
    sim.hold(hold)
    state = tmp_path / "state.sqlite"
    args = _paper_args(cfg, instrument, logs, state)
    with sim:
        env = _sim_env(sim)
        with (tmp_path / "first.out").open("w") as out:
            first = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
            order = _kill_when(sim, first, sent)
        sim.force_fills(force)
        for _ in range(down_bars):
            sim.step()                       # nobody listening: fills happen while down
        sim.force_fills(None)
        halt = threading.Event()
        pacer = threading.Thread(target=sim.run, kwargs=dict(stop=halt), daemon=True)
        pacer.start()
        try:
            second = subprocess.run(args, env=env, capture_output=True, text=True,
                                    timeout=300)
        finally:
            halt.set()
            pacer.join(timeout=5)
    assert second.returncode == 0, second.stderr[-3000:]
    trades = pd.read_csv(sorted(logs.glob("trades_*.csv"))[-1])
    return order, sim, trades, second.stderr


def _no_order_twice(sim) -> None:
    ids = [o.client_order_id for o in sim.orders]
    assert len(ids) == len(set(ids))
    entries = [i.split("-t")[1].split("-")[0] for i in ids if i.endswith("-entry")]
    assert len(entries) == len(set(entries)), "a trade was entered twice"


CASES = {
    # 2025-01-10, shares: the case (an entry that filled while the trader was down
    # crashed every restart and left the account short with no stop)
    "entry": ("equity", "2025-01-10", lambda o: o.client_order_id.endswith("-entry")),
    # the first exit order after a fill: the stop/target pair of a trade
    "exit": ("equity", "2025-01-10",
             lambda o: not o.client_order_id.endswith(("-entry", "-eod"))),
    # a structure's opening mleg order, working when the trader dies
    "structure": ("options", "2025-01-02",
                  lambda o: o.order_class == "mleg" and "entry" in o.client_order_id),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_kill_right_after_a_send_then_restart_ends_like_the_backtest(shared_data,
                                                                       paper_logs,
                                                                       tmp_path, case):
    instrument, day, sent = CASES[case]
    cfg = _cfg(shared_data, instrument, day)
    expected = _backtest(cfg, tmp_path / "bt")
    logs = paper_logs / f"kill_{case}"
    order, sim, trades, stderr = _restart(cfg, instrument, tmp_path, logs, sent)
    assert order.status != "new", "the order did not fill or work while the trader was down"
    if case == "entry":       # the restarted trader put its stop (an oco with the target) in
        trade = order.client_order_id.split("-t")[1].split("-")[0]
        stops = [o for o in sim.orders if f"-t{trade}-" in o.client_order_id
                 and o.order_class == "oco" and o.legs and o.legs[0].type == "stop"]
        assert stops and stops[0].created_at >= order.filled_at
    _no_order_twice(sim)
    assert sim.positions() == {}
    pd.testing.assert_frame_equal(_sorted(trades), _sorted(expected), check_exact=True)
    log = next(p for p in logs.glob("paper_trading_*.log") if "RESUMED" in p.read_text())
    assert "Traceback" not in log.read_text() + stderr


def test_a_kill_before_a_stop_move_reached_alpaca_then_restart_moves_it(shared_data,
                                                                       paper_logs, tmp_path):
    """A trail move is recorded (a replace of the oco's stop leg), and the trader dies
    before the request reaches Alpaca: the restart finds the replace unsent, takes over the
    oco it was to replace (still working there, under its old client id) and moves its stop,
    with no order refused for want of shares."""
    cfg = _cfg(shared_data, "equity", "2024-08-02")
    expected = _backtest(cfg, tmp_path / "bt")
    logs = paper_logs / "kill_replace"
    held, sim, trades, stderr = _restart(cfg, "equity", tmp_path, logs, sent=lambda o: False,
                                         hold=lambda method, route, body: method == "PATCH")
    method, _, body = held
    assert method == "PATCH"
    log = next(p for p in logs.glob("paper_trading_*.log") if "RESUMED" in p.read_text())
    text = log.read_text()
    assert f"RESTART {body['client_order_id']} was not sent: the oco it replaces is" in text
    assert not [r for r in sim.rejections if r[0] in (403, 422)], sim.rejections
    assert any(event["event"] == "replaced" for event in sim.trade_events)
    _no_order_twice(sim)
    assert sim.positions() == {}
    pd.testing.assert_frame_equal(_sorted(trades), _sorted(expected), check_exact=True)
    assert "Traceback" not in text + stderr


def test_a_kill_as_trades_close_whose_stops_then_fill_while_down(shared_data, paper_logs,
                                                                 tmp_path):
    """At 15:44 the strategy cancels two trades' exits and records their closes; the trader
    dies before the first cancel reaches Alpaca, and the stops fill while it is down. The
    restart books those fills as the trades' exits and withdraws the closes: no trade is
    reversed (the closes used to be sent, leaving the account short), every share of each
    trade is closed once, and the day ends flat."""
    cfg = _cfg(shared_data, "equity", "2024-08-02")
    expected = _backtest(cfg, tmp_path / "bt")
    logs = paper_logs / "kill_closing"
    sim = simulator(cfg, keys=KEYS)

    def at_the_close(method, route, body) -> bool:
        return method == "DELETE" and sim.exchange.now.time() >= dt.time(15, 45)

    held, sim, trades, stderr = _restart(cfg, "equity", tmp_path, logs, sent=lambda o: False,
                                         hold=at_the_close, force=lambda client_id: True,
                                         sim=sim)
    assert held[0] == "DELETE"
    closing = expected.loc[expected["exit_reason"] == "eod", "trade_id"].tolist()
    assert len(closing) == 2
    log = next(p for p in logs.glob("paper_trading_*.log") if "RESUMED" in p.read_text())
    text = log.read_text()
    for trade in closing:
        assert f"LATE FILL #{trade} stop" in text
        assert not [o for o in sim.orders if o.client_order_id.endswith(f"-t{trade}-eod")]
        assert trades.loc[trades["trade_id"] == trade, "qty"].sum() == \
            expected.loc[expected["trade_id"] == trade, "qty"].sum()
    _never_reversed(sim)
    _no_order_twice(sim)
    assert sim.positions() == {}
    assert "Traceback" not in text + stderr


def test_a_kill_while_a_cancel_is_pending_then_restart_waits_for_it(shared_data, paper_logs,
                                                                     tmp_path):
    """At 15:44 Alpaca accepts the cancel of trade 2's exits but leaves them pending (two
    bars), so the trader withholds that trade's close; it dies right after (trade 3's close
    sent). The cancel is still pending when the trader has restarted, so the close it had
    recorded waits again; the stop then fills, is booked to the trade, and the close goes
    for the rest: nothing is reversed or sent twice, and the day ends flat. (A stop that
    fills while the trader is down: ``test_a_kill_as_trades_close_whose_stops_then_...``.)"""
    cfg = _cfg(shared_data, "equity", "2024-08-02")
    expected = _backtest(cfg, tmp_path / "bt")
    logs = paper_logs / "kill_pending_cancel"
    sim = simulator(cfg, Faults(pending_cancel="-t2-", pending_cancel_bars=2), keys=KEYS)
    killed, sim, trades, stderr = _restart(
        cfg, "equity", tmp_path, logs, sent=lambda o: o.client_order_id.endswith("-t3-eod"),
        down_bars=0, sim=sim)
    first, second = (p.read_text() for p in sorted(logs.glob("paper_trading_*.log")))
    assert "-t2-eod: the cancel of" in first and "is pending at Alpaca" in first
    assert "-t2-eod: the cancel of" in second and "is pending at Alpaca" in second
    assert "LATE FILL #2 stop" in second
    assert "Traceback" not in first + second + stderr
    assert trades.loc[trades["trade_id"] == 2, "qty"].sum() == \
        expected.loc[expected["trade_id"] == 2, "qty"].sum()
    _never_reversed(sim)
    _no_order_twice(sim)
    assert sim.positions() == {}


def test_a_restart_counts_the_refusals_of_a_trades_exits_before_it(shared_data, paper_logs,
                                                                    tmp_path):
    """Alpaca refuses trade 1's exit pair every time: twice before the kill (held at the
    third try), once after the restart, and that third refusal closes it at market (reason
    ``risk``), as without the restart; the count used to start again at zero."""
    cfg = _cfg(shared_data, "equity")
    sim = simulator(cfg, Faults(reject_order="-t1-tp1", reject_times=10), keys=KEYS)

    def third_try(method, route, body) -> bool:
        return method == "POST" and len(sim.injected) >= 2 and \
            "-t1-tp1" in (body or {}).get("client_order_id", "")

    held, sim, trades, stderr = _restart(cfg, "equity", tmp_path, paper_logs / "refusals",
                                         sent=lambda o: False, hold=third_try, sim=sim)
    assert held[0] == "POST" and len(sim.injected) == 3
    assert list(trades.loc[trades["trade_id"] == 1, "exit_reason"])[-1] == "risk"
    assert sim.positions() == {}
    assert "Traceback" not in stderr


def test_a_later_day_on_the_same_state_file_starts_a_new_day(shared_data, paper_logs,
                                                            tmp_path):
    """Day 1 stopped with a trade open (Ctrl-C with --keep-positions), then day 2 on the
    same state file: the day's counters start at zero, day 1's trades stay in day 1's files,
    the run's counters carry over and the trade left open is reported."""
    state, logs = tmp_path / "state.sqlite", paper_logs / "day_roll"
    day1 = _cfg(shared_data, "equity", "2024-10-09")
    stop = threading.Event()

    def stop_with_a_trade_open() -> None:
        while not stop.is_set():
            snap = _checkpoint(state)
            if snap and any(lot["stage"] == "open" for lot in snap["lots"]):
                stop.set()
            time.sleep(0.01)

    threading.Thread(target=stop_with_a_trade_open, daemon=True).start()
    first = replay(day1, log_dir=logs / "day1", state_path=state, stop=stop,
                   keep_positions=True)
    held = _checkpoint(state)
    assert first.stopped_by != "session end" and held["lots"], "no trade was left open"

    day2 = _cfg(shared_data, "equity", "2024-10-10")
    expected = _backtest(day2, tmp_path / "bt")
    second = replay(day2, log_dir=logs / "day2", state_path=state)
    log = (second.folder / f"paper_trading_{second.session}.log").read_text()
    realised = held["risk"]["realized"]
    assert f"RESUMED risk: day pnl +0.00, realised {realised:+.2f}" in log
    lot = held["lots"][0]
    assert f"CARRIED OVER #{lot['trade_id']}" in log and "from the session of 2024-10-09" in log
    assert second.summary["carried_over"] == [f"#{lot['trade_id']} of 2024-10-09"]
    trades = pd.read_csv(second.folder / f"trades_{second.session}.csv")
    assert trades["entry_time"].str.startswith("2024-10-10").all()
    assert len(trades) == len(expected)


def test_a_second_session_on_the_same_state_file_refuses_naming_the_first(shared_data,
                                                                          paper_logs,
                                                                          tmp_path):
    cfg = _cfg(shared_data, "equity")
    sim = simulator(cfg, keys=KEYS)
    state = tmp_path / "state.sqlite"
    args = _paper_args(cfg, "equity", paper_logs / "lock", state)
    with _paced(sim) as pacer:
        env = _sim_env(sim)
        with (tmp_path / "first.out").open("w") as out:
            first = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                _wait_for(state, first, "open")
                pacer.pause()            # the day must not end before the second starts
                second = subprocess.run(args, env=env, capture_output=True, text=True,
                                        timeout=120)
                pacer.resume()
            finally:
                first.wait(timeout=300)
    assert second.returncode == 2
    error = second.stderr.strip()
    assert "\n" not in error and f"in use by another mtbt session (pid {first.pid})" in error
    assert first.returncode == 0
