"""One paper-trading session: ``run_paper`` (``python -m mtbt paper``).

The run's own strategy, sizer, risk limits and analyzers (``runner.build_cerebro``) on the
Alpaca venue: an ``AlpacaData`` feed and an ``AlpacaBroker``. Session times come from
Alpaca's clock and calendar; the feed backfills ``warmup_sessions`` of history, then trades
today's session live and ends after its last bar. After every bar (``loop.BarLoop``) the
state file gets a checkpoint (before that bar's orders are sent) and the session files a
balance row. The state file is held by one session at a time. A restart the same day
resumes from the checkpoint; a later day starts fresh day counters and keeps the run-wide
ones (the drawdown breaker among them: ``reset_breaker`` clears a tripped one), and reports
any trade an earlier session left open. SIGINT/SIGTERM end the session cleanly: working
orders are cancelled, what mtbt opened is closed (unless ``keep_positions``), the files
are written.

Option structures are priced on Alpaca's live option quotes (``mtbt.alpaca.quote_chain``:
the feed ``[options] quotes_feed``, the model where a quote is missing) when ``[options]
prices`` is "recorded" or "auto", and on the synthetic chain with "model"; the summary's
``option_prices`` counts which priced the marks, and what the quotes cost and missed.
"""
from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import requests
from alpaca.common.exceptions import APIError

from analyzers.daily import daily_table
from analyzers.journal import iso_ny
from analyzers.summary import summarize
from feeds.parquet import read_daily
from mtbt._version import __version__
from mtbt.alpaca.quote_chain import QuotePrices
from mtbt.alpaca.quotes import OptionQuotes
from mtbt.alpaca.store import AlpacaStore
from mtbt.config import RunConfig
from mtbt.errors import BrokerError, ConfigError, MtbtError, StateError
from mtbt.live.alert_webhook import webhook_url
from mtbt.live.alerts import AlertHub
from mtbt.live.logs import SessionFiles, session_id
from mtbt.live.loop import BarLoop
from mtbt.live.record import SessionRecord
from mtbt.live.shutdown import close_out
from mtbt.live.status import SessionStatus, latency_ms
from mtbt.risk import RiskManager
from mtbt.runner import Venue, build_cerebro, chain_model
from mtbt.sessions import NY
from mtbt.state import StateStore
from mtbt.strategies._resume import later_day

log = logging.getLogger("mtbt.live")


@dataclass(frozen=True)
class PaperResult:
    """What a session did and where its files are."""

    session: str
    folder: Path
    trades: pd.DataFrame
    summary: dict
    stopped_by: str          # "session end" or the signal's name
    latency: dict            # "bar_to_order": (role, s) per order; "bar_handled": s per bar


def run_paper(cfg: RunConfig, *, store: AlpacaStore | None = None, dry_run: bool = False,
              keep_positions: bool = False, log_dir: str | Path = "logs/live_trading",
              state_path: str | Path | None = None, stall: float = 90.0,
              stop: threading.Event | None = None, reset_breaker: bool = False,
              same_day: bool = True, option_quotes: bool | None = None) -> PaperResult:
    """Trade today's session on the Alpaca paper account (see the module docstring).

    ``store`` defaults to one from the environment (keys, endpoints); ``state_path`` to
    ``<log_dir>/state.sqlite`` (``dry_run`` keeps state in memory and sends nothing);
    ``reset_breaker`` clears a tripped drawdown breaker in the state file first.
    ``same_day`` False refuses a state file that already holds today's session (a replay's
    simulator starts the day afresh: it cannot continue one). ``option_quotes``: price
    structures on the store's live option quotes (default: unless ``[options] prices`` is
    "model").
    """
    webhook = webhook_url()                  # MTBT_ALERT_WEBHOOK, checked before anything
    store = store or AlpacaStore(paper_mode=cfg.deployment.paper_mode)
    folder = Path(log_dir)
    name = session_id()
    state = StateStore(":memory:" if dry_run else state_path or folder / "state.sqlite",
                       symbol=cfg.strategy.symbol)          # held until the session ends
    secrets = store.secrets() + (os.environ.get("POLYGON_API_KEY", ""),)
    try:
        files = SessionFiles(folder, name, secrets)
    except BaseException:
        state.close()
        raise
    status = SessionStatus(folder, name, symbol=cfg.strategy.symbol, run=cfg.name,
                           run_id=cfg.run_id, dry_run=dry_run)   # status_<SESSION>.json
    alerts = AlertHub(folder, name, cfg.alerts, symbol=cfg.strategy.symbol, secrets=secrets,
                      webhook=webhook)                     # events_<SESSION>.jsonl, webhook
    stop = stop or threading.Event()
    stopped_by = ["session end"]
    record = SessionRecord(files, cfg, dry_run=dry_run)   # bars_, vix_, run_, record_<SESSION>
    try:
        vix = _vix(cfg)                   # a missing source fails before any request
        today, session, calendar, history_start = _session(store, cfg)
        log.info("mtbt %s paper session %s: %s %s, run %s (%s)%s", __version__, name,
                 cfg.strategy.symbol, today, cfg.name, cfg.run_id,
                 " DRY RUN: no order is sent" if dry_run else "")
        alerts.started(cfg, today, dry_run)
        alerts.watch(store)                  # before either stream first connects
        resume, books = _checkpoints(state, today, same_day)
        if reset_breaker:
            resume = _reset_breaker(state, resume, cfg.risk_management.account_size)
        data = store.getdata(symbol=cfg.strategy.symbol, session=session,
                             sessions={d: s for d, s in calendar.items() if d <= today},
                             history_start=history_start, vix=vix, stall=stall,
                             stop=stop)
        record.attach(data, today, resume)
        if option_quotes is None:
            option_quotes = cfg.options.prices != "model"
        broker = store.getbroker(state=state, symbol=cfg.strategy.symbol, day=today,
                                 dry_run=dry_run, chain_model=chain_model(cfg),
                                 option_prices=quote_prices(cfg, store) if option_quotes
                                 else None)
        broker.setcash(cfg.risk_management.account_size)
        alerts.watch_broker(broker)
        venue = Venue(data, broker, calendar, trade_from=today, resume=resume,
                      resume_books=books)
        cerebro = build_cerebro(cfg, venue)

        status.watch(store)
        alerts.attach(cerebro)               # before the bar loop: in its bar time
        loop = BarLoop(store, broker, data, state, files, status)
        loop.attach(cerebro)
        with _signals(stop, stopped_by):
            (strat,) = cerebro.run()
        if stop.is_set() and stopped_by[0] == "session end":
            stopped_by[0] = "stop requested"          # by the caller's ``stop`` event
        if stopped_by[0] != "session end":
            log.warning("%s: stopping the session", stopped_by[0])
            close_out(store, broker, strat, data, keep_positions=keep_positions)
            if strat.trading:        # stopped during the history: the checkpoint stays
                state.save(strategy=strat.snapshot(), broker=broker.snapshot(data))
        record.write(stopped_by[0])
        result = _finish(cfg, files, strat, broker, data, loop, name, folder, stopped_by[0])
        alerts.finish(strat, result.summary)
        return result
    except MtbtError as exc:                 # the session's log says what ended it
        log.error("session %s ended: %s", name, exc)
        status.fail(exc)
        alerts.failed(exc)
        raise
    except BaseException as exc:
        log.exception("session %s ended by an error", name)
        status.fail(exc)
        alerts.failed(exc)
        raise
    finally:
        record.write_on_error()              # a session stopped by an error: its bars too
        alerts.close()                       # the webhook's queue, drained (bounded)
        store.stop()
        files.close()
        state.close()
        gc.unfreeze()                        # the warm-up frozen by the bar loop, collectable


def quote_prices(cfg: RunConfig, store: AlpacaStore) -> QuotePrices:
    """Structures priced on the store's latest option quotes (``[options] quotes_feed``; a
    quote older than ``stale_minutes`` is missing), the model where one is missing."""
    o = cfg.options
    if o.min_volume:
        log.warning("NOTE options.min_volume = %d is not applied on live quotes (they carry no "
                    "volume); max_spread_pct and min_bid are", o.min_volume)
    quotes = OptionQuotes.from_store(store, feed=o.quotes_feed,
                                     max_age=dt.timedelta(minutes=o.stale_minutes))
    log.info("option prices: Alpaca's latest quotes (%s feed), the model where one is "
             "missing", o.quotes_feed)
    prices = QuotePrices(quotes, cfg.strategy.symbol, stale_minutes=o.stale_minutes)
    prices.counts.sessions["recorded"] = 1
    return prices


def _session(store: AlpacaStore, cfg: RunConfig):
    """Today by Alpaca's clock, its session, the calendar around it and the first
    history session."""
    url = store.endpoints.trading
    try:
        now = pd.Timestamp(store.now()).tz_convert(NY).tz_localize(None).to_pydatetime()
        today = now.date()
        calendar = store.sessions(today - dt.timedelta(days=120),
                                  today + dt.timedelta(days=45))
    except APIError as exc:
        what = "refused the keys" if exc.status_code in (401, 403) else "answered an error"
        raise BrokerError(f"Alpaca at {url} {what} (HTTP {exc.status_code})") from None
    except requests.RequestException as exc:
        raise BrokerError(f"cannot reach Alpaca at {url} ({type(exc).__name__}, after "
                          "retries)") from None
    session = calendar.get(today)
    if session is None:
        raise BrokerError(f"{today} is not a trading session (Alpaca's calendar); "
                          "start the paper trader on a market day")
    if now >= session.close:
        raise BrokerError(f"today's session closed at {session.close:%H:%M} New York time "
                          f"(Alpaca's clock says {now:%H:%M})")
    past = sorted(d for d in calendar if d < today)
    warm = max(cfg.data.warmup_sessions, 20)
    return today, session, calendar, past[-min(warm, len(past))]


def _checkpoints(state: StateStore, today: dt.date,
                 same_day: bool = True) -> tuple[dict | None, dict | None]:
    """The strategy's and the broker's checkpoints to resume: all of today's; of an earlier
    day only the run's counters (``_resume.later_day``: realised PnL, peak, the breaker,
    alerts, edge samples), without its lots, day counters, journal and books. Today's
    with ``same_day`` False: ``StateError``."""
    snapshot, books = state.load("strategy"), state.load("broker")
    if not same_day and snapshot and snapshot.get("day") == today.isoformat():
        raise StateError(
            f"state file {state.path} already holds a session of {today} (it ran, or was "
            "stopped, before): a replay starts the day afresh and cannot continue it; pass "
            "a new --state (or delete that one)")
    if snapshot and snapshot.get("day") != today.isoformat():
        for lot in snapshot.get("lots", []):
            what = (lot["structure"]["name"] if lot.get("structure")
                    else f"{lot['remaining'] or lot['qty']} shares")
            log.error("CARRIED OVER #%s %s %s from the session of %s (stage %s): today's "
                      "session does not manage it; see the POSITION lines for what Alpaca "
                      "holds", lot["trade_id"], "long" if lot["side"] > 0 else "short", what,
                      snapshot["day"], lot["stage"])
        snapshot = later_day(snapshot) | {"carried_over": [
            f"#{lot['trade_id']} of {snapshot['day']}" for lot in snapshot.get("lots", [])]}
    if books and books.get("day") != today.isoformat():
        books = None
    if snapshot:
        log.info("resuming from the state file: %d open trade(s)", len(snapshot["lots"]))
    return snapshot, books


def _reset_breaker(state: StateStore, snapshot: dict | None,
                   account_size: float) -> dict | None:
    """``--reset-breaker``: clear a tripped drawdown breaker in the checkpoint and the state
    file (``RiskManager.reset_breaker``: the drawdown counts again from today's equity)."""
    risk = (snapshot or {}).get("risk", {})
    if not (risk.get("tripped") or risk.get("paused")):
        log.info("BREAKER RESET (--reset-breaker): the state file holds no tripped breaker; "
                 "nothing to reset")
        return snapshot
    manager = RiskManager(account_size=account_size)
    manager.realized, manager.peak = risk["realized"], risk["peak"]
    drawdown = manager.drawdown
    manager.reset_breaker()
    snapshot = snapshot | {"risk": risk | {"paused": manager.paused,
                                            "tripped": manager.tripped, "peak": manager.peak}}
    state.save(strategy=snapshot)
    log.warning("BREAKER RESET (--reset-breaker): was tripped, drawdown $%.2f; the drawdown "
                "counts from equity $%.2f", drawdown, manager.equity)
    return snapshot


def _vix(cfg: RunConfig) -> pd.Series:
    """Daily VIX closes: ``[data] vix`` (a file) or Polygon's I:VIX with POLYGON_API_KEY."""
    if cfg.data.vix:
        return read_daily(cfg.data.vix)
    if os.environ.get("POLYGON_API_KEY"):
        from feeds.download import fetch_bars

        today = dt.date.today()
        out = Path(".mtbt-cache") / f"vix_{today:%Y%m%d}.parquet"
        if not out.exists():
            fetch_bars("I:VIX", today - dt.timedelta(days=60), today, timespan="day", out=out)
        return read_daily(out)
    raise ConfigError("no daily VIX source: set [data] vix to a VIX parquet file "
                      "(mtbt data fetch I:VIX ...) or export POLYGON_API_KEY")


@contextmanager
def _signals(stop: threading.Event, stopped_by: list):
    """SIGINT/SIGTERM set ``stop`` (the feed then ends the run) instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        stopped_by[0] = signal.Signals(signum).name
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _risk_summary(risk: RiskManager) -> dict:
    """The day's and the run's risk counters, the drawdown breaker's state among them."""
    return {"day_pnl": risk.day_pnl, "realized": risk.realized, "halted_today":
            risk.halted_today, "paused": risk.paused, "breaker_tripped": risk.tripped,
            "breaker_trips": risk.trips, "peak_equity": risk.peak,
            "drawdown": round(risk.drawdown, 2)}


def _option_prices(strat, broker) -> dict | None:
    """The summary's ``option_prices`` of an options session (None for shares): the marks by
    source (``"recorded"``: a live quote), the candidates dropped, and the quotes' figures."""
    if strat.p.instrument != "options":
        return None
    counts, prices = broker.price_counts, broker.p.option_prices
    if not (counts.sessions["recorded"] or counts.sessions["model"]):
        counts.sessions["model"] = 1                # this session, on the model
    out = counts.as_dict()
    return out | {"quotes": prices.stats()} if prices is not None else out


def _finish(cfg: RunConfig, files: SessionFiles, strat, broker, data, loop: BarLoop,
            name: str, folder: Path, stopped_by: str) -> PaperResult:
    start = cfg.risk_management.account_size
    trades = strat.analyzers.journal.get_frame()
    equity = strat.analyzers.equity.get_frame()
    today = pd.Timestamp(broker.day)
    equity = equity[equity.index.tz_localize(None).normalize() >= today]
    regimes = strat.analyzers.regime.get_frame()
    files.write_trades(trades)
    trips = strat.breaker_trips            # the run's, earlier sessions' included
    summary = summarize(trades, equity, start, data=f"alpaca:{cfg.strategy.symbol}",
                        data_sha256={}, version=__version__,
                        max_dd_action=cfg.risk_management.max_dd_action,
                        breaker_trips=[iso_ny(t) for t in trips])
    summary |= {"session": name, "stopped_by": stopped_by,
                "orders_sent": broker.sent,
                "duplicate_submits_caught": broker.duplicates_caught,
                "duplicate_fill_events_dropped": broker.duplicate_events,
                "streams": {"bars_streamed": data.bars_live,
                            "bars_recovered_over_rest": data.bars_recovered,
                            "bar_stream_connects": data.p.store.data_stream.connects,
                            "trade_stream_connects": data.p.store.trade_stream.connects},
                "orphans": broker.orphans, "open_trades": len(strat.open_lots()),
                "carried_over": (strat.p.resume or {}).get("carried_over", []),
                "risk": _risk_summary(strat.risk),
                "latency_ms": {"bar_to_order": latency_ms([s for _, s in broker.order_latency]),
                               "bar_handled": latency_ms(loop.bar_seconds)},
                "option_prices": _option_prices(strat, broker)}
    daily = daily_table(equity, trades, regimes, start, trips) if len(equity) else \
        pd.DataFrame()
    files.finish(summary, daily, regimes, [a for a in strat.alerts if a[0] >= today])
    if loop.status is not None:
        loop.status.finish(stopped_by, summary, strat, broker, loop.bar_seconds)
    log.info("session %s finished (%s): %d trade row(s), pnl %.2f", name, stopped_by,
             len(trades), summary["total_pnl"] or 0.0)
    samples = {"bar_to_order": broker.order_latency, "bar_handled": loop.bar_seconds}
    return PaperResult(name, folder, trades, summary, stopped_by, samples)
