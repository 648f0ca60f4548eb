"""Build and run a Cerebro from a run config: ``build_cerebro(cfg, venue)``, the one seam
every venue goes through (a ``Venue`` supplies the feed and the broker: ``backtest_venue``
here, the paper session's on Alpaca or the replay simulator), and ``run_backtest`` (the
parquet/sample venue with reports)."""
from __future__ import annotations

import datetime as dt
import importlib
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import backtrader as bt
import pandas as pd

from analyzers import EquityCurve, Journal, Progress, RegimeLog
from analyzers.report import write_reports
from analyzers.report_process import ReportProcess
from feeds.arrays import BarFeed
from feeds.loader import MarketData, load_market_data
from feeds.options_store import OptionStore
from mtbt import registry
from mtbt._version import __version__
from mtbt.brokers.backtest import BacktestBroker
from mtbt.config import RunConfig
from mtbt.errors import ConfigError
from mtbt.exits import ExitRules
from mtbt.options.allocator import AllocatorSettings, Liquidity
from mtbt.options.chain import ChainModel
from mtbt.options.recorded import PriceCounts, RecordedPrices
from mtbt.risk import RiskManager, RiskSizer
from mtbt.sessions import Session, sessions
from mtbt.strategies import ManagedStrategy

log = logging.getLogger("mtbt")

def managed_kwargs(cfg: RunConfig, strategy: type[bt.Strategy]) -> dict:
    """``ManagedStrategy`` params (window, force closes, exits, instrument) from the config."""
    h = cfg.trading_hours
    instrument = getattr(strategy, "fixed_instrument", None) or cfg.strategy.instrument
    return dict(entry_start=h.ny_open_start, entry_end=h.ny_open_end,
                force_close_before=h.force_close_minutes_before_close,
                options_force_close_before=h.options_force_close_minutes_before_close,
                exit_rules=ExitRules(**cfg.scaling_exits.model_dump()),
                instrument=instrument, expiry_sessions=cfg.options.expiry_sessions,
                allocator=allocator_settings(cfg))


def allocator_settings(cfg: RunConfig) -> AllocatorSettings:
    """The options allocator's settings from ``[options]``."""
    o = cfg.options
    return AllocatorSettings(score=o.score, min_edge=o.min_edge, fallback=o.fallback,
                             paths=o.ev_paths, seed=o.ev_seed, vol_sessions=o.vol_sessions,
                             edge=o.edge, edge_shrink=o.edge_shrink, gap=o.worst_gap_pct,
                             liquidity=Liquidity(o.max_spread_pct, o.min_bid, o.min_volume))


def option_prices(cfg: RunConfig, traded: list[dt.date]) -> RecordedPrices:
    """The run's option price source: for ``prices = "model"`` one that covers nothing (the
    synthetic chain everywhere, counted); else the store ``data.options`` for the run's
    symbol, after the checks a user can fix: the store exists and holds the symbol; with
    "recorded", it covers every session in ``traded`` (the first missing one named).
    Sessions are read when first priced (``OptionStore.bars``)."""
    o, root = cfg.options, cfg.data.options
    if o.prices == "model":
        prices = RecordedPrices("model", (), _no_store)
        prices.counts.sessions["model"] = len(traded)
        return prices
    symbol = cfg.strategy.symbol
    store = OptionStore(root, symbol)
    if not store.days:
        others = sorted(p.name for p in Path(root).iterdir() if p.is_dir()
                        and any(p.glob("*.parquet")))
        raise ConfigError(f"{cfg.source}: data.options = {root!r} holds no {symbol} sessions "
                          f"(the run's strategy.symbol; it has {', '.join(others) or 'none'})")
    missing = [d for d in traded if not store.covers(d)]
    if o.prices == "recorded" and missing:
        raise ConfigError(f"{cfg.source}: options.prices = \"recorded\" but data.options = "
                          f"{root!r} has no {symbol} session {missing[0]} ({len(missing)} of "
                          f"{len(traded)} traded sessions missing; \"auto\" prices them by "
                          "the model)")
    covered = [d for d in traded if store.covers(d)]
    counts = PriceCounts(o.prices)
    counts.sessions["recorded"], counts.sessions["model"] = len(covered), len(missing)
    if not covered:
        log.warning("NOTE data.options = %s covers none of the %d traded sessions: every "
                    "option price is the model's", root, len(traded))
    return RecordedPrices(o.prices, store.days, store.bars, stale_minutes=o.stale_minutes,
                          half_spread_pct=o.recorded_half_spread_pct, counts=counts)


def _no_store(day: dt.date):
    raise AssertionError(f"a model-priced run read the options store ({day})")


def strategy_kwargs(cfg: RunConfig, strategy: type[bt.Strategy] | None = None) -> dict:
    """The strategy's own params: its run-file section's keys (``config_section``) and the
    volatility bounds. ``strategy`` defaults to the one the run file names."""
    strategy = strategy or resolve_strategy(cfg)
    v, s = cfg.volatility_filters, cfg.strategy
    common = dict(vix_min=v.vix_min, vix_max=v.vix_max, atr_min_pct=v.atr_min_pct,
                  trend_ema_4h=s.trend_ema_4h, trend_ema_1d=s.trend_ema_1d)
    section = getattr(cfg, getattr(strategy, "config_section", "strategy"))
    return section.model_dump(exclude={"name", "symbol", "instrument"}) | common


def resolve_strategy(cfg: RunConfig) -> type[bt.Strategy]:
    """The class ``[strategy] name`` names (``mtbt.registry``); ConfigError if it cannot be
    imported."""
    name = cfg.strategy.name
    module, cls = registry.class_path(name)
    try:
        strategy = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{cfg.source}: strategy.name = {name!r}: {exc}") from None
    if not (isinstance(strategy, type) and issubclass(strategy, ManagedStrategy)):
        raise ConfigError(f"{cfg.source}: strategy.name = {name!r}: not a ManagedStrategy "
                          "subclass")
    return strategy


def chain_model(cfg: RunConfig) -> ChainModel:
    """The synthetic chain's settings from ``[options]``."""
    return ChainModel(**cfg.options.model_dump(include=set(cfg.options.CHAIN_KEYS)))


def risk_manager(cfg: RunConfig) -> RiskManager:
    r = cfg.risk_management
    return RiskManager(r.account_size, r.risk_per_trade_pct, r.max_positions,
                       r.daily_dd_limit, r.max_dd_threshold, r.max_dd_action)


@dataclass
class Venue:
    """Where a run trades: the feed, the broker, and what the strategy may know of time.

    ``sessions``: ``{date: Session}`` the strategy may see; ``trade_from``: no entries
    before it (earlier bars warm up); ``resume``/``resume_books``: a live restart's
    checkpoints of the strategy and the broker; ``progress(bars)``: called every few
    thousand bars; ``first_structure(name, fields)``: the journal's record of the run's first
    option structure of each type, as it trades it. ``backtest_venue`` makes the backtest's;
    a paper session (on Alpaca or on the replay simulator) makes its own from the store.
    """

    data: bt.feed.DataBase
    broker: bt.BrokerBase
    sessions: Mapping[dt.date, Session]
    trade_from: dt.date | None = None
    resume: dict | None = None
    resume_books: dict | None = None
    progress: Callable[[int], None] | None = None
    first_structure: Callable[[str, dict], None] | None = None


def backtest_venue(cfg: RunConfig, data: bt.feed.DataBase, *, first: dt.date, last: dt.date,
                   trade_from: dt.date | None = None,
                   progress: Callable[[int], None] | None = None,
                   traded: list[dt.date] | None = None) -> Venue:
    """``data`` on the backtest broker (local fills by backtrader's rules, option
    structures on the run's chain model, or on recorded option bars per ``[options]
    prices``: ``option_prices``) with the run's cash and slippage; the XNYS sessions from
    ``first`` to ``last``. ``traded``: the sessions the run trades (default: the XNYS
    sessions from ``trade_from`` or ``first`` to ``last``)."""
    days = sessions(first, last)
    if traded is None:
        traded = [d for d in days if d >= (trade_from or first)]
    broker = BacktestBroker(chain_model=chain_model(cfg), prices=option_prices(cfg, traded))
    broker.setcash(cfg.risk_management.account_size)
    broker.set_slippage_fixed(cfg.costs.slippage_per_share, slip_open=True,
                              slip_limit=False, slip_match=True, slip_out=False)
    return Venue(data, broker, days, trade_from, progress=progress)


def build_cerebro(cfg: RunConfig, venue: Venue, *, strategy: type[bt.Strategy] | None = None,
                  strategy_params: dict | None = None) -> bt.Cerebro:
    """A Cerebro with the run's strategy, risk, sizer, costs and analyzers on ``venue``.

    The strategy is the one the run file names, with its own params from the run file;
    ``strategy`` (a ``ManagedStrategy``) and ``strategy_params`` replace both (tests script
    entries this way).
    """
    cerebro = bt.Cerebro(stdstats=False, runonce=True, preload=True)
    risk = risk_manager(cfg)
    broker = venue.broker
    cerebro.setbroker(broker)
    broker.setcommission(commission=cfg.costs.commission_per_share,
                         commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True,
                         leverage=cfg.risk_management.max_leverage)
    cerebro.adddata(venue.data, name=cfg.strategy.symbol)
    if strategy is None:
        strategy = resolve_strategy(cfg)
        strategy_params = strategy_kwargs(cfg, strategy)
    cerebro.addstrategy(strategy, risk=risk, trade_from=venue.trade_from,
                        sessions=venue.sessions, resume=venue.resume,
                        resume_books=venue.resume_books, **managed_kwargs(cfg, strategy),
                        **(strategy_params or {}))
    cerebro.addsizer(RiskSizer, risk=risk, stop_pct=cfg.scaling_exits.stop_pct,
                     commission=cfg.costs.commission_per_share,
                     slippage=cfg.costs.slippage_per_share)
    cerebro.addanalyzer(Journal, _name="journal", first_structure=venue.first_structure)
    cerebro.addanalyzer(EquityCurve, _name="equity")
    cerebro.addanalyzer(RegimeLog, _name="regime")
    cerebro.addanalyzer(Progress, _name="progress", callback=venue.progress)
    return cerebro


@dataclass(frozen=True)
class BacktestResult:
    """Where the reports went and the summary figures."""

    out_dir: Path
    summary: dict
    seconds: float
    bars: int
    alerts: list = field(default_factory=list)   # (bar time, text) of each risk alert
    notes: list = field(default_factory=list)    # things the user should know about the run
    regimes: dict = field(default_factory=dict)  # sessions per regime at the open


def default_out_dir(cfg: RunConfig) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(cfg.report.out_dir) / f"{cfg.name}-{stamp}"


def run_backtest(cfg: RunConfig, *, out_dir: Path | None = None,
                 tearsheet: bool | None = None,
                 progress: Callable[[str, int, int], None] | None = None,
                 market: MarketData | None = None) -> BacktestResult:
    """Run the configured backtest and write every report into ``out_dir``.

    ``progress(phase, done, total)`` reports "loading data", then "backtest" every few
    thousand bars, then "writing reports" (total 0 when unknown). ``market``: bars already
    loaded (a sweep shares one copy between its runs); None loads ``cfg.data``.
    """
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg)
    made = next((p for p in reversed((out, *out.parents)) if not p.exists()), None)
    out.mkdir(parents=True, exist_ok=True)
    handler = _attach_run_log(out / "run.log")
    report = progress or (lambda phase, done, total: None)
    want_tearsheet = cfg.report.tearsheet if tearsheet is None else tearsheet
    process = None
    failed = True
    try:
        report("loading data", 0, 0)
        if market is None:
            market = load_market_data(cfg.data)
        _log_header(cfg, market)
        bars = market.bars
        days = bars.index.tz_localize(None).normalize()
        short = _short_warmup(cfg.data.warmup_sessions, days, market.trade_from)
        if short:
            log.warning(short)
        traded = sorted({d.date() for d in days.unique()
                         if market.trade_from is None or d.date() >= market.trade_from})
        venue = backtest_venue(cfg, BarFeed(dataname=bars), first=days[0].date(),
                               last=days[-1].date(), trade_from=market.trade_from,
                               progress=lambda n: report("backtest", n, len(bars)),
                               traded=traded)
        process = ReportProcess(out, venue.broker.p.chain_model, tearsheet=want_tearsheet)
        venue.first_structure = process.payoff
        cerebro = build_cerebro(cfg, venue)
        started = time.perf_counter()
        (strat,) = cerebro.run()
        seconds = time.perf_counter() - started
        log.info("run finished: %d bars in %.1f s", len(bars), seconds)
        report("writing reports", 0, 0)
        summary, notes, daily = write_reports(out, strat, market, cfg, tearsheet=want_tearsheet,
                                              version=__version__, process=process)
        failed = False
    finally:
        if failed and process is not None:
            process.abort()
        _detach_run_log(handler)
        if failed and made is not None:      # nothing half-made is left behind
            shutil.rmtree(made, ignore_errors=True)
    notes = [short, *notes] if short else notes
    regimes = daily["regime"].value_counts() if len(daily) else {}
    return BacktestResult(out, summary, seconds, len(bars), strat.alerts, notes,
                          {str(k): int(v) for k, v in regimes.items()})


def _short_warmup(wanted: int, days: pd.DatetimeIndex, trade_from: dt.date | None) -> str:
    """What a run with fewer than ``wanted`` warm-up sessions before its first traded session
    should tell the user ("" when it has them all)."""
    loaded = days.unique()
    first = trade_from or loaded[0].date()
    had = int((loaded < pd.Timestamp(first)).sum())
    if had >= wanted:
        return ""
    ahead = list(sessions(first, first + dt.timedelta(days=2 * wanted + 10)))
    later = (f"; --start {ahead[wanted - had]} or later has them all"
             if len(ahead) > wanted - had else "")
    return (f"warm-up: {had} of {wanted} sessions before the first traded session {first}: "
            f"the first sessions trade nothing while the indicators fill (regime WARMUP), "
            f"and until {wanted} sessions have passed the daily ATR (brick size), the trend "
            f"EMAs and the regime read less history than a longer run's, so signals may "
            f"differ from it{later}")


def _log_header(cfg: RunConfig, market) -> None:
    data = "SYNTHETIC DATA (embedded sample)" if market.synthetic else market.label
    log.info("mtbt %s run %s (%s) id %s", __version__, cfg.name, cfg.source, cfg.run_id)
    log.info("data: %s, %d bars, %s to %s", data, len(market.bars),
             market.bars.index[0].isoformat(), market.bars.index[-1].isoformat())


def _attach_run_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def _detach_run_log(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()
    log.propagate = True
