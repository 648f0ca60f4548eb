"""Grids and research commands: every mistake is one line naming the file, key or option,
and it comes before any backtest (no Ray is started)."""
from __future__ import annotations

from pathlib import Path

import pytest

from mtbt.cli import main
from mtbt.research.grid import combinations, load_grid


def grid_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_a_grid_gives_every_combination_validated_in_order(tmp_path):
    grid = load_grid(grid_file(tmp_path, "[scaling_exits]\ntp1_pct = [0.008, 0.01]\n"
                                         "stop_pct = [0.006, 0.007]\n"
                                         "[strategy]\ngrades = [[\"shallow\"]]\n"))
    assert len(grid) == 4
    assert grid.swept == ("scaling_exits.tp1_pct", "scaling_exits.stop_pct")
    combos = combinations(grid, None, ["risk_management.max_positions=2"])
    assert [(c.cfg.scaling_exits.tp1_pct, c.cfg.scaling_exits.stop_pct) for c in combos] == [
        (0.008, 0.006), (0.008, 0.007), (0.01, 0.006), (0.01, 0.007)]
    assert {c.cfg.strategy.grades for c in combos} == {("shallow",)}
    assert {c.cfg.risk_management.max_positions for c in combos} == {2}
    assert combos[3].label == ("scaling_exits.tp1_pct=0.01, scaling_exits.stop_pct=0.007, "
                               'strategy.grades=["shallow"]')


@pytest.mark.parametrize("text, message", [
    ("[scaling_exits]\ntp1_pc = [0.01]\n", "unknown key scaling_exits.tp1_pc (did you mean "
                                           "'tp1_pct'?)"),
    ("[scaling_exit]\ntp1_pct = [0.01]\n", "unknown section [scaling_exit]"),
    ("[scaling_exits]\ntp1_pct = 0.01\n", "scaling_exits.tp1_pct = 0.01: expected a non-empty "
                                          "list"),
    ("[scaling_exits]\ntp1_pct = []\n", "expected a non-empty list"),
    ("[scaling_exits]\ntp1_pct = [0.01, 0.01]\n", "scaling_exits.tp1_pct lists 0.01 twice"),
    ("[scaling_exits]\ntp1_pct = [0.01, 0.6]\n", "scaling_exits.tp1_pct = 0.6: out of range"),
    ("[scaling_exits]\ntp1_pct = [0.01, 0.03]\n", "scaling_exits.tp2_pct = 0.02 must be above "
                                                  "scaling_exits.tp1_pct = 0.03"),
    ("[scaling_exits]\nuse_scaling = [1]\n", "scaling_exits.use_scaling = 1: expected true or "
                                             "false"),
    ("[data]\nwarmup_sessions = [5, 10]\n", "[data] cannot be swept"),
    ("", "no keys to sweep"),
    ("[scaling_exits\n", "invalid TOML"),
])
def test_grid_mistakes_name_the_grid_file_and_key(text, message, tmp_path, capsys):
    grid = grid_file(tmp_path, text)
    assert main(["sweep", "--grid", str(grid), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mtbt: error: {grid}: ")
    assert message in lines[0]
    assert not (tmp_path / "out").exists()      # nothing ran


@pytest.mark.parametrize("args, message", [
    (["--set", "scaling_exits.tp1_pct=0.01"], "scaling_exits.tp1_pct is swept here and also "
                                              "set with --set"),
    (["--set", "risk_management.max_position=2"], "did you mean 'max_positions'?"),
    (["--axes", "scaling_exits.stop_pct"], "--axes scaling_exits.stop_pct: "
                                           "scaling_exits.stop_pct is not a key of"),
    (["--workers", "0"], "--workers 0: expected 1 or more"),
])
def test_sweep_option_mistakes_are_one_line(args, message, tmp_path, capsys):
    grid = grid_file(tmp_path, "[scaling_exits]\ntp1_pct = [0.008, 0.01]\n")
    code = main(["sweep", "--grid", str(grid), "--out", str(tmp_path / "out"), "--quiet",
                 "--set", "data.sample_sessions=20", *args])
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--train", "sixty", "--test", "20d"], "--train sixty: expected a number of trading "
                                            "sessions, e.g. 60d"),
    (["--train", "60d", "--test", "0d"], "--test 0d: expected a number"),
    (["--train", "200d", "--test", "20d"], "--train 200d: the data has 20 sessions to trade"),
])
def test_walkforward_window_mistakes_are_one_line(args, message, tmp_path, capsys):
    grid = grid_file(tmp_path, "[scaling_exits]\ntp1_pct = [0.008, 0.01]\n")
    code = main(["walkforward", "--grid", str(grid), "--set", "data.sample_sessions=20",
                 "--out", str(tmp_path / "out"), "--quiet", *args])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
