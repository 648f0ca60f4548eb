"""``mtbt validate``: run the report's validation windows and compare with its figures.

Each scenario is a run file with a ``[benchmark]`` (the readiness report's trades, win rate
and PnL for its window) and a ``[validation]`` section naming, by file-name prefix, the bars
to look for in ``--data-dir``: the symbol's own first, a proxy (such as ES futures for 2020)
only when none of those has a session of the window. The data is chosen by coverage, never by
result, and the parameters are the default run's in every window: the report's figures are a
reference, not a target.

Every scenario runs twice on the same data: with the drawdown breaker as deployed
(``max_dd_action = "pause"``) and alerting only (``"alert"``), each into its own folder.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from feeds.loader import load_market_data
from mtbt.config import RunConfig, load_run
from mtbt.errors import DataError, MtbtError
from mtbt.runner import run_backtest
from mtbt.sessions import NY, sessions

METRICS = (("trades", "trades"), ("win rate", "win_rate"), ("PnL", "total_pnl"))
ACTIONS = ("pause", "alert")      # max_dd_action of the two runs; "pause" is the deployed one


@dataclass(frozen=True)
class DataChoice:
    """The files a scenario runs on and how much of its window they cover."""

    bars: Path | None
    vix: Path | None
    symbol: str
    proxy: bool
    covered: int          # sessions of the window that have bars
    wanted: int           # sessions in the window

    def describe(self) -> str:
        if self.bars is None:
            return "no data"
        what = f"{self.bars.name}" + (f" ({self.symbol} proxy)" if self.proxy else "")
        if self.covered < self.wanted:
            what += f", partial: {self.covered} of {self.wanted} sessions"
        return what


@dataclass
class ScenarioResult:
    """One run of a scenario: its config, the data it used, the breaker's action (None when
    it was not run), and its summary or error."""

    name: str
    cfg: RunConfig
    choice: DataChoice
    action: str | None = None
    summary: dict | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def verdicts(self) -> dict[str, tuple[float | None, float | None, str]]:
        """metric -> (ours, reference, PASS/MISS/-) within the benchmark's tolerance."""
        bench, out = self.cfg.benchmark, {}
        refs = {"trades": bench.trades, "win_rate": bench.win_rate, "total_pnl": bench.pnl}
        for _, key in METRICS:
            ours = None if self.summary is None else self.summary[key]
            ref = refs[key]
            if ours is None or ref is None:
                out[key] = (ours, ref, "-")
            else:
                ok = abs(ours - ref) <= bench.tolerance * abs(ref)
                out[key] = (ours, ref, "PASS" if ok else "MISS")
        return out


def any_miss(results: list[ScenarioResult], action: str | None = None) -> bool:
    """Whether any run that finished (with ``action``, or any) missed a benchmark figure."""
    return any(v[2] == "MISS" for r in results if r.summary and action in (None, r.action)
               for v in r.verdicts().values())


def window(cfg: RunConfig) -> list[dt.date]:
    """The XNYS sessions of the scenario's [data] start..end."""
    start, end = cfg.data.start, cfg.data.end
    if start is None or end is None:
        raise MtbtError(f"{cfg.source}: a validation scenario needs data.start and data.end")
    return list(sessions(start, end))


def _session_dates(path: Path) -> set[dt.date]:
    try:
        stamps = pd.read_parquet(path, columns=["timestamp"])["timestamp"]
    except Exception as exc:   # pyarrow raises several unrelated types
        why = " ".join(str(exc).split())[:200]
        raise DataError(f"{path}: not a parquet file with a timestamp column ({why})") from exc
    stamps = pd.DatetimeIndex(stamps)
    if stamps.tz is not None:
        stamps = stamps.tz_convert(NY)
    return set(stamps.date)


def _best(data_dir: Path, prefixes: tuple[str, ...], days: set[dt.date]) -> tuple[Path, int]:
    """The file (by prefix order, then coverage) with the most sessions of ``days``."""
    best: tuple[Path | None, int] = (None, 0)
    for prefix in prefixes:
        for path in sorted(data_dir.glob(f"{prefix}*.parquet")):
            covered = len(_session_dates(path) & days)
            if covered > best[1]:
                best = (path, covered)
        if best[0] is not None:
            break
    return best


def choose_data(cfg: RunConfig, data_dir: Path) -> DataChoice:
    """Pick the scenario's bars and VIX in ``data_dir`` by how much of the window they cover."""
    days = set(window(cfg))
    v = cfg.validation
    vix, _ = _best(data_dir, v.vix, days)
    bars, covered = _best(data_dir, v.bars, days)
    if bars is not None:
        return DataChoice(bars, vix, cfg.strategy.symbol, False, covered, len(days))
    proxy, covered = _best(data_dir, v.proxy, days)
    return DataChoice(proxy, vix, v.proxy_symbol or cfg.strategy.symbol, proxy is not None,
                      covered, len(days))


def fetch_commands(cfg: RunConfig, choice: DataChoice, data_dir: Path) -> list[str]:
    """The ``mtbt data fetch`` commands that would get a scenario's missing data."""
    start, end = cfg.data.start, cfg.data.end
    symbol = cfg.strategy.symbol
    commands = []
    if choice.bars is None or choice.covered < choice.wanted:
        warm = start - dt.timedelta(days=45)     # room for the indicators' warm-up sessions
        commands.append(f"python -m mtbt data fetch {symbol} --start {warm} --end {end} "
                        f"--out {data_dir / f'{symbol}_minute_{warm}_{end}.parquet'}")
    if choice.vix is None:
        commands.append(f"python -m mtbt data fetch I:VIX --timespan day --start {start.year - 1}"
                        f"-01-01 --end {end} --out {data_dir / f'I_VIX_day_{end}.parquet'}")
    return commands


def run_scenario(path: Path, data_dir: Path, out_root: Path, *,
                 tearsheet: bool) -> list[ScenarioResult]:
    """Run one scenario on the data it finds, once per ``ACTIONS`` (reports in
    ``out_root/NAME/ACTION``); a scenario with no data is one result, not run."""
    cfg = load_run(path)
    try:
        choice = choose_data(cfg, data_dir)
    except MtbtError as exc:
        none = DataChoice(None, None, cfg.strategy.symbol, False, 0, 0)
        return [ScenarioResult(cfg.name, cfg, none, error=str(exc))]
    if choice.bars is None or choice.vix is None:
        return [ScenarioResult(cfg.name, cfg, choice)]
    overrides = [f"data.bars={json.dumps(str(choice.bars))}",
                 f"data.vix={json.dumps(str(choice.vix))}",
                 f"strategy.symbol={json.dumps(choice.symbol)}"]
    if choice.proxy:
        overrides.append(f"data.bar_label={json.dumps(cfg.validation.proxy_bar_label)}")
    try:                              # the bars once, for both runs
        market = load_market_data(load_run(path, overrides).data)
    except MtbtError as exc:
        return [ScenarioResult(cfg.name, cfg, choice, action, error=str(exc))
                for action in ACTIONS]
    return [_run(ScenarioResult(cfg.name, cfg, choice, action), path,
                 [*overrides, f"risk_management.max_dd_action={json.dumps(action)}"],
                 out_root / cfg.name / action, tearsheet, market) for action in ACTIONS]


def _run(result: ScenarioResult, path: Path, overrides: list[str], out_dir: Path,
         tearsheet: bool, market) -> ScenarioResult:
    """Backtest ``path`` with ``overrides`` on ``market`` into ``out_dir``: ``result`` with
    its summary and notes, or its error."""
    try:
        run = run_backtest(load_run(path, overrides), out_dir=out_dir, tearsheet=tearsheet,
                           market=market)
    except MtbtError as exc:
        result.error = str(exc)
        return result
    result.summary, result.notes = run.summary, run.notes
    return result
