"""The allocator: exit events on hand-made paths, EV by hand, worst case, no dominated pick."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from mtbt.exits import ExitRules
from mtbt.options import structures as st
from mtbt.options.allocator import allocate, candidates
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.ev import Quotes, pnl_per_unit, years_after
from mtbt.options.paths import PathModel, edge_drift, exit_events, realised_sigma, simulate

NOW, CLOSE = dt.datetime(2024, 6, 3, 10), dt.datetime(2024, 6, 3, 16)
SIGMA = 0.15 / math.sqrt(252 * 390)          # a 15% year in 1-minute steps
CALLS = {"long_call", "call_debit_spread", "call_butterfly", "call_bwb"}
PUTS = {"long_put", "put_debit_spread", "put_butterfly", "put_bwb"}


def chain(spot=600.0, vix=15.0, now=NOW, **model) -> SyntheticChain:
    return SyntheticChain(ChainModel(**model), spot, vix, now, CLOSE)


# -- the exits along hand-made paths -----------------------------------------------------------
PATHS = np.array([
    [100.0, 99.5, 99.2, 99.0, 99.0, 99.0, 100.0],       # through the hard stop 99.30 (2)
    [100.0, 100.5, 101.0, 100.4, 100.0, 100.0, 100.0],  # tp1 (2), breakeven at 100.00 (4)
    [100.0, 101.0, 101.5, 102.0, 102.0, 102.0, 102.0],  # tp1 (1), tp2 at 102.00 (3)
    [100.0, 101.0, 101.6, 101.2, 101.09, 101.0, 101.0],  # tp1, trail 101.6 x 0.995 = 101.09
    [100.0, 100.2, 100.1, 99.9, 100.3, 100.4, 100.6],   # neither: eod at the last bar (6)
    [100.0, 101.0, 101.2, 101.3, 101.4, 101.5, 101.6],  # tp1, the rest at eod
])


def test_exit_events_follow_the_scaling_exits_on_hand_made_paths():
    ev = exit_events(ExitRules(), 1, 100.0, PATHS)
    assert ev.reasons().tolist() == ["stop", "tp1", "tp1", "tp1", "eod", "tp1"]
    assert ev.step1.tolist() == [2, 2, 1, 1, 6, 1]
    assert ev.spot1.tolist() == [99.2, 101.0, 101.0, 101.0, 100.6, 101.0]
    assert ev.reasons(first=False).tolist() == ["none", "breakeven", "tp2", "trail", "none",
                                                "eod"]
    assert ev.step2[1:4].tolist() == [4, 3, 4] and ev.step2[5] == 6
    assert ev.p_tp1 == pytest.approx(4 / 6) and ev.p_stop == pytest.approx(1 / 6)


def test_short_paths_mirror_the_long_ones():
    mirrored = 200.0 - PATHS                        # every move the other way round 100
    long_, short = exit_events(ExitRules(), 1, 100.0, PATHS), \
        exit_events(ExitRules(), -1, 100.0, mirrored)
    assert short.reasons().tolist() == long_.reasons().tolist()
    assert short.reasons(first=False).tolist() == long_.reasons(first=False).tolist()
    assert short.step1.tolist() == long_.step1.tolist()


def test_without_scaling_the_target_is_tp2_for_all():
    ev = exit_events(ExitRules(use_scaling=False), 1, 100.0, PATHS)
    assert ev.reasons().tolist() == ["stop", "eod", "tp2", "eod", "eod", "eod"]
    assert not ev.scaled.any()


def test_a_structure_ev_on_hand_made_paths_equals_a_hand_computation():
    spot = 600.0
    paths = spot / 100.0 * PATHS                    # the same shapes at 600
    c = chain(spot)
    events = exit_events(ExitRules(), 1, spot, paths)
    fly = st.call_butterfly(c.expiry, 600.0, 6.0)
    premium = fly.fill(c)
    legs = [(leg.right, leg.strike) for leg in fly.legs]
    q1 = Quotes(c, events.spot1, years_after(c, events.step1 + 1), legs)
    s = events.scaled
    q2 = Quotes(c, events.spot2[s], years_after(c, events.step2[s] + 1), legs)
    contracts = 3                                   # tp1 closes 1 of 3, the rest later
    got = pnl_per_unit(fly, c, premium, events, q1, q2, 1 / contracts)

    def by_hand(underlying: float, step: int) -> float:
        when = NOW + dt.timedelta(minutes=int(step) + 1)
        there = SyntheticChain(ChainModel(), underlying, 15.0, when, CLOSE)
        sold = sum(leg.qty * there.fill(leg.right, leg.strike, -leg.qty) for leg in fly.legs)
        return sold - premium                       # per share, per unit

    fees = 2 * 0.65 * 4                             # 4 contracts a unit, opened and closed
    want = []
    for i in range(len(paths)):
        first = by_hand(events.spot1[i], events.step1[i])
        if events.scaled[i]:
            rest = by_hand(events.spot2[i], events.step2[i])
            per_share = first / 3 + rest * 2 / 3
        else:
            per_share = first
        want.append(100 * per_share - fees)
    assert got == pytest.approx(want, abs=1e-9)


def test_simulated_paths_are_seeded_and_antithetic():
    model = PathModel(SIGMA, 0.0, 1000, seed=3)
    a, closes = simulate(ExitRules(), 1, 600.0, 300, model)
    b, again = simulate(ExitRules(), 1, 600.0, 300, model)
    assert np.array_equal(closes, again) and np.array_equal(a.reason1, b.reason1)
    logs = np.log(closes / 600.0)
    assert logs[:500] == pytest.approx(-logs[500:], abs=1e-9)
    assert abs(np.std(np.diff(logs[:, :], axis=1)) - SIGMA) < 0.05 * SIGMA
    _, other = simulate(ExitRules(), 1, 600.0, 300, PathModel(SIGMA, 0.0, 1000, seed=4))
    assert not np.array_equal(closes, other)


def test_realised_sigma_leaves_overnight_moves_out():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.001, 400)
    closes = 100 * np.exp(np.cumsum(r))
    days = np.repeat([1, 2], 200)
    closes[200:] *= 1.05                            # a 5% overnight gap
    assert realised_sigma(closes, days) == pytest.approx(
        np.sqrt(np.mean(np.r_[r[1:200], r[201:]] ** 2)))
    assert math.isnan(realised_sigma(closes[:10], days[:10]))


def test_edge_drift_is_the_wald_estimate_shrunk():
    assert edge_drift([], [], 20) == 0.0
    assert edge_drift([0.01, -0.005], [100, 50], 0) == pytest.approx(0.005 / 150)
    assert edge_drift([0.01, -0.005], [100, 50], 2) == pytest.approx(0.005 / 150 / 2)


# -- candidates, sizing, the pick ------------------------------------------------------------------
def run(side=1, budget=500.0, drift=0.0, flat=False, **kw):
    model = PathModel(SIGMA, drift, 1000, seed=11)
    c = chain(skew=0.0, smile=0.0) if flat else chain()
    return allocate(side, c, budget, bars=325, model=model, **kw)


@pytest.mark.parametrize("side,names,right", [(1, CALLS, "C"), (-1, PUTS, "P")])
def test_each_side_builds_only_its_own_rights_at_four_placements(side, names, right):
    built = candidates(side, chain(), width=6.0)
    assert {s.name for s in built} == names
    assert all(leg.right == right for s in built for leg in s.legs)
    singles = sorted(s.legs[0].strike for s in built if len(s.legs) == 1)
    assert singles == ([600, 603, 606, 612] if side > 0 else [588, 594, 597, 600])


def test_sizing_fits_the_worst_case_into_the_budget_and_drops_zero_bid_sells():
    alloc = run(budget=500.0, min_edge=-10)
    c = chain()
    for cand in alloc.candidates:
        short_zero = any(leg.qty < 0 and c.bid(leg.right, leg.strike) <= 0
                         for leg in cand.structure.legs)
        if short_zero:
            assert not cand.kept and "zero bid" in cand.reason
        if cand.kept:
            assert cand.contracts == math.floor(500.0 / cand.worst_loss + 1e-9) >= 1
            assert cand.position_worst <= 500.0
            # the worst case is at least the premium and the fees both ways
            floor = (cand.premium + 2 * cand.fees / 100) * 100
            assert cand.worst_loss >= floor - 1e-9
    assert any("zero bid" in (cand.reason or "") for cand in alloc.candidates)


@pytest.mark.parametrize("side", [1, -1])
def test_without_an_edge_costs_make_no_pick_and_ask_for_the_fallback(side):
    # paths at the chain's own (flat) volatility, no drift: every structure loses its costs
    alloc = run(side, min_edge=0.0, flat=True)
    assert alloc.best is None and alloc.fallback
    assert "min_edge" in alloc.why
    kept = [c for c in alloc.candidates if c.kept]
    assert kept and max(c.score for c in kept) < 0


def test_an_edge_in_the_signal_direction_makes_long_options_pay():
    flat, edge = run(min_edge=-10), run(min_edge=-10, drift=3 * SIGMA / 20)
    assert edge.p_tp1 > flat.p_tp1 and edge.p_stop < flat.p_stop
    assert edge.best is not None and edge.best.ev > 0 and edge.best.score > flat.best.score


@settings(max_examples=25, deadline=None)
@given(spot=hs.floats(300, 700), vix=hs.floats(10, 40), budget=hs.floats(50, 2000),
       drift=hs.floats(-2e-5, 2e-5), side=hs.sampled_from([1, -1]))
def test_a_pick_is_never_dominated(spot, vix, budget, drift, side):
    c = SyntheticChain(ChainModel(), spot, vix, NOW, CLOSE)
    alloc = allocate(side, c, budget, bars=325, model=PathModel(SIGMA, drift, 400, seed=1),
                     min_edge=-100)
    kept = [x for x in alloc.candidates if x.kept]
    if not kept:
        assert alloc.best is None
        return
    best = alloc.best
    assert best is not None
    assert not any(x.ev > best.ev and x.position_worst <= best.position_worst for x in kept)
    for x in kept:
        assert x.position_worst <= budget + 1e-6
        assert not any(leg.qty < 0 and c.bid(leg.right, leg.strike) <= 0
                       for leg in x.structure.legs)


def test_held_contracts_the_other_way_are_dropped():
    c = chain()
    held = {("C", 606.0, c.expiry): 2}               # long the 606 call already
    alloc = run(min_edge=-10, held=held)
    for cand in alloc.candidates:
        if any(leg.strike == 606.0 and leg.qty < 0 for leg in cand.structure.legs):
            assert not cand.kept and "held the other way" in cand.reason


def test_the_older_reward_to_risk_score_is_still_there():
    alloc = run(min_edge=-10, score="reward_risk")
    assert alloc.best is not None
    kept = [c for c in alloc.candidates if c.kept]
    assert alloc.best.score == max(c.score for c in kept)


def test_describe_is_one_line_with_every_candidate():
    alloc = run(min_edge=-10)
    line = alloc.describe()
    assert "\n" not in line and "PICK" in line and "P(tp1)" in line
    assert all(c.structure.label in line for c in alloc.candidates)


def test_rejects_bad_arguments():
    for kwargs in ({"side": 0}, {"budget": -1.0}, {"score": "best"}):
        args = {"side": 1, "budget": 100.0} | kwargs
        with pytest.raises(ValueError):
            run(args.pop("side"), args.pop("budget"), **args)
