"""Paper trading: exits the broker refuses, fills that race their cancels, oco legs Alpaca
ends itself, orphan legs (alpaca-py's real clients against the local simulator)."""
from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from mtbt.live.replay import replay, simulator
from mtbt.sim import Faults
from tests.test_paper import (
    KEYS,
    _backtest,
    _cfg,
    _never_reversed,
    _open_orphan_leg,
    _sorted,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")


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
    log = _closed_once(result, sim, expected, trade)
    assert f"LATE FILL #{trade} " in log


@pytest.mark.parametrize("fills", [True, False])
def test_a_close_waits_while_its_trades_exit_is_pending_cancel(shared_data, paper_logs,
                                                                tmp_path, fills):
    """Alpaca accepts the cancel of trade 2's exits at 15:44 (HTTP 204) but leaves the oco
    ``pending_cancel``, and at the next bar it fills after all (or is cancelled). The end
    of day close is held back while the cancel is pending (sent then, it bought the shares
    the stop bought back: the account ended long 61 SPY that mtbt did not know of), and
    sent on the next bar for what the trade still holds. No refusal is counted."""
    cfg = _cfg(shared_data, "equity")
    expected = _backtest(cfg, tmp_path / "bt")
    sim = simulator(cfg, Faults(pending_cancel="-t2-", pending_cancel_fills=fills), keys=KEYS)
    result = replay(cfg, sim=sim, log_dir=paper_logs / f"pending{fills}",
                    state_path=tmp_path / "state.sqlite")
    log = _closed_once(result, sim, expected, 2)
    assert "is pending at Alpaca" in log and "closing again next bar" in log
    assert ("LATE FILL #2 " in log) == fills and "refusal" not in log


def _closed_once(result, sim, expected: pd.DataFrame, trade: int) -> str:
    """Assert that orders were withdrawn and none of them sent, no trade reversed, the
    account flat and every share of ``trade`` closed once; the session log."""
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    withdrawn = {line.split("WITHDRAWN ")[1].split(":")[0] for line in log.splitlines()
                 if "WITHDRAWN " in line}
    assert withdrawn, "nothing withdrawn"
    assert not withdrawn & {o.client_order_id for o in sim.orders}, "a withdrawn order went"
    _never_reversed(sim)
    assert sim.positions() == {} and result.summary["open_trades"] == 0
    got = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    mine = got["trade_id"] == trade
    assert got.loc[mine, "qty"].sum() == expected.loc[expected["trade_id"] == trade,
                                                      "qty"].sum()
    assert "Traceback" not in log and result.stopped_by == "session end"
    return log


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
    cfg = _cfg(shared_data, "options")
    expected = _backtest(cfg, tmp_path / "bt")
    sim = simulator(cfg, keys=KEYS)
    done: dict = {}
    trader = threading.Thread(target=lambda: done.update(result=replay(
        cfg, sim=sim, log_dir=paper_logs / "orphan", state_path=tmp_path / "state.sqlite")))
    trader.start()
    leg = _open_orphan_leg(sim, KEYS, trader)
    trader.join(timeout=300)
    result = done["result"]
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert f"ORPHAN {leg.symbol}" in log and result.summary["orphans"]
    assert sim.positions() == {}
    pd.testing.assert_frame_equal(_sorted(result.trades), _sorted(expected), check_exact=True)


@pytest.mark.parametrize("fills", [True, False])
def test_a_shutdown_close_waits_for_a_pending_cancel_then_goes(shared_data, paper_logs,
                                                               tmp_path, fills):
    """The session is stopped while trade 1 holds its exits; their cancel is accepted but
    left pending at Alpaca, and at the next bar it fills (or is cancelled). The shutdown's
    close waits for it and goes once it is cancelled, for what the trade still holds: every
    share closed once (half by the oco's stop, or all by the close, reason ``shutdown``),
    the account flat. (The simulator steps a bar at a time while the shutdown waits.)"""
    cfg = _cfg(shared_data, "equity")
    # pending for two bars: the simulator may step the bar after the last one the trader
    # handled at any time (the trader had acked it), before or while the shutdown cancels
    sim = simulator(cfg, Faults(pending_cancel="-t1-", pending_cancel_fills=fills,
                                pending_cancel_bars=2), keys=KEYS)
    stop = threading.Event()

    def stop_when_trade_1_holds_its_exits() -> None:
        while not stop.is_set():
            if any(o.is_open and o.order_class == "oco" and "-t1-" in o.client_order_id
                   for o in list(sim.orders)):
                stop.set()
            time.sleep(0.002)

    threading.Thread(target=stop_when_trade_1_holds_its_exits, daemon=True).start()
    result = replay(cfg, sim=sim, log_dir=paper_logs / f"stop_pending{fills}",
                    state_path=tmp_path / "state.sqlite", stop=stop)
    stop.set()
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert result.stopped_by == "stop requested" and "is pending at Alpaca" in log
    assert "trades still open" not in log and "Traceback" not in log
    _never_reversed(sim)
    assert sim.positions() == {} and result.summary["open_trades"] == 0
    got = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    entry = next(o for o in sim.orders if o.client_order_id.endswith("-t1-entry"))
    assert list(got["exit_reason"]) == (["stop", "shutdown"] if fills else ["shutdown"])
    assert got["qty"].sum() == entry.filled_qty          # half by the oco's stop, or none
