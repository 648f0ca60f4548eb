"""Sweeps and walk-forward through a local Ray (one per module): the bars go through the object
store, results are kept as they finish, a failure does not stop the others, and a test
window is traded only with what its train window chose."""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from feeds.loader import load_market_data
from mtbt.cli import main
from mtbt.research.grid import combinations, load_grid
from mtbt.research.metrics import METRICS
from mtbt.research.pool import RayPool, read_journal
from mtbt.research.sweep import sweep_tasks
from mtbt.research.tasks import run_task

SMALL = ["--set", 'strategy.instrument="equity"', "--set", "data.sample_sessions=20"]
GRID = "[scaling_exits]\ntp1_pct = [0.008, 0.01]\nstop_pct = [0.006, 0.007]\n"


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray on 2 CPUs, shared by the module's tests (RayPool uses it as it is)."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture
def grid(tmp_path) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    return path


def test_a_tiny_sweep_runs_on_ray_and_matches_plain_backtests(local_ray, grid, tmp_path,
                                                              capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--grid", str(grid), *SMALL, "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "sweep.csv")
    assert table["combination"].tolist() == [1, 2, 3, 4]
    assert table[["scaling_exits.tp1_pct", "scaling_exits.stop_pct"]].values.tolist() == [
        [0.008, 0.006], [0.008, 0.007], [0.01, 0.006], [0.01, 0.007]]
    assert set(METRICS) <= set(table.columns) and table["error"].isna().all()
    assert table["trades"].gt(0).all()
    page = (out / "heatmap.html").read_text()
    assert "data:image/png;base64," in page and "SYNTHETIC" in page and "in-sample" in page
    # the shared bars give what a backtest that loads them itself gives
    alone = tmp_path / "alone"
    assert main(["backtest", *SMALL, "--set", "scaling_exits.tp1_pct=0.01", "--set",
                 "scaling_exits.stop_pct=0.007", "--out", str(alone), "--quiet",
                 "--no-tearsheet"]) == 0
    summary = json.loads((alone / "summary.json").read_text())
    assert table.iloc[3][["trades", "total_pnl", "max_drawdown"]].tolist() == [
        summary["trades"], summary["total_pnl"], summary["max_drawdown"]]
    # a rerun with the same --out runs nothing again
    capsys.readouterr()
    assert main(["sweep", "--grid", str(grid), *SMALL, "--out", str(out), "--quiet"]) == 0
    assert "(0 run now, 4 already done, 0 failed)" in capsys.readouterr().out
    assert len((out / "results.jsonl").read_text().splitlines()) == 4


def test_a_failed_task_is_reported_and_the_others_finish(local_ray, grid, tmp_path, capsys):
    combos = combinations(load_grid(grid), None, SMALL[1::2])
    market = load_market_data(combos[0].cfg.data)
    tasks = sweep_tasks(combos, market)
    bad = tasks[1].key

    def flaky(task, bars):        # runs on a Ray worker (pickled by value)
        if task.key == bad:
            raise RuntimeError("boom")
        return {"metrics": {"trades": len(bars.bars)}, "seconds": 0.0}

    journal = tmp_path / "results.jsonl"
    with RayPool(workers=2) as pool:
        first = pool.run(tasks, market, journal=journal, fn=flaky)
    assert first.failed == [tasks[1].label] and first.ran == 4
    assert "boom" in first.results[bad]["error"]
    assert all(first.results[t.key]["metrics"]["trades"] == len(market.bars)
               for t in tasks if t.key != bad)
    assert f"{tasks[1].label} failed: RuntimeError: boom" in capsys.readouterr().err
    assert set(read_journal(journal)) == {t.key for t in tasks} - {bad}
    with RayPool(workers=2) as pool:      # the rerun runs only the failed one
        second = pool.run(tasks, market, journal=journal, fn=lambda task, bars: {
            "metrics": {"trades": 0}, "seconds": 0.0})
    assert (second.ran, second.skipped, second.failed) == (1, 3, [])


def test_a_task_turns_an_exception_into_an_error(tmp_path, grid):
    combos = combinations(load_grid(grid), None, SMALL[1::2])
    market = load_market_data(combos[0].cfg.data)
    broken = replace(market, bars=market.bars.drop(columns="close"))
    result = run_task(sweep_tasks(combos, broken)[0], broken)
    assert result["error"].startswith("KeyError") and "metrics" not in result


def test_walkforward_chooses_on_train_and_trades_only_inside_test(local_ray, grid, tmp_path):
    out = tmp_path / "wf"
    small = [SMALL[0], SMALL[1], "--set", "data.sample_sessions=30"]
    assert main(["walkforward", "--grid", str(grid), *small, "--train", "10d", "--test", "10d",
                 "--out", str(out), "--quiet", "--no-tearsheet"]) == 0
    windows = pd.read_csv(out / "windows.csv", parse_dates=[
        "train_first", "train_last", "test_first", "test_last"])
    assert len(windows) == 2
    assert (windows["train_last"] < windows["test_first"]).all()
    assert (windows["test_first"].iloc[1:].values > windows["test_last"].iloc[:-1].values).all()
    # the choice is the best total_pnl of that window's train runs, nothing else
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(train) == 8
    for _, w in windows.iterrows():
        runs = sorted((int(r["label"].split("combination ")[1].split()[0]), r["metrics"])
                      for r in train if r["label"].startswith(f"window {w['window']} train"))
        number, figures = max(runs, key=lambda r: (r[1]["total_pnl"], -r[0]))  # first on ties
        assert (number, figures["total_pnl"]) == (w["combination"], w["is_total_pnl"])
    # every out-of-sample trade opens and closes inside a test window
    trades = pd.read_csv(out / "trades.csv")
    assert len(trades)
    for column in ("entry_time", "exit_time"):
        day = pd.to_datetime(trades[column].str.slice(0, 10))
        inside = [((windows["test_first"] <= d) & (d <= windows["test_last"])).any()
                  for d in day]
        assert all(inside)
    equity = pd.read_csv(out / "equity.csv")
    assert equity["timestamp"].iloc[0][:10] == str(windows["test_first"].iloc[0].date())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trades"] == windows["oos_trades"].sum() == trades["trade_id"].nunique()
    assert "optimistic" in (out / "walkforward.md").read_text()


def test_an_address_nothing_answers_at_is_one_line_within_seconds():
    import socket
    import time

    from mtbt.errors import MtbtError
    from mtbt.research.pool import check_address

    with socket.socket() as probe:           # a port nobody listens on (bound, then closed)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(MtbtError, match=f"nothing answers at 127.0.0.1:{port}"):
        check_address(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 30
    with pytest.raises(MtbtError, match="expected HOST:PORT"):
        check_address("127.0.0.1:notaport")


def test_a_ray_client_address_needs_the_client_or_is_refused_in_one_line():
    from mtbt.errors import MtbtError
    from mtbt.research.pool import check_address

    try:
        import grpc  # noqa: F401
    except ImportError:
        with pytest.raises(MtbtError, match=r"ray:// needs Ray's client \(pip install"):
            check_address("ray://127.0.0.1:10001")
    else:
        pytest.skip("Ray's client is installed: ray:// addresses are probed like the others")
