"""Build and run a Cerebro from a run config: ``build_cerebro`` (shared by every venue) and
``run_backtest`` (the parquet/sample venue with reports)."""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import backtrader as bt

from analyzers import EquityCurve, Journal, Progress, RegimeLog
from analyzers.report import write_reports
from feeds.arrays import BarFeed
from feeds.loader import MarketData, load_market_data
from mtbt._version import __version__
from mtbt.brokers.backtest import BacktestBroker
from mtbt.config import RunConfig
from mtbt.exits import ExitRules
from mtbt.options.allocator import AllocatorSettings
from mtbt.options.chain import ChainModel
from mtbt.risk import RiskManager, RiskSizer
from mtbt.sessions import sessions
from mtbt.strategies import IronCondor0DTE, WaveRenko

log = logging.getLogger("mtbt")

STRATEGIES = {"wave_renko": WaveRenko, "iron_condor": IronCondor0DTE}


def managed_kwargs(cfg: RunConfig) -> dict:
    """``ManagedStrategy`` params (window, force closes, exits, instrument) from the config."""
    h = cfg.trading_hours
    instrument = "options" if cfg.strategy.name == "iron_condor" else cfg.strategy.instrument
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
                             edge=o.edge, edge_shrink=o.edge_shrink, gap=o.worst_gap_pct)


def strategy_kwargs(cfg: RunConfig) -> dict:
    """The configured strategy's own params: its section's keys and the volatility bounds."""
    v, s = cfg.volatility_filters, cfg.strategy
    common = dict(vix_min=v.vix_min, vix_max=v.vix_max, atr_min_pct=v.atr_min_pct,
                  trend_ema_4h=s.trend_ema_4h, trend_ema_1d=s.trend_ema_1d)
    if s.name == "iron_condor":
        return cfg.iron_condor.model_dump() | common
    return s.model_dump(exclude={"name", "symbol", "instrument"}) | common


def chain_model(cfg: RunConfig) -> ChainModel:
    """The synthetic chain's settings from ``[options]``."""
    return ChainModel(**cfg.options.model_dump(include=set(cfg.options.CHAIN_KEYS)))


def risk_manager(cfg: RunConfig) -> RiskManager:
    r = cfg.risk_management
    return RiskManager(r.account_size, r.risk_per_trade_pct, r.max_positions,
                       r.daily_dd_limit, r.max_dd_threshold, r.max_dd_action)


def build_cerebro(cfg: RunConfig, data: bt.feed.DataBase, *, first: dt.date, last: dt.date,
                  broker: bt.BrokerBase | None = None, trade_from: dt.date | None = None,
                  progress: Callable[[int], None] | None = None,
                  strategy: type[bt.Strategy] | None = None,
                  strategy_params: dict | None = None,
                  session_map: dict | None = None, resume: dict | None = None,
                  resume_books: dict | None = None) -> bt.Cerebro:
    """A Cerebro with the run's strategy, risk, sizer, costs and analyzers on ``data``.

    ``broker`` None means the backtest broker (BackBroker with option structures) with the
    run's costs; a live venue passes its own. ``first``/``last`` bound the sessions the
    strategy may see. ``strategy`` (a ``ManagedStrategy``) and ``strategy_params`` replace the
    configured strategy and its own params (tests script entries this way). A live venue
    passes its own calendar (``session_map``) and a restart's checkpoints (``resume``,
    ``resume_books``).
    """
    cerebro = bt.Cerebro(stdstats=False, runonce=True, preload=True)
    risk = risk_manager(cfg)
    if broker is None:
        broker = BacktestBroker(chain_model=chain_model(cfg))
        broker.setcash(cfg.risk_management.account_size)
        broker.set_slippage_fixed(cfg.costs.slippage_per_share, slip_open=True,
                                  slip_limit=False, slip_match=True, slip_out=False)
    cerebro.setbroker(broker)
    broker.setcommission(commission=cfg.costs.commission_per_share,
                         commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True,
                         leverage=cfg.risk_management.max_leverage)
    cerebro.adddata(data, name=cfg.strategy.symbol)
    if strategy is None:
        strategy, strategy_params = STRATEGIES[cfg.strategy.name], strategy_kwargs(cfg)
    cerebro.addstrategy(strategy, risk=risk, trade_from=trade_from,
                        sessions=session_map or sessions(first, last), resume=resume,
                        resume_books=resume_books, **managed_kwargs(cfg),
                        **(strategy_params or {}))
    cerebro.addsizer(RiskSizer, risk=risk, stop_pct=cfg.scaling_exits.stop_pct,
                     commission=cfg.costs.commission_per_share,
                     slippage=cfg.costs.slippage_per_share)
    cerebro.addanalyzer(Journal, _name="journal")
    cerebro.addanalyzer(EquityCurve, _name="equity")
    cerebro.addanalyzer(RegimeLog, _name="regime")
    cerebro.addanalyzer(Progress, _name="progress", callback=progress)
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
    out.mkdir(parents=True, exist_ok=True)
    handler = _attach_run_log(out / "run.log")
    report = progress or (lambda phase, done, total: None)
    try:
        report("loading data", 0, 0)
        if market is None:
            market = load_market_data(cfg.data)
        _log_header(cfg, market)
        bars = market.bars
        days = bars.index.tz_localize(None).normalize()
        cerebro = build_cerebro(
            cfg, BarFeed(dataname=bars), first=days[0].date(), last=days[-1].date(),
            trade_from=market.trade_from,
            progress=lambda n: report("backtest", n, len(bars)))
        started = time.perf_counter()
        (strat,) = cerebro.run()
        seconds = time.perf_counter() - started
        log.info("run finished: %d bars in %.1f s", len(bars), seconds)
        report("writing reports", 0, 0)
        want_tearsheet = cfg.report.tearsheet if tearsheet is None else tearsheet
        summary, notes, daily = write_reports(out, strat, market, cfg,
                                              tearsheet=want_tearsheet, version=__version__)
    finally:
        _detach_run_log(handler)
    regimes = daily["regime"].value_counts() if len(daily) else {}
    return BacktestResult(out, summary, seconds, len(bars), strat.alerts, notes,
                          {str(k): int(v) for k, v in regimes.items()})


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
