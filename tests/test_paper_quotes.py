"""The paper trader on option quotes, and the replay on recorded option bars.

* The simulator fills option orders on recorded bars by the backtest's rules (the open of
  the fill minute, else the last close within ``stale_minutes``, else the model; -/+ the
  assumed half spread), checked by hand.
* ``QuotePrices``: a chain priced by the simulator's quotes through alpaca-py, the model
  where a quote is missing (logged, counted by source), one request a bar.
* Parity: a day replayed with ``[options] prices = "recorded"`` on a store made here trades
  exactly like the backtest of that day with the same store (real SPY bars; skipped without
  ../shared). The store is the model's own prices scaled down, each bar's open away from its
  close, with bars missing here and there and a quiet stretch, so that a fill at a close
  instead of an open, a quote window a minute off or a missing quote not falling back to the
  model would show in the trades.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feeds.options_store import option_bars_path, read_option_bars, write_option_bars
from mtbt.alpaca.endpoints import Endpoints
from mtbt.alpaca.quote_chain import QuoteChain, QuotePrices, quote_band
from mtbt.alpaca.quotes import OptionQuotes
from mtbt.config import load_run
from mtbt.options.allocator import Liquidity, leg_problem
from mtbt.options.chain import ChainModel, SyntheticChain, atm_iv, mid, years_to_close
from mtbt.options.occ import occ_symbol
from mtbt.options.recorded import source_of
from mtbt.options.structures import Leg
from mtbt.sessions import NY, sessions
from mtbt.sim import Simulator
from tests.bars import session_frame
from tests.test_option_quotes import sims

__all__ = ["sims"]       # the fixture: simulators closed after each test

with warnings.catch_warnings():          # alpaca-py imports websockets.legacy
    warnings.simplefilter("ignore", DeprecationWarning)
    from mtbt.alpaca.store import AlpacaStore
    from mtbt.live.replay import replay, replay_config, simulator
    from mtbt.runner import chain_model, run_backtest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2024, 1, 3)
CLOSE = sessions(DAY, DAY)[DAY].close
START = 10                                       # the first streamed bar: 09:40
HALF = 0.05
ROUTE = "GET /v1beta1/options/quotes/latest"


def spy(right: str, strike: float, expiry: dt.date = DAY) -> str:
    return occ_symbol("SPY", expiry, right, strike)


def ny(hhmm: str, day: dt.date = DAY) -> pd.Timestamp:
    return pd.Timestamp(f"{day} {hhmm}", tz=NY)


def up(p: float, half: float = HALF) -> float:
    """The assumed ask of a trade at ``p``: p + max(half x p, 1 cent), up to the cent."""
    return math.ceil(round((p + max(half * p, 0.01)) * 100, 6)) / 100


def down(p: float, half: float = HALF) -> float:
    return max(math.floor(round((p - max(half * p, 0.01)) * 100, 6)) / 100, 0.0)


def hand_store(root: Path, rows) -> pd.DataFrame:
    """Store-contract bars on DAY from (symbol, "HH:MM", open, close)."""
    frame = pd.DataFrame({
        "timestamp": [ny(t) for _, t, _, _ in rows], "contract": [s for s, *_ in rows],
        "expiry": str(DAY), "right": [s[-9] for s, *_ in rows],
        "strike": [int(s[-8:]) / 1000 for s, *_ in rows],
        "open": [o for *_, o, _ in rows], "high": [max(o, c) for *_, o, c in rows],
        "low": [min(o, c) for *_, o, c in rows], "close": [c for *_, c in rows],
        "volume": 5.0, "vwap": [c for *_, c in rows], "trades": 2.0})
    return read_option_bars(write_option_bars(frame, option_bars_path(root, "SPY", DAY)))


def start(sims: list[Simulator], bars: pd.DataFrame, **kw) -> Simulator:
    frame = session_frame(DAY, 470.0, vix=14.0)
    sim = Simulator(frame, start=frame.index[START], option_bars=bars, half_spread_pct=HALF,
                    option_stale_minutes=5, **kw).start()
    sims.append(sim)
    return sim


def store_of(sim: Simulator) -> AlpacaStore:
    return AlpacaStore(keys=sim.keys, endpoints=Endpoints(
        trading=sim.trading_url, data=sim.data_url, trade_stream=sim.trade_stream_url,
        data_stream=sim.data_stream_url))


def buy(sim: Simulator, legs: list[tuple[str, str]], tag: str) -> None:
    """An mleg market order for one of each leg ((symbol, side))."""
    sim.submit_order({"order_class": "mleg", "type": "market", "time_in_force": "day",
                      "qty": "1", "client_order_id": tag,
                      "legs": [{"symbol": s, "side": side, "ratio_qty": "1",
                                "position_intent": f"{side}_to_open"} for s, side in legs]})


# -- the simulator fills on recorded bars by the backtest's rules ------------------------------
def test_the_simulator_fills_an_mleg_at_the_recorded_open_else_the_last_close_else_the_model(
        sims, tmp_path):
    a, b, c, d = spy("C", 470), spy("C", 472), spy("P", 465), spy("P", 460)
    bars = hand_store(tmp_path, [
        (a, "09:38", 2.00, 2.10), (a, "09:40", 2.40, 2.20),   # a: a bar at the fill minute
        (b, "09:36", 0.90, 0.80),                             # b: its last close, 4 min before
        (c, "09:34", 1.50, 1.40)])                            # c: 6 min before: stale
    sim = start(sims, bars)
    buy(sim, [(a, "buy"), (b, "sell"), (c, "buy"), (d, "sell")], "fill-1")
    sim.step()                                                 # the 09:40 bar fills it
    fills = {e.symbol: e.price for e in sim.executions}
    bar = sim.exchange.last_bar
    model = SyntheticChain(ChainModel(), bar.open, 14.0, dt.datetime(2024, 1, 3, 9, 40), CLOSE)
    assert fills[a] == up(2.40)                  # the 09:40 open, not its close 2.20
    assert fills[b] == down(0.80)                # no 09:40 bar: the 09:36 close
    assert fills[c] == model.ask("P", 465)       # the 09:34 close is out of the window
    assert fills[d] == model.bid("P", 460)       # never traded: the model
    assert fills[c] != up(1.40)
    # and the account marks a held contract at its last recorded close
    assert sim.exchange.mark(a) == 2.20


# -- QuotePrices: a chain on live quotes, the model where one is missing ------------------------
def test_a_chain_on_quotes_takes_bid_and_ask_and_falls_back_to_the_model_counted_and_logged(
        sims, tmp_path, caplog):
    a, b = spy("C", 470), spy("P", 468)
    bars = hand_store(tmp_path, [(a, "09:37", 2.00, 2.00), (b, "09:30", 0.50, 0.50)])
    sim = start(sims, bars)
    store = store_of(sim)
    quotes = OptionQuotes.from_store(store, max_age=dt.timedelta(minutes=5))
    prices = QuotePrices(quotes, "SPY", stale_minutes=5)
    prices.held = lambda: [(DAY, "P", 468.0)]
    now = dt.datetime(2024, 1, 3, 9, 40)
    try:
        with caplog.at_level(logging.INFO, logger="mtbt"):
            chain = prices.chain(ChainModel(), 470.0, 14.0, now, CLOSE)
            again = prices.chain(ChainModel(), 470.0, 14.0, now, CLOSE)
            bid_a, ask_a, mid_b = chain.bid("C", 470), again.ask("C", 470), chain.mid("P", 468)
            far = chain.bid("C", 600)              # outside the band: asked on its own
            fill = prices.chain(ChainModel(), 470.0, 14.0, now, CLOSE, at_open=True)
    finally:
        store.stop()
    assert isinstance(chain, QuoteChain) and type(fill) is SyntheticChain
    assert (bid_a, ask_a) == (down(2.00), up(2.00)) and chain.mid("C", 470) == 2.00
    model = SyntheticChain(ChainModel(), 470.0, 14.0, now, CLOSE)
    assert mid_b == pytest.approx(model.mid("P", 468))        # 09:30 is stale: the model
    assert chain.bid("P", 468) == model.bid("P", 468) and far == model.bid("C", 600)
    assert source_of(chain, "C", 470) == "recorded" and source_of(chain, "P", 468) == "model"
    assert chain.has_price("C", 470) and not chain.has_price("P", 468)
    missing = leg_problem(chain, Leg("P", 468.0, 1, DAY), Liquidity())
    assert missing == ("no_recorded_price", "no live quote for P468 within 5 min")
    # one request for the band and the held leg (both chains of this bar share it), one for C600
    band = quote_band(470.0, 1.0)
    assert len(band) <= 100 and ("P", 468.0) in band
    assert sim.requests[ROUTE] == 2
    stats = prices.stats()
    assert stats["requests"] == 2 and stats["missing"] == stats["asked"] - 1
    assert stats["missing_by_reason"] == {"absent": stats["missing"]}
    lines = [r.getMessage() for r in caplog.records if "option quotes" in r.getMessage()]
    assert len(lines) == 2 and f"{len(band) - 1} of {len(band)} missing" in lines[0]
    # a new bar asks again; before the feed is live nothing is asked: the model
    prices.active = lambda: False
    assert type(prices.chain(ChainModel(), 470.0, 14.0, now + dt.timedelta(minutes=1),
                             CLOSE)) is SyntheticChain
    assert sim.requests[ROUTE] == 2


# -- parity: a replayed day on recorded option bars trades as its backtest -------------------
COMPARE = ["trade_id", "instrument", "side", "entry_time", "entry_price", "exit_time",
           "exit_price", "qty", "pnl", "exit_reason"]
# (strategy run file, instrument, day): the condor's day of limit closes; the wave
# strategy's options day (a put butterfly and a shares fallback on the model)
PARITY = {"condor": ("runs/iron_condor.toml", "2024-06-25"),
          "wave": (None, "2025-01-02")}


def model_store(cfg, root: Path, day: dt.date, *, factor: float = 0.85, bump: float = 0.03,
                width: int = 15, seed: int = 5) -> pd.DataFrame:
    """``day``'s recorded bars of 0DTE calls and puts within ``width`` strikes of the open:
    the model's mid at each bar's close x ``factor`` as the close and ``bump`` more as the
    open (a cent at least; under a third of a cent nothing trades); a fifth of the bars
    missing at random, and every third strike silent 11:00-11:29 (longer than
    stale_minutes)."""
    from feeds.loader import load_market_data

    market = load_market_data(cfg.data)
    bars = market.bars[market.bars.index.tz_convert(NY).date == day]
    model, close = chain_model(cfg), sessions(day, day)[day].close
    vix, spot0 = float(bars["vix"].iloc[0]), round(float(bars["open"].iloc[0]))
    strikes = np.arange(spot0 - width, spot0 + width + 1, dtype=float)
    rng = np.random.default_rng(seed)
    out = []
    for ts, bar in bars.iterrows():
        end = ts.tz_convert(NY).tz_localize(None).to_pydatetime() + dt.timedelta(minutes=1)
        t = years_to_close(end, close)
        for right in "CP":
            mids = np.asarray(mid(model, atm_iv(model, vix), float(bar.close), t, right,
                                  strikes)) * factor
            quiet = dt.time(11, 0) <= ts.tz_convert(NY).time() < dt.time(11, 30)
            for k, m in zip(strikes, mids.tolist(), strict=True):
                c, o = max(round(m, 2), 0.01), max(round(m * (1 + bump), 2), 0.01)
                if m < 0.003 or rng.random() < 0.2 or (quiet and k % 3 == 0):
                    continue
                out.append(dict(timestamp=ts, contract=occ_symbol("SPY", day, right, k),
                                expiry=day.isoformat(), right=right, strike=k, open=o,
                                high=max(o, c), low=min(o, c), close=c, volume=10.0, vwap=c,
                                trades=3.0))
    return read_option_bars(write_option_bars(pd.DataFrame(out),
                                              option_bars_path(root, "SPY", day)))


def _cfg(shared: Path, run: str | None, day: str, *overrides: str):
    cfg = load_run(str(ROOT / run) if run else None, [
        f'data.bars="{shared / "spy_1m_2024-03-26_2025-04-02.parquet"}"',
        f'data.vix="{shared / "vix_1d_1990_2026.parquet"}"', 'strategy.instrument="options"',
        "report.tearsheet=false", *overrides])
    return replay_config(cfg, cfg.data.bars, pd.Timestamp(day).date())


@pytest.mark.parametrize("case", sorted(PARITY))
def test_a_replayed_day_on_recorded_option_bars_trades_exactly_like_the_backtest(
        shared_data, tmp_path, case):
    run, day = PARITY[case]
    root = tmp_path / "options"
    cfg = _cfg(shared_data, run, day, f'data.options="{root}"', 'options.prices="recorded"')
    store = model_store(cfg, root, pd.Timestamp(day).date())
    run_backtest(cfg, out_dir=tmp_path / "bt", tearsheet=False)
    expected = pd.read_csv(tmp_path / "bt" / "trades.csv")
    legs = pd.read_csv(tmp_path / "bt" / "legs.csv")
    prices = json.loads((tmp_path / "bt" / "summary.json").read_text())["option_prices"]
    assert len(expected) >= 1 and (expected["instrument"] != "equity").any()
    assert prices["fills"]["recorded"] >= 4 and prices["marks"]["model"] > 0
    # the fills are the store's: the open of the fill minute, else the last close (counted)
    stamps = store["timestamp"].dt.tz_convert(NY).dt.tz_localize(None)
    opens = {(r, k, t): o for r, k, t, o in zip(store["right"], store["strike"], stamps,
                                                store["open"], strict=True)}
    at_open = [(leg.fill == (up if leg.qty > 0 else down)(opens[key], 0.01))
               for leg in legs.itertuples()
               if (key := (leg.right, leg.strike, pd.Timestamp(leg.time).tz_convert(NY)
                           .tz_localize(None))) in opens]
    assert len(at_open) >= 4 and all(at_open)

    sim = simulator(cfg)
    assert sim.option_quotes.source == "recorded"
    result = replay(cfg, sim=sim, log_dir=tmp_path / "paper", state_path=tmp_path / "s.sqlite")
    got = pd.read_csv(result.folder / f"trades_{result.session}.csv")
    pd.testing.assert_frame_equal(got[COMPARE], expected[COMPARE], check_exact=True)
    assert result.summary["open_trades"] == 0 and sim.positions() == {}
    # the trader decided on the simulator's quotes: one request a bar that priced anything,
    # the model where a quote was missing, counted and logged
    paper = result.summary["option_prices"]
    assert paper["mode"] == "quotes" and paper["quotes"]["feed"] == "indicative"
    assert 0 < sim.requests[ROUTE] == paper["quotes"]["requests"] <= 390
    assert paper["marks"]["recorded"] > 0 and paper["marks"]["model"] > 0
    assert paper["marks"] == prices["marks"]
    assert paper["skipped_no_recorded_price"] == prices["skipped_no_recorded_price"]
    log = (result.folder / f"paper_trading_{result.session}.log").read_text()
    assert "option quotes (indicative):" in log and " missing (absent " in log


def test_a_replay_on_a_day_the_store_lacks_is_refused_with_recorded_and_modelled_with_auto(
        shared_data, tmp_path, caplog):
    from mtbt.errors import ConfigError

    root = tmp_path / "options"
    (root / "SPY").mkdir(parents=True)
    day = "2025-01-02"
    cfg = _cfg(shared_data, None, day, f'data.options="{root}"', 'options.prices="recorded"')
    with pytest.raises(ConfigError) as refused:
        simulator(cfg)
    text = str(refused.value)
    assert "\n" not in text and f"no SPY session {day}" in text and '"auto"' in text
    auto = _cfg(shared_data, None, day, f'data.options="{root}"', 'options.prices="auto"')
    with caplog.at_level(logging.INFO, logger="mtbt"):
        sim = simulator(auto)
    assert sim.option_quotes.source == "model" and sim.exchange.options.prices is None
    assert f"lacks {day}: the replay prices options by the model" in caplog.text
