"""Run configuration: strict, frozen settings loaded from TOML run files.

A run file (``runs/*.toml``) holds the sections below; it may hold only the keys
it changes, every other key takes the default of ``runs/default.toml``. Unknown
sections and keys, wrong types (no silent ``"1"`` -> 1 or ``1`` -> true; an
integer is accepted for a float) and out-of-range values raise a one-line
:class:`~mtbt.errors.ConfigError` that names the file or ``--set`` override,
the ``section.key`` and what was expected.

Examples
--------
>>> cfg = load_run("runs/default.toml", ["risk_management.max_positions=2"])
>>> cfg.risk_management.max_positions
2
"""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mtbt._config_errors import (
    CLOSE,
    CROSS,
    Problem,
    blame,
    by_close,
    check_strategy,
    check_symbol,
    fmt,
    parse_date,
    parse_grades,
    parse_names,
    parse_time,
    parse_times,
    problem_from,
    require_paper,
    rule,
    shape_problem,
)
from mtbt.errors import ConfigError

Time = Annotated[
    dt.time,
    BeforeValidator(parse_time),
    PlainSerializer(lambda t: t.isoformat(timespec="minutes"), return_type=str, when_used="json"),
]
CloseTime = Annotated[Time, AfterValidator(by_close)]
OptionalDate = Annotated[dt.date | None, BeforeValidator(parse_date)]
Grades = Annotated[tuple[Literal["shallow", "healthy", "deep"], ...], BeforeValidator(parse_grades)]
Symbol = Annotated[str, AfterValidator(check_symbol)]
Names = Annotated[tuple[str, ...], BeforeValidator(parse_names)]
Times = Annotated[
    tuple[dt.time, ...],
    BeforeValidator(parse_times),
    PlainSerializer(lambda ts: [t.isoformat(timespec="minutes") for t in ts], return_type=list,
                    when_used="json"),
]


class _Section(BaseModel):
    """Base of the sections: frozen, strict, no unknown keys, finite numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)
    section: ClassVar[str] = ""

    def _order(self, key: str, relation: str, other: str, ok: bool) -> None:
        """Raise the cross-key error ``key <relation> other`` unless ``ok``."""
        if not ok:
            a, b = f"{self.section}.{key}", f"{self.section}.{other}"
            text = f"{a} = {fmt(getattr(self, key))} {relation} {b} = {fmt(getattr(self, other))}"
            raise PydanticCustomError(CROSS, text, {"keys": f"{a} {b}"})


class Strategy(_Section):
    """``[strategy]``: the wave-Renko signal (bricks, waves, pullback grades, trends)."""

    section: ClassVar[str] = "strategy"
    name: Annotated[str, AfterValidator(check_strategy)] = "wave_renko"   # mtbt.registry
    instrument: Literal["options", "equity"] = "options"
    symbol: Symbol = "SPY"
    direction: Literal["long", "short", "both"] = "both"
    brick_timeframe: Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"] = "1d"
    brick_atr_period: int = Field(14, ge=1, le=500)
    brick_atr_mult: float = Field(0.1, gt=0, le=10)
    impulse_bricks: int = Field(3, ge=2, le=50)
    shallow_max: float = Field(0.382, gt=0, lt=1)
    healthy_max: float = Field(0.618, gt=0, lt=1)
    resume_bricks: float = Field(0.5, gt=0)
    entry_zone_bricks: float = Field(1.5, gt=0)
    grades: Grades = ("shallow", "healthy")
    min_confluence: int = Field(2, ge=0, le=2)
    trend_ema_4h: int = Field(6, ge=1, le=500)
    trend_ema_1d: int = Field(10, ge=1, le=500)

    @model_validator(mode="after")
    def _cross(self) -> Strategy:
        self._order("healthy_max", "must be above", "shallow_max",
                    self.healthy_max > self.shallow_max)
        self._order("entry_zone_bricks", "must be above", "resume_bricks",
                    self.entry_zone_bricks > self.resume_bricks)
        return self


class Data(_Section):
    """``[data]``: bar and VIX files (``""`` = the synthetic sample), the options bar store
    (``options``: its root folder, ``""`` = none) and the sessions to run."""

    section: ClassVar[str] = "data"
    bars: str = ""
    vix: str = ""
    options: str = ""
    bar_label: Literal["start", "end"] = "start"
    start: OptionalDate = None
    end: OptionalDate = None
    warmup_sessions: int = Field(20, ge=0, le=500)
    sample_seed: int = Field(7, ge=0)
    sample_sessions: int = Field(63, ge=20, le=2000)

    @model_validator(mode="after")
    def _cross(self) -> Data:
        if self.bars and not self.vix:
            raise PydanticCustomError(CROSS, "data.vix is required when data.bars is set",
                                      {"keys": "data.vix data.bars"})
        if self.start is not None and self.end is not None:
            self._order("end", "must not be before", "start", self.end >= self.start)
        return self


class Costs(_Section):
    """``[costs]``: dollars per share per fill."""

    section: ClassVar[str] = "costs"
    commission_per_share: float = Field(0.005, ge=0, le=1)
    slippage_per_share: float = Field(0.01, ge=0, le=1)


class Report(_Section):
    """``[report]``: where reports go and whether to draw the tearsheet."""

    section: ClassVar[str] = "report"
    out_dir: str = Field("reports", min_length=1)
    tearsheet: bool = True


class VolatilityFilters(_Section):
    """``[volatility_filters]``: the VIX band and the minimum ATR (in percent) to trade."""

    section: ClassVar[str] = "volatility_filters"
    vix_min: float = Field(13.0, ge=0, le=100)
    vix_max: float = Field(30.0, ge=0, le=100)
    atr_min_pct: float = Field(0.5, ge=0, le=100)

    @model_validator(mode="after")
    def _cross(self) -> VolatilityFilters:
        self._order("vix_min", "must be below", "vix_max", self.vix_min < self.vix_max)
        return self


class RiskManagement(_Section):
    """``[risk_management]``: account size, risk per trade (fraction), dollar drawdown limits."""

    section: ClassVar[str] = "risk_management"
    account_size: float = Field(25000.0, gt=0)
    risk_per_trade_pct: float = Field(0.02, ge=0.02, le=0.05)
    max_positions: int = Field(3, ge=1, le=50)
    daily_dd_limit: float = Field(500.0, gt=0)
    max_dd_threshold: float = Field(1000.0, gt=0)
    max_dd_action: Literal["pause", "alert"] = "pause"
    max_leverage: float = Field(4.0, ge=1, le=10)


class ScalingExits(_Section):
    """``[scaling_exits]``: take-profit, stop and trail distances as fractions of the entry."""

    section: ClassVar[str] = "scaling_exits"
    use_scaling: bool = True
    tp1_pct: float = Field(0.01, gt=0, lt=0.5)
    tp2_pct: float = Field(0.02, gt=0, lt=0.5)
    stop_pct: float = Field(0.007, gt=0, lt=0.5)
    trail_pct: float = Field(0.005, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _cross(self) -> ScalingExits:
        self._order("tp2_pct", "must be above", "tp1_pct", self.tp2_pct > self.tp1_pct)
        return self


class TradingHours(_Section):
    """``[trading_hours]``: New York times (``datetime.time``) of the entry window and force-close.

    Force-close times are applied as a distance from the 16:00 close (see
    :meth:`minutes_before_close`), so on early-close days "15:45" still means
    15 minutes before that day's close.
    """

    section: ClassVar[str] = "trading_hours"
    ny_open_start: Time = dt.time(9, 30)
    ny_open_end: Time = dt.time(11, 0)
    force_close_time: CloseTime = dt.time(15, 45)
    options_force_close_time: CloseTime = dt.time(15, 25)

    @model_validator(mode="after")
    def _cross(self) -> TradingHours:
        self._order("ny_open_end", "must be after", "ny_open_start",
                    self.ny_open_end > self.ny_open_start)
        for key in ("force_close_time", "options_force_close_time"):
            self._order(key, "must not be before", "ny_open_end",
                        getattr(self, key) >= self.ny_open_end)
        return self

    @staticmethod
    def minutes_before_close(t: dt.time) -> int:
        """Minutes from ``t`` to the regular 16:00 close (15 for 15:45)."""
        return CLOSE.hour * 60 + CLOSE.minute - (t.hour * 60 + t.minute)

    @property
    def force_close_minutes_before_close(self) -> int:
        """How many minutes before the session's close to be flat (15 by default)."""
        return self.minutes_before_close(self.force_close_time)

    @property
    def options_force_close_minutes_before_close(self) -> int:
        """The same for 0DTE option structures (35 by default)."""
        return self.minutes_before_close(self.options_force_close_time)


class Deployment(_Section):
    """``[deployment]``: mtbt trades paper accounts only."""

    section: ClassVar[str] = "deployment"
    paper_mode: Annotated[bool, AfterValidator(require_paper)] = True


class Options(_Section):
    """``[options]``: expiry, the allocator (expected value under the exits), the synthetic
    chain that prices structures (``ChainModel``), where prices come from (``prices``:
    the model, recorded option bars or both; ``mtbt.options.recorded``; in ``mtbt paper``
    anything but the model means Alpaca's live quotes from ``quotes_feed``) and the liquidity
    rules a candidate's legs must pass (0 = off)."""

    section: ClassVar[str] = "options"
    CHAIN_KEYS: ClassVar[tuple[str, ...]] = ("iv_floor", "atm_iv_ratio", "skew", "smile",
                                             "half_spread_pct", "fee_per_contract")
    expiry_sessions: int = Field(0, ge=0, le=30)
    score: Literal["ev", "reward_risk"] = "ev"
    min_edge: float = Field(0.0, ge=-10, le=10)
    fallback: Literal["shares", "skip"] = "shares"
    ev_paths: int = Field(2000, ge=100, le=200_000)
    ev_seed: int = Field(7, ge=0)
    vol_sessions: int = Field(5, ge=1, le=60)
    edge: Literal["none", "signals"] = "none"
    edge_shrink: float = Field(20.0, ge=0, le=10_000)
    worst_gap_pct: float = Field(0.005, ge=0, le=0.2)
    iv_floor: float = Field(0.08, gt=0, le=2)
    atm_iv_ratio: float = Field(1.0, gt=0, le=5)
    skew: float = Field(0.15, ge=0, le=5)
    smile: float = Field(0.03, ge=0, le=5)
    half_spread_pct: float = Field(0.03, ge=0, le=1)
    fee_per_contract: float = Field(0.65, ge=0, le=10)
    prices: Literal["model", "recorded", "auto"] = "model"
    stale_minutes: int = Field(5, ge=1, le=390)
    recorded_half_spread_pct: float = Field(0.01, ge=0, le=1)
    max_spread_pct: float = Field(0.0, ge=0, le=10)
    min_bid: float = Field(0.0, ge=0, le=1000)
    min_volume: int = Field(0, ge=0)
    quotes_feed: Literal["indicative", "opra"] = "indicative"


class IronCondor(_Section):
    """``[iron_condor]``: the 0DTE iron condor strategy (the DynamicRiskPaperTrader)."""

    section: ClassVar[str] = "iron_condor"
    entry_times: Times = (dt.time(9, 45), dt.time(11, 30), dt.time(13, 0), dt.time(14, 30))
    wing_width: float = Field(5.0, gt=0, le=100)
    profit_target: float = Field(0.25, gt=0, le=1)
    stop_loss: float = Field(2.0, gt=0, le=10)
    max_hold_minutes: int = Field(240, ge=1, le=390)
    max_open: int = Field(2, ge=1, le=10)
    daily_profit_target: float = Field(250.0, gt=0)
    sizing: Literal["stop", "max_loss"] = "stop"


class Benchmark(_Section):
    """``[benchmark]``: a validation scenario's reference figures (absent in normal runs)."""

    section: ClassVar[str] = "benchmark"
    source: str = ""
    trades: int | None = Field(None, ge=0)
    win_rate: float | None = Field(None, ge=0, le=1)
    pnl: float | None = None
    tolerance: float = Field(0.10, ge=0, le=1)


class Validation(_Section):
    """``[validation]``: which files in ``--data-dir`` a scenario runs on (by name prefix)."""

    section: ClassVar[str] = "validation"
    bars: Names = ()
    proxy: Names = ()
    proxy_symbol: str = ""
    proxy_bar_label: Literal["start", "end"] = "start"
    vix: Names = ("vix_1d",)


#: The events of a paper session (``mtbt.live.alerts``), in the order they are listed.
ALERT_EVENTS: tuple[str, ...] = (
    "session_start", "breaker_trip", "daily_limit", "orphan_closed", "stream_down",
    "reconnect", "order_rejected", "session_summary")


def _parse_events(value: Any) -> Any:
    """A list of ``ALERT_EVENTS`` names, as a tuple; an unknown name is refused by name."""
    if not (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
        raise rule('expected a list of event names, e.g. ["breaker_trip", "session_summary"]')
    for name in value:
        if name not in ALERT_EVENTS:
            raise rule(f"unknown event {fmt(name)}: expected some of "
                       f"{', '.join(ALERT_EVENTS)}")
    return tuple(dict.fromkeys(value))


class Alerts(_Section):
    """``[alerts]``: which events of a paper session go to the webhook
    (``MTBT_ALERT_WEBHOOK``; every event is written to ``events_<SESSION>.jsonl``), and how
    long a stream may be down before ``stream_down``."""

    section: ClassVar[str] = "alerts"
    events: Annotated[tuple[str, ...], BeforeValidator(_parse_events)] = ALERT_EVENTS
    stream_down_seconds: float = Field(60.0, gt=0, le=3600)


class RunConfig(BaseModel):
    """A validated, frozen run: one attribute per section plus ``name`` and ``source``."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    name: str = "default"
    source: str = "<defaults>"
    strategy: Strategy = Field(default_factory=Strategy)
    data: Data = Field(default_factory=Data)
    costs: Costs = Field(default_factory=Costs)
    report: Report = Field(default_factory=Report)
    volatility_filters: VolatilityFilters = Field(default_factory=VolatilityFilters)
    risk_management: RiskManagement = Field(default_factory=RiskManagement)
    scaling_exits: ScalingExits = Field(default_factory=ScalingExits)
    trading_hours: TradingHours = Field(default_factory=TradingHours)
    deployment: Deployment = Field(default_factory=Deployment)
    options: Options = Field(default_factory=Options)
    iron_condor: IronCondor = Field(default_factory=IronCondor)
    benchmark: Benchmark = Field(default_factory=Benchmark)
    validation: Validation = Field(default_factory=Validation)
    alerts: Alerts = Field(default_factory=Alerts)

    @model_validator(mode="after")
    def _cross(self) -> RunConfig:
        if self.options.prices != "model" and not self.data.options:
            raise PydanticCustomError(
                CROSS, f"options.prices = {fmt(self.options.prices)} needs data.options (the "
                       "options bar store folder)", {"keys": "options.prices data.options"})
        return self

    def as_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready data (dates and times as ISO strings)."""
        return self.model_dump(mode="json")

    @property
    def run_id(self) -> str:
        """First 12 hex digits of the SHA-256 of the settings (``name``/``source`` left out,
        and ``[alerts]``: where a session's alerts go does not change what it trades)."""
        settings = {k: v for k, v in self.as_dict().items()
                    if k not in ("name", "source", "alerts")}
        canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


#: Section name -> model of that section.
SECTIONS: dict[str, type[_Section]] = {
    name: field.annotation for name, field in RunConfig.model_fields.items()
    if name not in ("name", "source")
}
_OVERRIDE = re.compile(r"\s*(\w+)\.(\w+)\s*=(.*)", re.DOTALL)


def load_run(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Load a run file, apply ``--set`` overrides and validate the result.

    Parameters
    ----------
    path : str, Path or None
        A TOML run file; None means the built-in defaults (``runs/default.toml``).
    overrides : sequence of str
        ``"section.key=value"`` strings; the value is read as a TOML value, or
        taken as a plain string when it is not one (``10:30``, ``data/spy.parquet``).

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        One line naming the file or the override, the key and what was expected.
    """
    origin = "<defaults>" if path is None else str(path)
    name = "default" if path is None else Path(path).stem
    data = {} if path is None else read_run_file(Path(path), origin)
    config = _build(data, name, origin, lambda problem: f"{origin}: {problem.text}")
    if not overrides:
        return config
    parsed = [_parse_override(raw) for raw in overrides]
    merged = copy.deepcopy(data)
    for _, section, key, value in parsed:
        merged.setdefault(section, {})[key] = value
    return _build(merged, name, origin, lambda problem: blame(problem, parsed))


def read_run_file(path: Path, origin: str) -> dict[str, Any]:
    """Parse the TOML at ``path`` and check its sections and keys."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{origin}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{origin}: is a directory, expected a TOML run file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{origin}: invalid TOML: the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{origin}: invalid TOML: {err}") from None
    except OSError as err:
        raise ConfigError(f"{origin}: cannot read the file: {err.strerror}") from None
    problem = shape_problem(data, SECTIONS)
    if problem:
        raise ConfigError(f"{origin}: {problem}")
    return data


def _build(
    data: dict[str, Any], name: str, origin: str, word: Callable[[Problem], str]
) -> RunConfig:
    """Validate ``data``; on failure raise ConfigError worded by ``word(problem)``."""
    try:
        return RunConfig.model_validate({**data, "name": name, "source": origin})
    except ValidationError as err:
        raise ConfigError(word(problem_from(err, SECTIONS, data))) from None


def _parse_override(raw: str) -> tuple[str, str, str, Any]:
    """Split ``"section.key=value"`` into (raw, section, key, parsed value)."""
    match = _OVERRIDE.fullmatch(raw)
    if not match:
        raise ConfigError(f"--set {raw}: expected section.key=value")
    section, key, text = match.group(1), match.group(2), match.group(3).strip()
    problem = shape_problem({section: {key: None}}, SECTIONS)
    if problem:
        raise ConfigError(f"--set {raw}: {problem}")
    return raw, section, key, _toml_value(text, raw)


def _toml_value(text: str, raw: str = "") -> Any:
    """``text`` read as a TOML value, or ``text`` itself when it is not one (a bare word);
    a value that starts a quoted string or a list and is not valid TOML is refused."""
    try:
        parsed = tomllib.loads("v = " + text)
    except tomllib.TOMLDecodeError as exc:
        if text[:1] in ("'", '"', "["):      # meant as a string or a list: say why not
            raise ConfigError(f"--set {raw}: {text} is not a TOML value ({exc})") from None
        return text
    return parsed["v"] if parsed.keys() == {"v"} else text
