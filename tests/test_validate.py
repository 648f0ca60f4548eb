"""``mtbt validate``: data chosen by coverage (own bars, then a proxy), the table, exit codes."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from feeds.sample import sample_bars, sample_vix
from mtbt.cli import main
from mtbt.config import load_run
from mtbt.validate import DataChoice, ScenarioResult, any_miss, choose_data, fetch_commands
from mtbt.validate_report import footnotes, rows

SCENARIO = """
[data]
start = {start}
end = {end}
[benchmark]
source = "test"
trades = {trades}
win_rate = 0.5
pnl = 100.0
tolerance = 0.1
[validation]
bars = ["spy_1m"]
proxy = ["es_1m"]
proxy_symbol = "ES"
proxy_bar_label = "end"
vix = ["vix_1d"]
"""


def write_bars(path: Path, n_sessions: int = 40, shift: int = 0) -> pd.DataFrame:
    bars = sample_bars(seed=2, n_sessions=n_sessions)
    bars.index = bars.index + pd.Timedelta(minutes=shift)
    bars.reset_index().to_parquet(path)
    return bars


def write_vix(path: Path, n_sessions: int = 40) -> None:
    vix = sample_vix(seed=2, n_sessions=n_sessions)
    vix.rename_axis("timestamp").reset_index().to_parquet(path)


def scenario(tmp_path: Path, name: str, start: str, end: str, trades: int = 3) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SCENARIO.format(start=start, end=end, trades=trades))
    return path


@pytest.fixture
def data_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    write_bars(folder / "spy_1m_sample.parquet")
    write_bars(folder / "es_1m_sample.parquet", shift=1)
    write_vix(folder / "vix_1d_sample.parquet")
    return folder


def test_the_symbols_own_bars_come_first(data_dir, tmp_path):
    cfg = load_run(scenario(tmp_path, "s", "2023-11-01", "2023-11-30"))
    choice = choose_data(cfg, data_dir)
    assert choice.bars.name == "spy_1m_sample.parquet" and not choice.proxy
    assert choice.covered == choice.wanted == 21          # November 2023's sessions
    assert fetch_commands(cfg, choice, data_dir) == []


def test_a_proxy_only_when_the_own_bars_miss_the_window(data_dir, tmp_path):
    (data_dir / "spy_1m_sample.parquet").unlink()
    cfg = load_run(scenario(tmp_path, "s", "2023-11-01", "2023-12-29"))
    choice = choose_data(cfg, data_dir)
    assert choice.proxy and choice.symbol == "ES"
    assert (choice.covered, choice.wanted) == (21, 41)
    assert "partial: 21 of 41 sessions" in choice.describe()
    (command,) = fetch_commands(cfg, choice, data_dir)
    assert command.startswith("python -m mtbt data fetch SPY --start 2023-09-17 --end 2023-12-29")


def test_no_data_names_the_fetch_commands(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = load_run(scenario(tmp_path, "s", "2021-03-01", "2021-03-31"))
    choice = choose_data(cfg, empty)
    assert choice.bars is None and choice.describe() == "no data"
    commands = fetch_commands(cfg, choice, empty)
    assert len(commands) == 2 and "I:VIX --timespan day" in commands[1]


def test_validate_writes_the_table(data_dir, tmp_path, capsys):
    own = scenario(tmp_path, "own", "2023-11-01", "2023-11-30", trades=1_000)
    proxy = scenario(tmp_path, "proxied", "2023-11-01", "2023-11-30")
    proxy.write_text(proxy.read_text().replace('bars = ["spy_1m"]', 'bars = ["qqq_1m"]'))
    missing = scenario(tmp_path, "missing", "2021-03-01", "2021-03-31")
    out = tmp_path / "out"
    code = main(["validate", str(own), str(proxy), str(missing), "--data-dir", str(data_dir),
                 "--out", str(out), "--no-tearsheet"])
    assert code == 0                                   # MISS alone is not an error
    table = (out / "validate.md").read_text()
    for action in ("pause", "alert"):                  # each scenario runs both ways
        assert f"| own | {action} | spy_1m_sample.parquet |" in table
        assert f"| proxied | {action} | es_1m_sample.parquet (ES proxy) |" in table
        for name in ("own", "proxied"):
            summary = json.loads((out / name / action / "summary.json").read_text())
            assert summary["max_dd_action"] == action
    assert table.count("/ 1000 MISS") == 2             # 1,000 trades: never within 10%
    assert "| missing | - | no data | not run: no data" in table
    assert table.count("missing: to get its data, run `python -m mtbt data fetch SPY") == 1
    assert table.count("ran on ES bars as a proxy") == 1
    assert "--strict fails on a MISS in a pause row only" in table
    assert "does not tune them per window" in table
    assert "mtbt validate" in capsys.readouterr().out
    strict = main(["validate", str(own), "--data-dir", str(data_dir), "--out",
                   str(tmp_path / "strict"), "--no-tearsheet", "--strict"])
    assert strict == 1
    # the same --out again: refused, then --force replaces validate's files and keeps others
    (out / "notes.txt").write_text("mine")
    again = ["validate", str(own), "--data-dir", str(data_dir), "--out", str(out),
             "--no-tearsheet"]
    capsys.readouterr()
    assert main(again) == 2
    assert f"--out {out} is not empty" in capsys.readouterr().err
    assert main([*again, "--force"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "proxied").exists()            # no report of the earlier run is left
    assert "| proxied |" not in (out / "validate.md").read_text()


def ran(cfg, action: str, trades: int, trips: list[str]) -> ScenarioResult:
    summary = {"trades": trades, "win_rate": 0.5, "total_pnl": 100.0, "max_drawdown": 0.0,
               "profit_factor": 1.0, "breaker_trips": trips}
    return ScenarioResult("s", cfg, DataChoice(Path("spy_1m.parquet"), Path("vix.parquet"),
                                                "SPY", False, 21, 21), action, summary)


def test_strict_judges_the_pause_rows_only(tmp_path, monkeypatch):
    cfg = load_run(scenario(tmp_path, "s", "2023-11-01", "2023-11-30", trades=3))
    trip = "2023-11-20T10:31:00-05:00"
    results = [ran(cfg, "pause", 3, [trip]), ran(cfg, "alert", 9, [trip, trip])]
    assert any_miss(results) and not any_miss(results, "pause")
    assert [row[1] for row in rows(results)] == ["pause", "alert"]
    assert [row[-1] for row in rows(results)] == ["1", "2"]
    notes = footnotes(results, tmp_path)
    assert ("s (pause): the drawdown breaker tripped 2023-11-20 10:31; trading paused for "
            "the rest of the window, open lots closed") in notes
    assert any(n.startswith("s (alert): the drawdown breaker tripped") and
               n.endswith("trading went on") for n in notes)
    argv = ["validate", str(tmp_path / "s.toml"), "--data-dir", str(tmp_path), "--out",
            str(tmp_path / "out"), "--strict"]
    monkeypatch.setattr("mtbt.validate.run_scenario", lambda *a, **k: results)
    assert main(argv) == 0                             # the MISS is in the alert row
    missed = [ran(cfg, "pause", 9, [trip]), ran(cfg, "alert", 3, [])]
    monkeypatch.setattr("mtbt.validate.run_scenario", lambda *a, **k: missed)
    assert main([*argv, "--force"]) == 1               # the same --out: replaced


def test_a_run_that_errors_fails_the_command(data_dir, tmp_path, capsys):
    (data_dir / "vix_1d_sample.parquet").write_bytes(b"not parquet")
    path = scenario(tmp_path, "broken", "2023-11-01", "2023-11-30")
    code = main(["validate", str(path), "--data-dir", str(data_dir), "--out",
                 str(tmp_path / "out"), "--no-tearsheet"])
    assert code == 1
    assert "ERROR: " in (tmp_path / "out" / "validate.md").read_text()


def test_the_shipped_scenarios_carry_the_reports_figures():
    root = Path(__file__).resolve().parents[1] / "runs"
    figures = {p.stem: (c.benchmark.trades, c.benchmark.win_rate, c.benchmark.pnl,
                        c.benchmark.tolerance, c.data.start, c.data.end)
               for p in sorted(root.glob("validate_*.toml")) for c in [load_run(p)]}
    assert figures == {
        "validate_aug_nov_2025": (23, 0.957, 3208.0, 0.1, dt.date(2025, 8, 1),
                                  dt.date(2025, 11, 30)),
        "validate_dec2024_feb2025": (24, 0.25, 501.0, 0.1, dt.date(2024, 12, 2),
                                     dt.date(2025, 2, 28)),
        "validate_feb_may_2020": (32, 0.406, 690.0, 0.1, dt.date(2020, 2, 3),
                                  dt.date(2020, 5, 29)),
    }


def test_validate_on_the_shared_data(shared_data, tmp_path):
    out = tmp_path / "shared"
    assert main(["validate", "--data-dir", str(shared_data), "--out", str(out),
                 "--no-tearsheet"]) == 0
    table = (out / "validate.md").read_text()
    for action in ("pause", "alert"):
        assert (f"| validate_dec2024_feb2025 | {action} | "
                "spy_1m_2024-03-26_2025-04-02.parquet |") in table
        assert (f"| validate_feb_may_2020 | {action} | "
                "es_1m_2020-01-02_2020-04-22.parquet (ES proxy), partial") in table
        assert (f"| validate_aug_nov_2025 | {action} | "
                "spy_1m_2025-10-29_2025-11-07.parquet, partial: 8 of 84 sessions") in table
    for name in ("validate_dec2024_feb2025", "validate_feb_may_2020"):
        pause, alert = (json.loads((out / name / a / "summary.json").read_text())
                        for a in ("pause", "alert"))
        assert pause["data_sha256"] == alert["data_sha256"]     # one data choice, two runs
        assert (pause["max_dd_action"], alert["max_dd_action"]) == ("pause", "alert")
        assert len(pause["breaker_trips"]) <= 1 and pause["trades"] <= alert["trades"]
