"""Paper trading as a process: SIGKILL and restart, SIGTERM, the refusals at start, dry
runs and the key check (``python -m mtbt paper`` against the local simulator)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from mtbt.cli import main
from mtbt.live.replay import replay, simulator
from tests.test_paper import (
    KEYS,
    ROOT,
    _backtest,
    _cfg,
    _checkpoint,
    _paced,
    _paper_args,
    _sim_env,
    _sorted,
    _wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")


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
    with _paced(sim) as pacer:
        args = _paper_args(cfg, "equity", logs, state, *(["--keep-positions"] if keep else []))
        with (tmp_path / "out.txt").open("w") as out:
            trader = subprocess.Popen(args, env=_sim_env(sim), stdout=out,
                                      stderr=subprocess.STDOUT)
            snap = _wait_for(state, trader, "open")
            pacer.pause()                # the signal comes while the trade is open
            trader.send_signal(signal.SIGTERM)
            pacer.resume()
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
