"""``mtbt paper --replay``: rehearse a recorded day against the local Alpaca simulator.

The paper trader runs exactly as it would against Alpaca (real alpaca-py clients, REST and
both websockets) but on 127.0.0.1, with no keys: the simulator (``mtbt.sim``) serves the
warm-up sessions as history, streams the day's bars and fills orders with the backtest's
fill rules and costs. It paces bars in lockstep with the trader (each bar waits until the
trader has handled the previous one) and, with ``speed`` N, at most N times real time.

Option prices follow ``[options] prices`` as a backtest of the day would: with "model" the
simulator fills on the synthetic chain and the trader decides on it; with "recorded" (or
"auto" on a day the store ``[data] options`` covers) the simulator is given the day's
recorded option bars, serves its option quotes from them and fills option orders by the
backtest's recorded rules, and the trader prices structures on those quotes as it would on
Alpaca's (``mtbt.alpaca.quote_chain``), so the day trades as the backtest with the same
``prices`` does. "auto" on a day the store lacks is the model's day; "recorded" is refused.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from feeds.loader import load_market_data
from feeds.options_store import OptionStore
from feeds.parquet import read_bars, regular_hours
from mtbt.alpaca.endpoints import Endpoints
from mtbt.alpaca.store import AlpacaStore
from mtbt.config import RunConfig
from mtbt.errors import ConfigError, DataError
from mtbt.live.session import PaperResult, run_paper
from mtbt.runner import chain_model
from mtbt.sim import Faults, Simulator

REPLAY_KEYS = ("replay-key", "replay-secret")
log = logging.getLogger("mtbt.live")


def replay_config(cfg: RunConfig, bars: str | Path, day: dt.date | None = None,
                  vix: str | Path | None = None) -> RunConfig:
    """The run with ``[data]`` pointing at the recorded day (default: its last session)."""
    data = cfg.data.model_copy(update={"bars": str(bars)} | ({"vix": str(vix)} if vix else {}))
    if not data.vix:
        raise ConfigError("--replay needs daily VIX closes: set [data] vix or pass --vix")
    day = day or data.start
    if day is None:
        day = regular_hours(read_bars(bars, bar_label=data.bar_label)).index[-1].date()
    return cfg.model_copy(update={"data": data.model_copy(update={"start": day, "end": day})})


def simulator(cfg: RunConfig, faults: Faults | None = None,
              keys: tuple[str, str] = REPLAY_KEYS) -> Simulator:
    """A simulator of ``cfg``'s ``[data]`` day: the warm-up sessions as history, the day
    streamed, the run's slippage, cash and option chain, and the day's recorded option bars
    where ``[options] prices`` asks for them (``recorded_bars``)."""
    market = load_market_data(cfg.data)
    day = market.trade_from
    today = market.bars.index[market.bars.index.normalize().tz_localize(None)
                              >= dt.datetime.combine(day, dt.time(0))]
    if len(today) == 0:
        raise DataError(f"{cfg.data.bars}: no bars on {day}")
    o = cfg.options
    return Simulator(market.bars, start=today[0], symbol=cfg.strategy.symbol,
                     cash=cfg.risk_management.account_size,
                     slippage=cfg.costs.slippage_per_share, chain_model=chain_model(cfg),
                     faults=faults, keys=keys, option_bars=recorded_bars(cfg, today[0].date()),
                     half_spread_pct=o.recorded_half_spread_pct,
                     option_stale_minutes=o.stale_minutes)


def recorded_bars(cfg: RunConfig, day: dt.date):
    """The recorded option bars of ``day`` the replay runs on (a frame of the store's
    contract), or None: ``[options] prices = "model"``, or "auto" on a day ``[data]
    options`` lacks (the model's day, logged). "recorded" on such a day: ConfigError."""
    o = cfg.options
    if o.prices == "model":
        return None
    store = OptionStore(cfg.data.options, cfg.strategy.symbol)
    if store.covers(day):
        log.info("replay on recorded option bars: %s", store.path(day))
        return store.bars(day)
    if o.prices == "recorded":
        raise ConfigError(f"{cfg.source}: options.prices = \"recorded\" but data.options = "
                          f"{cfg.data.options!r} has no {store.underlying} session {day} "
                          "(\"auto\" replays it on the model)")
    log.warning("NOTE data.options = %s lacks %s: the replay prices options by the model",
                cfg.data.options, day)
    return None


def replay(cfg: RunConfig, *, speed: float = 0.0, faults: Faults | None = None,
           sim: Simulator | None = None, stop: threading.Event | None = None,
           **paper) -> PaperResult:
    """Run the paper trader on ``cfg``'s ``[data]`` day (see ``replay_config``) against a
    local simulator (``sim``, default a new one with ``faults``); ``paper`` goes to
    ``run_paper`` (log_dir, state_path, dry_run, ...). The trader prices structures on the
    simulator's option quotes when it serves recorded ones and ``[options] prices`` is not
    "model" (module docstring)."""
    sim = sim or simulator(cfg, faults)
    halt = threading.Event()
    with sim:
        pacer = threading.Thread(target=sim.run, kwargs=dict(speed=speed, stop=halt),
                                 name="sim-pacer", daemon=True)
        pacer.start()
        endpoints = Endpoints(sim.trading_url, sim.data_url, sim.trade_stream_url,
                              sim.data_stream_url)
        store = AlpacaStore(sim.keys, endpoints, paper_mode=cfg.deployment.paper_mode,
                            pace=sim.ready)
        stall = max(1.0, 120.0 / speed) if speed else 1.0
        quotes = cfg.options.prices != "model" and sim.option_quotes.source == "recorded"
        paper.setdefault("option_quotes", quotes)
        try:
            return run_paper(cfg, store=store, stall=stall, stop=stop, same_day=False,
                             **paper)
        finally:
            halt.set()
            pacer.join(timeout=5)
