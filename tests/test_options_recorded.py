"""Backtests on recorded option prices (``[options] prices``) and the liquidity rules.

The recorded stores are made here: the synthetic chain's mids at each minute's close, scaled
by ``factor``, written through the store's own writer with each bar's open ``bump`` above its
close (so a fill at an open and a mark at a close are told apart). Fills are checked by hand
against the recorded open of the fill minute -/+ the assumed half spread.
"""
from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from feeds.arrays import BarFeed
from feeds.loader import load_market_data
from feeds.options_store import option_bars_path, read_option_bars, write_option_bars
from mtbt.config import load_run
from mtbt.errors import ConfigError, DataError
from mtbt.options.allocator import Liquidity, allocate, leg_problem
from mtbt.options.chain import ChainModel, SyntheticChain, atm_iv, mid_one, years_to_close
from mtbt.options.occ import occ_symbol
from mtbt.options.paths import PathModel
from mtbt.options.recorded import RecordedChain, RecordedPrices, SessionBars
from mtbt.options.structures import Leg, long_call
from mtbt.runner import backtest_venue, build_cerebro, run_backtest, strategy_kwargs
from mtbt.sessions import NY, sessions
from mtbt.strategies import IronCondor0DTE, ManagedStrategy, Signal
from mtbt.strategies._structures import Choice
from tests.bars import session_frame

D1, D2 = dt.date(2024, 1, 3), dt.date(2024, 1, 4)
SAMPLE_DAY = dt.date(2023, 11, 2)
HALF = 0.01          # options.recorded_half_spread_pct's default
SAMPLE = ["report.tearsheet=false", "data.sample_sessions=20", "data.warmup_sessions=20"]


def model_store(bars: pd.DataFrame, day: dt.date, root, *, strikes, factor: float = 1.0,
                bump: float = 0.02, drop: frozenset = frozenset(), volume: float = 10.0):
    """Write ``day``'s recorded bars for 0DTE calls and puts at ``strikes``: the model mid at
    each bar's close x ``factor`` as the close, ``bump`` more as the open; contracts in
    ``drop`` ((right, strike)) never trade; sub-cent prices do not trade either."""
    model, session = ChainModel(), sessions(day, day)[day]
    rows = bars[bars.index.tz_convert(NY).tz_localize(None).normalize() == pd.Timestamp(day)]
    vix = float(rows["vix"].iloc[0])
    out = []
    for right in "CP":
        for k in map(float, strikes):
            if (right, k) in drop:
                continue
            for ts, bar in rows.iterrows():
                end = ts.tz_convert(NY).tz_localize(None).to_pydatetime() + dt.timedelta(minutes=1)
                mid = mid_one(model, atm_iv(model, vix), float(bar.close),
                              years_to_close(end, session.close), right, k) * factor
                close, open_ = round(mid, 2), round(mid * (1 + bump), 2)
                if min(close, open_) < 0.01:
                    continue
                out.append(dict(timestamp=ts, contract=occ_symbol("SPY", day, right, k),
                                expiry=day.isoformat(), right=right, strike=k, open=open_,
                                high=max(open_, close), low=min(open_, close), close=close,
                                volume=volume, vwap=close, trades=3.0))
    return write_option_bars(pd.DataFrame(out), option_bars_path(root, "SPY", day))


def ask(p: float) -> float:
    """The assumed ask of a trade at ``p``: p + max(1% of p, 1 cent), up to the cent."""
    return math.ceil(round((p + max(HALF * p, 0.01)) * 100, 6)) / 100


def bid(p: float) -> float:
    return max(math.floor(round((p - max(HALF * p, 0.01)) * 100, 6)) / 100, 0.0)


def bar_of(frame: pd.DataFrame, right: str, strike: float, when: str) -> pd.Series:
    ts = pd.Timestamp(when).tz_convert(NY)
    row = frame[(frame["right"] == right) & (frame["strike"] == strike)
                & (frame["timestamp"] == ts)]
    assert len(row) == 1, (right, strike, when)
    return row.iloc[0]


# -- a full run of the wave strategy on the synthetic sample ---------------------------------
@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("options")
    market = load_market_data(load_run(None, SAMPLE).data)
    spot = round(float(market.bars.loc[str(SAMPLE_DAY)]["open"].iloc[0]))
    model_store(market.bars, SAMPLE_DAY, root, strikes=range(spot - 15, spot + 16))
    return root


def test_a_wave_run_on_recorded_prices_fills_at_recorded_opens_and_counts_them(
        sample_store, tmp_path):
    cfg = load_run(None, [*SAMPLE, f"data.options={sample_store}", 'options.prices="recorded"',
                          "data.start=2023-11-02", "data.end=2023-11-02"])
    result = run_backtest(cfg, out_dir=tmp_path)
    legs = pd.read_csv(tmp_path / "legs.csv")
    store = read_option_bars(option_bars_path(sample_store, "SPY", SAMPLE_DAY))
    assert len(legs) >= 3 and (legs["action"] == "open").any()
    for leg in legs.itertuples():                 # every fill: recorded open -/+ half spread
        assert leg.action in ("open", "close")
        p = bar_of(store, leg.right, leg.strike, leg.time)["open"]
        assert leg.fill == pytest.approx(ask(p) if leg.qty > 0 else bid(p), abs=1e-9)
    summary = json.loads((tmp_path / "summary.json").read_text())
    prices = summary["option_prices"]
    assert prices["mode"] == "recorded"
    assert prices["fills"] == {"recorded": len(legs), "model": 0}
    assert prices["recorded_fill_share"] == 1.0
    assert prices["sessions"] == {"recorded": 1, "model": 0}
    assert prices["marks"]["recorded"] > 0 and prices["marks"]["model"] == 0
    # candidates whose wings lie beyond the recorded strikes were dropped, named in run.log
    assert prices["skipped_no_recorded_price"]["candidates"] > 0
    assert "no recorded price for" in (tmp_path / "run.log").read_text()
    assert summary == result.summary


def test_recorded_on_an_uncovered_session_is_refused_at_start_in_one_line(sample_store):
    cfg = load_run(None, [*SAMPLE, f"data.options={sample_store}", 'options.prices="recorded"',
                          "data.start=2023-11-01", "data.end=2023-11-02"])
    with pytest.raises(ConfigError) as err:
        run_backtest(cfg, out_dir=None)
    text = str(err.value)
    assert "\n" not in text and "2023-11-01" in text and 'options.prices = "recorded"' in text


def test_price_modes_need_a_store_of_the_run_symbol(sample_store, tmp_path):
    with pytest.raises(ConfigError, match="needs data.options"):
        load_run(None, ['options.prices="auto"'])
    venue = dict(first=D1, last=D1)
    frame = BarFeed(dataname=session_frame(D1, 450.0))
    cfg = load_run(None, [f"data.options={tmp_path / 'nowhere'}", 'options.prices="auto"'])
    with pytest.raises(DataError, match="no such options store"):
        backtest_venue(cfg, frame, **venue)
    cfg = load_run(None, [f"data.options={sample_store}", 'options.prices="auto"',
                          'strategy.symbol="QQQ"'])
    with pytest.raises(ConfigError, match=r"holds no QQQ sessions.*it has SPY"):
        backtest_venue(cfg, frame, **venue)


# -- scripted entries on hand-made bars --------------------------------------------------
class OneCall(ManagedStrategy):
    """Buys one 450 call on the 09:40 bar of each session; the force close sells it."""

    def entry_signal(self):
        return Signal(1, "scripted", "TEST") if self.data.datetime.time(0) == dt.time(9, 40) \
            else None

    def choose_structure(self, signal, chain, budget):
        return Choice(long_call(chain.expiry, 450.0), 1, 100.0, "scripted")

    def manage_lot(self, lot, close):
        pass


class Condor(IronCondor0DTE):
    def entry_signal(self):
        return None if self._lots else Signal(-1, "scripted condor", "TEST")


def two_days() -> pd.DataFrame:
    return pd.concat([session_frame(D1, 450.0, levels={"12:00": 451.0}),
                      session_frame(D2, 450.0, levels={"12:00": 449.0})])


def run(frame, strategy, overrides, params=None):
    cfg = load_run(None, ['strategy.instrument="options"', *overrides])
    days = sorted({ts.date() for ts in frame.index})
    venue = backtest_venue(cfg, BarFeed(dataname=frame), first=days[0], last=days[-1])
    cerebro = build_cerebro(cfg, venue, strategy=strategy, strategy_params=params or {})
    (strat,) = cerebro.run()
    return strat


def test_auto_prices_an_uncovered_session_by_the_model_and_says_so(tmp_path):
    frame = two_days()
    model_store(frame, D2, tmp_path, strikes=range(440, 461), factor=0.8)
    strat = run(frame, OneCall, [f"data.options={tmp_path}", 'options.prices="auto"'])
    legs = strat.analyzers.journal.get_legs()
    assert list(legs["action"]) == ["open", "close", "open", "close"]
    store = read_option_bars(option_bars_path(tmp_path, "SPY", D2))
    # D1 is not in the store: the model's ask at the 09:41 open
    model = SyntheticChain(ChainModel(), 450.0, 18.0, dt.datetime(2024, 1, 3, 9, 41),
                           dt.datetime(2024, 1, 3, 16, 0))
    assert legs.loc[0, "fill"] == pytest.approx(model.ask("C", 450.0))
    # D2 is: the recorded open of 09:41 plus the half spread, and the close at 15:25's bid
    d2_open = bar_of(store, "C", 450.0, "2024-01-04 09:41-05:00")["open"]
    assert legs.loc[2, "fill"] == pytest.approx(ask(d2_open))
    assert legs.loc[2, "fill"] != pytest.approx(model.ask("C", 450.0))
    d2_exit = bar_of(store, "C", 450.0, "2024-01-04 15:25-05:00")["open"]
    assert legs.loc[3, "fill"] == pytest.approx(bid(d2_exit))
    counts = strat.broker.price_counts.as_dict()
    assert counts["fills"] == {"recorded": 2, "model": 2}
    assert counts["sessions"] == {"recorded": 1, "model": 1}
    assert counts["marks"]["recorded"] > 300 and counts["marks"]["model"] > 300
    assert counts["recorded_fill_share"] == 0.5


def test_marks_are_the_last_recorded_close_and_a_stale_contract_is_marked_by_the_model(
        tmp_path):
    frame = session_frame(D2, 450.0, levels={"12:00": 449.0})
    path = model_store(frame, D2, tmp_path, strikes=[450])
    store = read_option_bars(path)
    # the call stops trading from 13:00 to 14:00: marks hold its last close for 5 minutes
    quiet = store["timestamp"].dt.strftime("%H:%M").between("13:00", "13:59")
    write_option_bars(store[~quiet].assign(expiry=store["expiry"].astype(str)), path)
    strat = run(frame, OneCall, [f"data.options={tmp_path}", 'options.prices="recorded"',
                                 'trading_hours.options_force_close_time="15:00"'])
    equity = strat.analyzers.equity.get_frame()["equity"]
    moves = equity.diff()
    closes = store.set_index(store["timestamp"].dt.tz_convert(NY))
    closes = closes[closes["right"] == "C"]["close"]
    # while held, equity moves by 100 x the change of the recorded close of each bar
    for hhmm in ("10:15", "11:59", "12:00", "12:30"):
        when = pd.Timestamp(f"2024-01-04 {hhmm}", tz=NY)
        expected = 100 * (closes[when] - closes[when - pd.Timedelta(minutes=1)])
        assert moves[when] == pytest.approx(expected, abs=1e-6)
    for hhmm in ("13:00", "13:03"):      # bars of 13:00 .. 13:03: the 12:59 close is fresh
        assert moves[pd.Timestamp(f"2024-01-04 {hhmm}", tz=NY)] == pytest.approx(0.0)
    assert moves[pd.Timestamp("2024-01-04 13:04", tz=NY)] != pytest.approx(0.0)   # the model
    counts = strat.broker.price_counts.as_dict()
    assert counts["marks"]["model"] == 60 - 4            # 13:04 .. 13:59 closes: the model
    assert counts["fills"] == {"recorded": 2, "model": 0}


def test_a_condor_leg_without_a_recorded_price_skips_the_condor(tmp_path, caplog):
    frame = session_frame(D2, 450.0)
    cfg = load_run(None, ['strategy.name="iron_condor"'])
    own = strategy_kwargs(cfg) | {"entry_times": (dt.time(9, 45),)}
    model_store(frame, D2, tmp_path, strikes=range(435, 466))
    with caplog.at_level("INFO", logger="mtbt"):
        full = run(frame, Condor, [f"data.options={tmp_path}", 'options.prices="recorded"'],
                   own)
    trades = full.analyzers.journal.get_frame()
    assert len(trades) == 1 and full.broker.price_counts.unpriced["entries"] == 0
    legs = full.analyzers.journal.get_legs()
    wing = float(legs[legs["right"] == "P"]["strike"].min())
    model_store(frame, D2, tmp_path, strikes=range(435, 466), drop=frozenset({("P", wing)}))
    caplog.clear()
    with caplog.at_level("INFO", logger="mtbt"):
        skipped = run(frame, Condor, [f"data.options={tmp_path}", 'options.prices="recorded"'],
                      own)
    assert skipped.analyzers.journal.get_frame().empty
    assert "SKIP iron condor" in caplog.text
    assert f"no recorded price for P{wing:g} within 5 min" in caplog.text
    counts = skipped.broker.price_counts.as_dict()["skipped_no_recorded_price"]
    assert counts == {"candidates": 1, "entries": 1}


# -- the chain and the allocator, directly ---------------------------------------------------
def hand_bars(rows) -> pd.DataFrame:
    """Store-contract rows (right, strike, "HH:MM", open, close, volume) on D2."""
    return pd.DataFrame([dict(timestamp=pd.Timestamp(f"2024-01-04 {t}", tz=NY), expiry=D2,
                              right=r, strike=float(k), open=o, close=c, volume=v)
                         for r, k, t, o, c, v in rows])


def chain_at(bars: pd.DataFrame, hhmm: str, *, at_open: bool = False, spot: float = 450.0,
             stale: int = 5) -> RecordedChain:
    prices = RecordedPrices("recorded", [D2], lambda day: bars, stale_minutes=stale)
    now = dt.datetime.combine(D2, dt.time.fromisoformat(hhmm))
    chain = prices.chain(ChainModel(), spot, 18.0, now, dt.datetime(2024, 1, 4, 16, 0),
                         at_open=at_open)
    assert isinstance(chain, RecordedChain)
    return chain


def test_a_fill_takes_the_minutes_open_a_mark_the_last_close_within_stale_minutes():
    bars = hand_bars([("C", 450, "10:00", 2.00, 2.10, 5), ("C", 450, "10:03", 2.20, 2.30, 7)])
    assert chain_at(bars, "10:03", at_open=True).price("C", 450) == 2.20   # that minute's open
    assert chain_at(bars, "10:02", at_open=True).price("C", 450) == 2.10   # no bar: last close
    assert chain_at(bars, "10:03").price("C", 450) == 2.10                 # close time 10:03
    assert chain_at(bars, "10:04").price("C", 450) == 2.30
    assert chain_at(bars, "10:08").price("C", 450) == 2.30     # the bars of 10:03 .. 10:07
    assert chain_at(bars, "10:09").price("C", 450) is None     # of 10:04 .. 10:08: stale
    assert chain_at(bars, "10:00").price("C", 450) is None                 # nothing before
    late = chain_at(bars, "10:09")
    model = SyntheticChain(ChainModel(), 450.0, 18.0, late.now, late.expiry_close)
    assert late.mid("C", 450) == pytest.approx(model.mid("C", 450))         # the model's
    assert late.ask("C", 450) == pytest.approx(model.ask("C", 450))
    c = chain_at(bars, "10:04")
    assert (c.bid("C", 450), c.ask("C", 450)) == (pytest.approx(2.27), pytest.approx(2.33))
    assert c.fill("C", 450, 1) == pytest.approx(2.33) and c.mid("C", 450) == 2.30
    assert c.volume("C", 450) == 12 and chain_at(bars, "10:03", at_open=True).volume(
        "C", 450) == 5                                                     # before the minute
    assert list(c.mid(np.array(["C", "P"]), np.array([450.0, 450.0]))) == [
        2.30, pytest.approx(float(SyntheticChain(ChainModel(), 450.0, 18.0, c.now,
                                                  c.expiry_close).mid("P", 450)))]
    assert len(SessionBars(bars)._by) == 1


def test_the_liquidity_rules_drop_the_legs_that_fail_them_and_keep_the_rest():
    bars = hand_bars([("C", 450, "10:00", 2.00, 2.00, 500), ("C", 451, "10:00", 0.04, 0.04, 900),
                      ("C", 452, "10:00", 0.90, 0.90, 3)])
    c = chain_at(bars, "10:01")
    legs = {k: Leg("C", float(k), 1, D2) for k in (450, 451, 452)}
    rules = Liquidity(max_spread_pct=0.25, min_bid=0.02, min_volume=10)
    assert leg_problem(c, legs[450], rules) is None
    code, text = leg_problem(c, legs[451], rules)        # 0.03/0.05: a 50% spread
    assert code == "max_spread_pct" and "C451" in text
    assert leg_problem(c, legs[451], Liquidity(min_bid=0.05))[0] == "min_bid"   # bid 0.03
    assert leg_problem(c, legs[452], rules)[0] == "min_volume"              # 3 traded < 10
    assert leg_problem(c, Leg("C", 453.0, 1, D2), rules)[0] == "no_recorded_price"
    assert leg_problem(c, legs[451], Liquidity()) is None                   # all off
    # the model: spread and bid rules apply, volume is unknown so min_volume does not
    model = SyntheticChain(ChainModel(), 450.0, 18.0, c.now, c.expiry_close)
    assert leg_problem(model, legs[452], Liquidity(min_volume=10**6)) is None
    far = Leg("C", 470.0, 1, D2)
    assert leg_problem(model, far, Liquidity(min_bid=0.05))[0] == "min_bid"


def test_the_allocator_drops_candidates_by_rule_and_falls_back_without_recorded_prices():
    model = ChainModel()
    t = years_to_close(dt.datetime(2024, 1, 4, 10, 1), dt.datetime(2024, 1, 4, 16, 0))
    rows = []
    for k in range(430, 481):
        p = round(mid_one(model, atm_iv(model, 18.0), 450.0, t, "C", float(k)), 2)
        if p >= 0.01:
            rows.append(("C", k, "10:00", p, p, 5 if k == 452 else 100))
    chain = chain_at(hand_bars(rows), "10:01")
    path = PathModel(0.0004, paths=200, seed=1)
    free = allocate(1, chain, 2000.0, bars=300, model=path)
    liquidity = {"min_volume", "min_bid", "max_spread_pct"}
    assert free.best is not None and not any(c.code in liquidity for c in free.candidates)
    ruled = allocate(1, chain, 2000.0, bars=300, model=path,
                     liquidity=Liquidity(min_volume=10, min_bid=0.05))
    for c in ruled.candidates:
        strikes = [leg.strike for leg in c.structure.legs]
        if not all(chain.has_price("C", k) for k in strikes):
            assert c.code in liquidity | {"no_recorded_price"}
            continue
        thin = 452.0 in strikes
        cheap = any(chain.bid("C", k) < 0.05 for k in strikes)
        assert (c.code in liquidity) == (thin or cheap), c.describe()
        if c.code == "min_volume":
            assert thin and "C452 traded 5 today < 10" in c.reason
    assert any(c.code == "min_volume" for c in ruled.candidates)
    assert any(c.kept for c in ruled.candidates)
    # no recorded price for any leg: nothing fits, and the signal follows the fallback
    empty = chain_at(hand_bars([("P", 400, "10:00", 0.01, 0.01, 1)]), "10:01")
    none = allocate(1, empty, 2000.0, bars=300, model=path)
    assert none.best is None and none.fallback and none.no_recorded_price
    assert all(c.code == "no_recorded_price" for c in none.candidates)
