"""Tests of mtbt.config: run files, --set overrides and their one-line errors."""
from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path

import pydantic
import pytest

from mtbt.config import RunConfig, TradingHours, load_run
from mtbt.errors import ConfigError, MtbtError

DEFAULT_TOML = Path(__file__).resolve().parents[1] / "runs" / "default.toml"


@pytest.fixture
def run_file(tmp_path: Path):
    """Write a run file ``x.toml`` and return its path as a string."""

    def write(text: str) -> str:
        path = tmp_path / "x.toml"
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def error_of(path: str | None, overrides: tuple[str, ...] = ()) -> str:
    """The one-line message of the ConfigError that loading raises."""
    with pytest.raises(ConfigError) as info:
        load_run(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def settings(cfg: RunConfig) -> dict:
    data = cfg.as_dict()
    del data["name"], data["source"]
    return data


# --- defaults, shape, immutability -------------------------------------------------------


def test_defaults_equal_default_toml() -> None:
    built_in, from_file = load_run(), load_run(DEFAULT_TOML)
    assert settings(built_in) == settings(from_file)
    assert built_in.run_id == from_file.run_id
    assert (built_in.name, built_in.source) == ("default", "<defaults>")
    assert (from_file.name, from_file.source) == ("default", str(DEFAULT_TOML))


def test_default_toml_lists_every_key() -> None:
    text = DEFAULT_TOML.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    for section, keys in settings(load_run()).items():
        optional = {k for k, v in keys.items() if v is None}
        assert set(data[section]) == set(keys) - optional, section
        for key in optional:
            assert f"# {key} = " in text


def test_default_values_and_types() -> None:
    cfg = load_run()
    assert cfg.strategy.grades == ("shallow", "healthy")
    assert cfg.trading_hours.ny_open_start == dt.time(9, 30)
    assert cfg.trading_hours.force_close_minutes_before_close == 15
    assert TradingHours.minutes_before_close(dt.time(15, 25)) == 35
    assert cfg.data.start is None and cfg.data.bars == ""
    assert cfg.risk_management.risk_per_trade_pct == 0.02
    assert cfg.deployment.paper_mode is True


def test_as_dict_is_json_with_iso_times_and_dates() -> None:
    cfg = load_run(None, ["data.start=2024-01-02"])
    data = json.loads(json.dumps(cfg.as_dict()))
    assert data["trading_hours"]["force_close_time"] == "15:45"
    assert data["data"]["start"] == "2024-01-02"
    assert data["strategy"]["grades"] == ["shallow", "healthy"]


def test_frozen() -> None:
    cfg = load_run()
    with pytest.raises(pydantic.ValidationError):
        cfg.risk_management.max_positions = 5  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        cfg.strategy = cfg.strategy  # type: ignore[misc]


def test_partial_file_takes_defaults(run_file) -> None:
    cfg = load_run(run_file("[risk_management]\nmax_positions = 5\n"))
    assert cfg.risk_management.max_positions == 5
    assert cfg.risk_management.account_size == 25000.0
    assert cfg.name == "x"


def test_int_accepted_for_float_and_stored_as_float(run_file) -> None:
    cfg = load_run(run_file("[risk_management]\naccount_size = 30000\n"))
    assert cfg.risk_management.account_size == 30000.0
    assert isinstance(cfg.risk_management.account_size, float)


def test_config_error_is_mtbt_error() -> None:
    assert issubclass(ConfigError, MtbtError)


# --- unknown sections and keys ---------------------------------------------------------


def test_unknown_key_hint(run_file) -> None:
    path = run_file("[risk_management]\nmax_position = 2\n")
    assert error_of(path) == (
        f"{path}: unknown key risk_management.max_position (did you mean 'max_positions'?)"
    )


def test_unknown_key_without_hint(run_file) -> None:
    path = run_file("[strategy]\nzzzzzz = 1\n")
    assert error_of(path) == f"{path}: unknown key strategy.zzzzzz"


def test_unknown_section_hint(run_file) -> None:
    path = run_file("[risk_managment]\nmax_positions = 2\n")
    assert error_of(path) == (
        f"{path}: unknown section [risk_managment] (did you mean [risk_management]?)"
    )


def test_key_outside_sections(run_file) -> None:
    path = run_file('name = "x"\n')
    assert error_of(path).startswith(f"{path}: key name is outside any section")


# --- types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[risk_management]\naccount_size = "25000"', 'account_size = "25000": expected a number'),
        ("[scaling_exits]\nuse_scaling = 1", "use_scaling = 1: expected true or false"),
        ('[scaling_exits]\nuse_scaling = "yes"', 'use_scaling = "yes": expected true or false'),
        ("[risk_management]\nmax_positions = 3.0", "max_positions = 3: expected an integer"),
        ("[risk_management]\nmax_positions = 2.5", "max_positions = 2.5: expected an integer"),
        ("[risk_management]\nmax_positions = true", "max_positions = true: expected an integer"),
        ("[strategy]\nsymbol = 5", "strategy.symbol = 5: expected a string"),
        ('[strategy]\nsymbol = "spy"', 'symbol = "spy": expected upper-case letters'),
        ('[strategy]\ndirection = "up"', 'expected one of "long", "short" or "both"'),
        ("[risk_management]\naccount_size = inf", "account_size = inf: expected a finite number"),
        ('[report]\nout_dir = ""', 'report.out_dir = "": expected a non-empty string'),
        ("[strategy]\nbrick_atr_mult = 0",
         "brick_atr_mult = 0 is out of range: expected a number > 0 and <= 10"),
    ],
)
def test_wrong_types(run_file, toml: str, expected: str) -> None:
    path = run_file(toml + "\n")
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


# --- ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0.02", "0.05", "0.03"])
def test_risk_per_trade_inclusive_edges_pass(run_file, value: str) -> None:
    cfg = load_run(run_file(f"[risk_management]\nrisk_per_trade_pct = {value}\n"))
    assert cfg.risk_management.risk_per_trade_pct == float(value)


@pytest.mark.parametrize("value", ["0.0199", "0.0501", "0.5"])
def test_risk_per_trade_outside_fails(run_file, value: str) -> None:
    path = run_file(f"[risk_management]\nrisk_per_trade_pct = {value}\n")
    assert error_of(path) == (
        f"{path}: risk_management.risk_per_trade_pct = {value} is out of range: "
        "expected a number from 0.02 to 0.05"
    )


def test_integer_range_message(run_file) -> None:
    path = run_file("[risk_management]\nmax_positions = 51\n")
    assert error_of(path).endswith("max_positions = 51 is out of range: "
                                   "expected an integer from 1 to 50")


# --- cross-key rules -------------------------------------------------------------------


def test_vix_min_must_be_below_vix_max(run_file) -> None:
    path = run_file("[volatility_filters]\nvix_min = 30\nvix_max = 13\n")
    assert error_of(path) == (
        f"{path}: volatility_filters.vix_min = 30 must be below volatility_filters.vix_max = 13"
    )
    assert "must be below" in error_of(run_file("[volatility_filters]\nvix_min = 30.0\n"))


def test_paper_mode_false(run_file) -> None:
    path = run_file("[deployment]\npaper_mode = false\n")
    assert error_of(path) == (
        f"{path}: deployment.paper_mode = false: "
        "mtbt trades paper accounts only; paper_mode must be true"
    )


def test_other_cross_rules(run_file) -> None:
    assert "healthy_max = 0.3 must be above strategy.shallow_max" in error_of(
        run_file("[strategy]\nhealthy_max = 0.3\n"))
    assert "entry_zone_bricks = 0.5 must be above strategy.resume_bricks" in error_of(
        run_file("[strategy]\nentry_zone_bricks = 0.5\n"))
    assert "tp2_pct = 0.01 must be above scaling_exits.tp1_pct = 0.01" in error_of(
        run_file("[scaling_exits]\ntp2_pct = 0.01\n"))
    assert "data.end = 2024-01-01 must not be before data.start = 2024-02-01" in error_of(
        run_file("[data]\nstart = 2024-02-01\nend = 2024-01-01\n"))


def test_vix_required_when_bars_set(run_file) -> None:
    path = run_file('[data]\nbars = "spy.parquet"\n')
    assert error_of(path) == f"{path}: data.vix is required when data.bars is set"
    cfg = load_run(run_file('[data]\nbars = "a/spy.parquet"\nvix = "vix.parquet"\n'))
    assert (cfg.data.bars, cfg.data.vix) == ("a/spy.parquet", "vix.parquet")


# --- times, dates, grades --------------------------------------------------------------


def test_times(run_file) -> None:
    text = '[trading_hours]\nny_open_end = "10:15"\nforce_close_time = 15:50:00\n'
    cfg = load_run(run_file(text))
    assert cfg.trading_hours.ny_open_end == dt.time(10, 15)
    assert cfg.trading_hours.force_close_minutes_before_close == 10
    path = run_file('[trading_hours]\nny_open_start = "9h30"\n')
    assert error_of(path) == (
        f'{path}: trading_hours.ny_open_start = "9h30": expected a time "HH:MM"'
    )
    for bad in ['"24:00"', '"9:30"', "15:45:30", "1"]:
        assert 'expected a time "HH:MM"' in error_of(
            run_file(f"[trading_hours]\nforce_close_time = {bad}\n"))


def test_time_order(run_file) -> None:
    message = error_of(run_file('[trading_hours]\nny_open_end = "09:00"\n'))
    assert "trading_hours.ny_open_end = 09:00 must be after trading_hours.ny_open_start" in message
    message = error_of(run_file('[trading_hours]\nforce_close_time = "10:00"\n'))
    assert ("force_close_time = 10:00 must not be before "
            "trading_hours.ny_open_end = 11:00") in message
    assert "no later than the 16:00 close" in error_of(
        run_file('[trading_hours]\noptions_force_close_time = "16:05"\n'))


def test_dates(run_file) -> None:
    cfg = load_run(run_file('[data]\nstart = 2024-01-02\nend = "2024-03-28"\n'))
    assert (cfg.data.start, cfg.data.end) == (dt.date(2024, 1, 2), dt.date(2024, 3, 28))
    assert "expected a date YYYY-MM-DD" in error_of(run_file('[data]\nstart = "2024-13-01"\n'))
    datetime_toml = run_file("[data]\nstart = 2024-01-02T09:30:00\n")
    assert "expected a date YYYY-MM-DD" in error_of(datetime_toml)


@pytest.mark.parametrize("grades", ["[]", '["deep", "deep"]', '["steep"]', '"shallow"', "[1]"])
def test_bad_grades(run_file, grades: str) -> None:
    message = error_of(run_file(f"[strategy]\ngrades = {grades}\n"))
    assert "expected a non-empty list of distinct values from" in message


def test_good_grades(run_file) -> None:
    cfg = load_run(run_file('[strategy]\ngrades = ["deep", "shallow"]\n'))
    assert cfg.strategy.grades == ("deep", "shallow")


# --- --set overrides -------------------------------------------------------------------


def test_set_happy_path() -> None:
    cfg = load_run(None, [
        "risk_management.risk_per_trade_pct=0.03",
        "scaling_exits.use_scaling=false",
        "trading_hours.ny_open_end=10:30",
        "data.start=2024-01-02",
        "data.end=2024-02-01",
        "strategy.symbol=QQQ",
        'strategy.grades=["deep"]',
        "data.bars = bars/spy.parquet",
        "data.vix=vix.parquet",
    ])
    assert cfg.risk_management.risk_per_trade_pct == 0.03
    assert cfg.scaling_exits.use_scaling is False
    assert cfg.trading_hours.ny_open_end == dt.time(10, 30)
    assert (cfg.data.start, cfg.data.end) == (dt.date(2024, 1, 2), dt.date(2024, 2, 1))
    assert cfg.strategy.symbol == "QQQ" and cfg.strategy.grades == ("deep",)
    assert cfg.data.bars == "bars/spy.parquet"
    assert cfg.source == "<defaults>"


def test_set_applies_over_file_and_last_wins(run_file) -> None:
    path = run_file("[risk_management]\nmax_positions = 5\n")
    cfg = load_run(path, ["risk_management.max_positions=2", "risk_management.max_positions=4"])
    assert cfg.risk_management.max_positions == 4


def test_set_can_clear_a_date() -> None:
    assert load_run(None, ["data.start=2024-01-02", "data.start="]).data.start is None


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("risk_management.max_positions=abc",
         "--set risk_management.max_positions=abc: expected an integer"),
        ("foo", "--set foo: expected section.key=value"),
        ('strategy.symbol="SPY', '--set strategy.symbol="SPY: "SPY is not a TOML value '
         "(Unterminated string (at end of document))"),
        ("strategy.grades=[1,2", "--set strategy.grades=[1,2: [1,2 is not a TOML value "
         "(Unclosed array (at end of document))"),
        ("a.b.c=1", "--set a.b.c=1: expected section.key=value"),
        ("strategy.nope=1", "--set strategy.nope=1: unknown key strategy.nope"),
        ("strategy.symbl=QQQ",
         "--set strategy.symbl=QQQ: unknown key strategy.symbl (did you mean 'symbol'?)"),
        ("risk_managment.max_positions=2",
         "--set risk_managment.max_positions=2: unknown section [risk_managment] "
         "(did you mean [risk_management]?)"),
        ("risk_management.risk_per_trade_pct=0.5", "--set risk_management.risk_per_trade_pct=0.5: "
         "out of range: expected a number from 0.02 to 0.05"),
        ("scaling_exits.use_scaling=yes", "--set scaling_exits.use_scaling=yes: "
         "expected true or false"),
        ("trading_hours.ny_open_end=10h30", '--set trading_hours.ny_open_end=10h30: '
         'expected a time "HH:MM"'),
        ("deployment.paper_mode=false", "--set deployment.paper_mode=false: "
         "mtbt trades paper accounts only; paper_mode must be true"),
        ("volatility_filters.vix_min=35", "--set volatility_filters.vix_min=35: "
         "volatility_filters.vix_min = 35 must be below volatility_filters.vix_max = 30"),
        ("data.bars=spy.parquet",
         "--set data.bars=spy.parquet: data.vix is required when data.bars is set"),
    ],
)
def test_set_errors(override: str, expected: str) -> None:
    assert error_of(None, (override,)) == expected


def test_error_names_file_when_file_is_invalid(run_file) -> None:
    path = run_file("[volatility_filters]\nvix_min = 35\n")
    message = error_of(path, ("volatility_filters.vix_max=40",))
    assert message.startswith(f"{path}: volatility_filters.vix_min = 35 must be below")


def test_error_names_override_when_file_is_valid(run_file) -> None:
    path = run_file("[volatility_filters]\nvix_min = 20\n")
    message = error_of(path, ("costs.slippage_per_share=0.02", "volatility_filters.vix_max=15"))
    assert message == (
        "--set volatility_filters.vix_max=15: "
        "volatility_filters.vix_min = 20 must be below volatility_filters.vix_max = 15"
    )
    assert load_run(path, ["volatility_filters.vix_min=35", "volatility_filters.vix_max=40"])


# --- reading files ---------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    assert error_of(path) == f"{path}: file not found"


def test_invalid_toml(run_file) -> None:
    path = run_file("[strategy\nname = 1\n")
    assert error_of(path).startswith(f"{path}: invalid TOML: ")


def test_section_must_be_table(run_file) -> None:
    path = run_file("strategy = 1\n")
    assert error_of(path) == f"{path}: strategy = 1: expected a [strategy] table"


# --- run_id ----------------------------------------------------------------------------


def test_run_id_stable_and_sensitive(run_file) -> None:
    base = load_run().run_id
    assert len(base) == 12 and int(base, 16) >= 0
    assert load_run().run_id == base
    assert load_run(run_file("[risk_management]\naccount_size = 25000\n")).run_id == base
    assert load_run(None, ["risk_management.max_positions=4"]).run_id != base
    assert load_run(None, ["trading_hours.ny_open_end=10:59"]).run_id != base
