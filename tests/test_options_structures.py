"""Structures: payoffs, risk figures on hand-computed examples, fills, fees and builders."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from mtbt.options import structures as st
from mtbt.options.chain import ChainModel, SyntheticChain
from mtbt.options.structures import Leg, Structure

E = dt.date(2024, 6, 3)


@pytest.fixture
def chain() -> SyntheticChain:
    return SyntheticChain(ChainModel(), 600.0, 15.0, dt.datetime(2024, 6, 3, 10),
                          dt.datetime(2024, 6, 3, 16))


# (structure, premium, max_loss, max_gain, breakevens), all worked out by hand
CASES = [
    (st.long_call(E, 100), 2.0, 2.0, math.inf, (102.0,)),
    (st.long_put(E, 100), 2.0, 2.0, 98.0, (98.0,)),
    (st.call_debit_spread(E, 100, 105), 2.0, 2.0, 3.0, (102.0,)),
    (st.put_debit_spread(E, 100, 95), 1.5, 1.5, 3.5, (98.5,)),
    (st.call_butterfly(E, 100, 5), 1.0, 1.0, 4.0, (96.0, 104.0)),
    (st.put_butterfly(E, 100, 5), 1.0, 1.0, 4.0, (96.0, 104.0)),
    # +1 95C -2 100C +1 110C for 0.20 credit: 5.2 at 100, -4.8 above 110, b/e 105.2
    (st.call_bwb(E, 100, 5, 10), -0.2, 4.8, 5.2, (105.2,)),
    # +1 105P -2 100P +1 90P for 0.50 debit: 4.5 at 100, -5.5 below 90, b/e 95.5 and 104.5
    (st.put_bwb(E, 100, 5, 10), 0.5, 5.5, 4.5, (95.5, 104.5)),
    # 90/95/105/110 for 1.50 credit: max loss 5 - 1.5, b/e 93.5 and 106.5
    (st.iron_condor(E, 95, 105, 5), -1.5, 3.5, 1.5, (93.5, 106.5)),
]


@pytest.mark.parametrize("s,premium,loss,gain,bes", CASES, ids=[c[0].name for c in CASES])
def test_risk_figures_by_hand(s, premium, loss, gain, bes):
    assert s.max_loss(premium) == pytest.approx(loss)
    assert s.max_gain(premium) == pytest.approx(gain)
    assert s.breakevens(premium) == pytest.approx(bes)
    pnl = np.asarray(s.payoff(np.array(bes))) - premium
    assert pnl == pytest.approx(np.zeros(len(bes)), abs=1e-9)


def test_unbounded_loss_of_a_short_call():
    naked = Structure("short_call", (Leg("C", 100, -1, E),))
    assert naked.max_loss(-2.0) == math.inf
    assert naked.max_gain(-2.0) == pytest.approx(2.0)
    assert naked.breakevens(-2.0) == (102.0,)


def test_payoff_shapes():
    s = np.array([80.0, 95.0, 100.0, 102.5, 105.0, 120.0])
    assert st.long_call(E, 100).payoff(s) == pytest.approx([0, 0, 0, 2.5, 5, 20])
    assert st.long_put(E, 100).payoff(s) == pytest.approx([20, 5, 0, 0, 0, 0])
    assert st.call_debit_spread(E, 100, 105).payoff(s) == pytest.approx([0, 0, 0, 2.5, 5, 5])
    assert st.put_debit_spread(E, 105, 100).payoff(s) == pytest.approx([5, 5, 5, 2.5, 0, 0])
    assert st.call_butterfly(E, 100, 5).payoff(s) == pytest.approx([0, 0, 5, 2.5, 0, 0])
    assert st.put_butterfly(E, 100, 5).payoff(s) == pytest.approx([0, 0, 5, 2.5, 0, 0])
    assert st.call_bwb(E, 100, 5, 10).payoff(s) == pytest.approx([0, 0, 5, 2.5, 0, -5])
    assert st.put_bwb(E, 100, 5, 10).payoff(s) == pytest.approx([-5, 0, 5, 2.5, 0, 0])
    assert st.iron_condor(E, 95, 105, 5).payoff(s) == pytest.approx([-5, 0, 0, 0, 0, -5])
    assert st.long_call(E, 100).payoff(110.0) == 10.0


def test_builders_name_and_legs():
    builders = {
        "long_call": st.long_call(E, 600), "long_put": st.long_put(E, 600),
        "call_debit_spread": st.call_debit_spread(E, 600, 606),
        "put_debit_spread": st.put_debit_spread(E, 600, 594),
        "call_butterfly": st.call_butterfly(E, 606, 6),
        "put_butterfly": st.put_butterfly(E, 594, 6),
        "call_bwb": st.call_bwb(E, 606, 6, 12), "put_bwb": st.put_bwb(E, 594, 6, 12),
        "iron_condor": st.iron_condor(E, 590, 610, 5),
    }
    for name, s in builders.items():
        assert s.name == name and getattr(st, name).__name__ == name
        assert s.expiry == E
    assert [leg.qty for leg in builders["call_butterfly"].legs] == [1, -2, 1]
    assert builders["call_butterfly"].contracts == 4
    assert builders["put_bwb"].label == "put_bwb 582/594/600"
    with pytest.raises(ValueError):
        st.call_debit_spread(E, 606, 600)
    with pytest.raises(ValueError):
        st.call_bwb(E, 606, 6, 6)
    with pytest.raises(ValueError):
        Leg("X", 600, 1, E)
    with pytest.raises(ValueError):
        Leg("C", 600, 0, E)
    with pytest.raises(ValueError):
        Structure("mixed", (Leg("C", 600, 1, E), Leg("C", 601, -1, E + dt.timedelta(1))))


def test_fill_is_the_sum_of_leg_fills(chain):
    for s in (st.call_butterfly(E, 606, 6), st.put_bwb(E, 594, 6, 12),
              st.iron_condor(E, 590, 610, 5), st.call_debit_spread(E, 600, 606)):
        legs = sum(leg.qty * (chain.ask(leg.right, leg.strike) if leg.qty > 0
                              else chain.bid(leg.right, leg.strike)) for leg in s.legs)
        assert s.fill(chain) == pytest.approx(legs)
        assert s.fill(chain) == pytest.approx(sum(leg.fill(chain) for leg in s.legs))
        assert s.fill(chain) > s.value(chain)        # honest fills cost more than mid
        assert s.fees(chain) == pytest.approx(0.65 * s.contracts)
    mid = sum(leg.qty * chain.mid(leg.right, leg.strike)
              for leg in st.call_butterfly(E, 606, 6).legs)
    assert st.call_butterfly(E, 606, 6).value(chain) == pytest.approx(mid)
    with pytest.raises(ValueError, match="expires"):
        st.long_call(E + dt.timedelta(1), 600).fill(chain)


def test_condor_credit_and_max_loss(chain):
    condor = st.iron_condor(E, 594, 606, 5)
    credit = condor.fill(chain)
    assert credit < 0                                # a credit is received
    assert condor.max_loss(credit) == pytest.approx(5 + credit)   # width - credit
    assert condor.max_gain(credit) == pytest.approx(-credit)
    assert condor.breakevens(credit) == pytest.approx((594 + credit, 606 - credit))


def test_structure_orders_and_share_orders_share_one_numbering():
    """A strategy keys its orders by ``ref``: a structure order and a share order open at
    the same time (a signal traded as shares in options mode) must never share one."""
    import backtrader as bt

    from mtbt.options.book import StructureOrder

    refs = []
    for _ in range(3):
        call = st.long_call(dt.date(2024, 6, 3), 600.0)
        refs.append(StructureOrder(None, None, "open", call, 1).ref)
        refs.append(next(bt.OrderBase.refbasis))
    assert len(set(refs)) == len(refs)
