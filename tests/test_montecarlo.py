"""``mtbt montecarlo``: the trades are resampled whole (rows grouped by trade_id), the same
seed gives the same paths, and the limits are measured as the risk manager counts them."""
from __future__ import annotations

import json
from itertools import combinations_with_replacement
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzers.journal import TRADE_COLUMNS
from mtbt.cli import main
from mtbt.research.montecarlo import actual, bootstrap, read_run


def report_dir(tmp_path: Path, rows: list[tuple[int, str, float]], daily: float = 500.0,
               total: float = 1000.0) -> Path:
    """A report folder with trades.csv (trade_id, exit day, pnl per row) and config.json."""
    folder = tmp_path / "report"
    folder.mkdir()
    trades = pd.DataFrame([{c: "" for c in TRADE_COLUMNS} | {
        "trade_id": tid, "exit_time": f"{day}T10:30:00-05:00", "pnl": pnl}
        for tid, day, pnl in rows], columns=list(TRADE_COLUMNS))
    trades.to_csv(folder / "trades.csv", index=False)
    risk = {"account_size": 25000.0, "daily_dd_limit": daily, "max_dd_threshold": total}
    (folder / "config.json").write_text(json.dumps({"risk_management": risk}))
    return folder


ROWS = [(1, "2024-01-02", 150.0), (1, "2024-01-02", -30.0),      # scaled out: one trade
        (2, "2024-01-02", -300.0), (3, "2024-01-03", -300.0), (4, "2024-01-03", -250.0),
        (5, "2024-01-05", 400.0)]


def test_rows_of_one_trade_are_resampled_as_one(tmp_path):
    run = read_run(report_dir(tmp_path, ROWS))
    assert run.pnl.tolist() == [120.0, -300.0, -300.0, -250.0, 400.0]
    assert run.days.tolist() == [0, 0, 1, 1, 2]
    own = actual(run)
    assert own.total_pnl[0] == pytest.approx(-330.0)
    assert own.max_drawdown[0] == pytest.approx(850.0)     # from +120 down to -730
    assert own.daily_hit[0]                                 # day 2 lost 550 >= 500
    assert not own.total_hit[0]                             # 850 < 1000


def test_the_bootstrap_is_reproducible_with_a_seed(tmp_path):
    run = read_run(report_dir(tmp_path, ROWS))
    a, b, c = bootstrap(run, 3000, seed=11), bootstrap(run, 3000, seed=11), bootstrap(
        run, 3000, seed=12)
    for field in ("total_pnl", "max_drawdown", "daily_hit", "total_hit"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.total_pnl, c.total_pnl)
    # chunking does not change the paths
    assert np.array_equal(bootstrap(run, 3000, seed=11, chunk=700).total_pnl, a.total_pnl)
    # every path draws 5 of the run's trades with replacement
    sums = {round(sum(draw), 2) for draw in combinations_with_replacement(run.pnl.tolist(), 5)}
    assert set(np.round(a.total_pnl, 2)) <= sums


def test_limits_that_every_path_reaches_are_certain(tmp_path):
    run = read_run(report_dir(tmp_path, [(1, "2024-01-02", -600.0), (2, "2024-01-03", -600.0)]))
    paths = bootstrap(run, 200, seed=1)
    assert paths.daily_hit.all() and paths.total_hit.all()
    assert np.allclose(paths.total_pnl, -1200.0) and np.allclose(paths.max_drawdown, 1200.0)


def test_the_command_writes_its_report_and_records_the_seed(tmp_path, capsys):
    folder = report_dir(tmp_path, ROWS)
    assert main(["montecarlo", str(folder), "--n", "500", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "500 paths (seed 5) of 5 trades" in out
    first = json.loads((folder / "montecarlo.json").read_text())
    assert first["seed"] == 5 and first["paths"] == 500 and first["trades"] == 5
    assert "grouped by trade_id" in first["resampled"]
    assert 0 < first["p_daily_limit"] <= 1 and first["run"]["daily_limit_hit"] is True
    assert (folder / "montecarlo.png").read_bytes()[:4] == b"\x89PNG"
    md = (folder / "montecarlo.md").read_text()
    assert "| total_pnl |" in md and "montecarlo.png" in md
    assert main(["montecarlo", str(folder), "--n", "500", "--seed", "5",
                 "--out", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "montecarlo.json").read_text()) | {
        "report": first["report"]} == first


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "missing: no such report folder"),
    (lambda tmp: report_dir(tmp, []), "trades.csv: no trades to resample"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "trades.csv: not found"),
    (lambda tmp: _spoil(report_dir(tmp, ROWS), ",,,150.0,", ",,,abc,"),
     "line 2: pnl 'abc' is not a number"),
    (lambda tmp: _spoil(report_dir(tmp, ROWS), "2024-01-03T10:30:00-05:00", "yesterday"),
     "exit_time 'yesterday' is not a date and time"),
    (lambda tmp: _spoil(report_dir(tmp, ROWS), "\n3,", '\n"3,'),
     "trades.csv: not a readable trades file"),
])
def test_report_folder_mistakes_are_one_line(make, message, tmp_path, capsys):
    assert main(["montecarlo", str(make(tmp_path)), "--n", "10"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def _spoil(folder: Path, old: str, new: str) -> Path:
    """``folder`` with the first ``old`` of its trades.csv replaced by ``new``."""
    path = folder / "trades.csv"
    text = path.read_text()
    assert old in text, text
    path.write_text(text.replace(old, new, 1))
    return folder


def test_a_negative_seed_is_refused_by_the_option(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["montecarlo", str(report_dir(tmp_path, ROWS)), "--seed", "-1"])
    assert stop.value.code == 2
    assert "argument --seed: expected 0 or more, got -1" in capsys.readouterr().err
