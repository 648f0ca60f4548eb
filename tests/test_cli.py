"""The command line: useful help, and one clear line (no traceback) for user mistakes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mtbt.cli import main


def mtbt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtbt", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_help_lists_the_commands():
    out = mtbt("--help")
    assert out.returncode == 0
    assert "backtest" in out.stdout and "check" in out.stdout
    sub = mtbt("backtest", "--help")
    for option in ("--data", "--vix", "--start", "--end", "--out", "--set", "--no-tearsheet"):
        assert option in sub.stdout


@pytest.mark.parametrize("command", ["paper", "sweep", "walkforward", "check", "data fetch",
                                     "options calibrate"])
def test_help_wraps_to_the_terminal_and_explains_every_argument(command, capsys,
                                                               monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([*command.split(), "--help"])
    text = capsys.readouterr().out
    prose = [line for line in text.splitlines() if line and not line[0].isspace()]
    assert max(len(line) for line in prose if "{" not in line) <= 80     # tables keep theirs
    if command in ("paper", "sweep", "walkforward", "check"):
        assert "RUN.toml              run file" in text and "override a run-file key" in text


@pytest.mark.parametrize("args, message", [
    (["--set", "risk_management.max_position=2"], "did you mean 'max_positions'?"),
    (["--set", "risk_management.risk_per_trade_pct=0.5"], "0.02 to 0.05"),
    (["--set", "scaling_exits.use_scaling=1"], "expected true or false"),
    (["--data", "nowhere.parquet"], "--data nowhere.parquet: data.vix is required"),
    (["--data", "nowhere.parquet", "--vix", "nowhere.parquet"], "nowhere.parquet"),
    (["--vix", "nowhere.parquet"], "nowhere.parquet: a VIX file without bars"),
    (["--start", "2023-13-01"], "--start 2023-13-01: expected a date"),
    (["--start", "2030-01-02"], "no sessions between 2030-01-02"),
    (["missing.toml"], "missing.toml: file not found"),
    (["--out", "/proc/mtbt-report"], "/proc/mtbt-report"),
])
def test_user_mistakes_are_one_line_on_stderr(args, message, tmp_path):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "r")]
    out = mtbt("backtest", *args, "--no-tearsheet", "--quiet", cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mtbt: error: ")
    assert message in lines[0]


@pytest.mark.parametrize("out, message", [
    ("afile", "argument --out: {tmp}/afile is a file, not a folder"),
    ("afile/report", "argument --out: {tmp}/afile/report is inside {tmp}/afile, a file, not "
                     "a folder"),
])
def test_an_out_that_cannot_be_a_folder_names_the_option(tmp_path, capsys, out, message):
    (tmp_path / "afile").write_text("")
    with pytest.raises(SystemExit) as stop:
        main(["backtest", "--out", str(tmp_path / out)])
    assert stop.value.code == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_a_failed_backtest_leaves_no_report_folder(tmp_path, capsys):
    bars = tmp_path / "bars.parquet"
    bars.write_bytes(b"not parquet")
    out = tmp_path / "reports" / "run"
    assert main(["backtest", "--data", str(bars), "--vix", str(bars), "--out", str(out),
                 "--quiet"]) == 2
    assert "not a readable parquet file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.parquet"]


def test_a_non_empty_out_is_refused_unless_force_which_replaces_only_report_files(
        tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    for name in ("trades.csv", "legs.csv", "payoff_put_bwb.png", "notes.txt"):
        (out / name).write_text("old")
    args = ["backtest", "--out", str(out), "--quiet", "--no-tearsheet",
            "--set", "data.sample_sessions=20", "--set", 'strategy.instrument="equity"']
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"--out {out} is not empty (legs.csv, notes.txt, payoff_put_bwb.png, ...)" in err
    assert "--force" in err
    assert main([*args, "--force"]) == 0
    names = {p.name for p in out.iterdir()}
    assert "notes.txt" in names and "payoff_put_bwb.png" not in names    # not this run's
    assert "legs.csv" not in names and (out / "trades.csv").read_text() != "old"


def test_a_broken_bar_file_is_refused_with_its_rule(tmp_path, capsys):
    bars = pd.DataFrame({"timestamp": pd.date_range("2024-01-03 09:30", periods=3, freq="1min",
                                                    tz="America/New_York"),
                         "open": 1.0, "high": 0.5, "low": 1.0, "close": 1.0, "volume": 1.0})
    bars.to_parquet(tmp_path / "bad.parquet")
    code = main(["backtest", "--data", str(tmp_path / "bad.parquet"), "--vix",
                 str(tmp_path / "bad.parquet"), "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.parquet" in err and "high" in err


def test_a_run_file_typo_names_file_and_key(tmp_path, capsys):
    run = tmp_path / "mine.toml"
    run.write_text("[trading_hours]\nny_open_ned = \"10:30\"\n")
    assert main(["check", str(run)]) == 2
    err = capsys.readouterr().err
    assert str(run) in err and "ny_open_ned" in err and "ny_open_end" in err


def test_check_prints_the_resolved_run(capsys):
    assert main(["check", "--set", "risk_management.max_positions=2"]) == 0
    out = capsys.readouterr().out
    assert '"max_positions": 2' in out and '"run_id"' in out


def test_bars_that_are_not_one_minute_apart_are_refused(tmp_path, capsys):
    stamps = pd.date_range("2024-01-03 09:30", periods=20, freq="5min", tz="America/New_York")
    bars = pd.DataFrame({"timestamp": stamps, "open": 1.0, "high": 1.0, "low": 1.0,
                         "close": 1.0, "volume": 1.0})
    bars.to_parquet(tmp_path / "five.parquet")
    code = main(["backtest", "--data", str(tmp_path / "five.parquet"), "--vix",
                 str(tmp_path / "five.parquet"), "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    assert "five.parquet: bars are 5 minutes apart" in capsys.readouterr().err


def test_every_simulator_fault_knob_parses_from_the_command_line():
    """``--fault`` accepts every knob ``Faults`` has, of every type, and names a bad one."""
    import dataclasses

    from mtbt.cli.paper import _faults
    from mtbt.errors import ConfigError
    from mtbt.sim import Faults

    faults = _faults(["reject_order=t1-stop", "slip=0.25", "slip_fill=2",
                      "duplicate_fills=true"])
    assert (faults.reject_order, faults.slip, faults.slip_fill, faults.duplicate_fills) == \
        ("t1-stop", 0.25, 2, True)
    every = _faults([f"{f.name}={f.default}" for f in dataclasses.fields(Faults)])
    assert every == Faults()
    with pytest.raises(ConfigError, match="slip_fill=two: 'two' is not a int"):
        _faults(["slip_fill=two"])
