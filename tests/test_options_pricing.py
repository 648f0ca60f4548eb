"""Black-Scholes prices and greeks: textbook values, parity, expiry and finite differences."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from mtbt.options.pricing import bs_greeks, bs_price, intrinsic


def test_hull_example_prices():
    # Hull, Options, Futures and Other Derivatives, Example 15.6: c = 4.76, p = 0.81
    assert float(bs_price(42, 40, 0.5, 0.2, "C", 0.10)) == pytest.approx(4.76, abs=0.005)
    assert float(bs_price(42, 40, 0.5, 0.2, "P", 0.10)) == pytest.approx(0.81, abs=0.005)


def test_hull_greek_letters_example():
    # Hull, ch. "The Greek Letters": S=49, K=50, r=5%, sigma=20%, T=20 weeks; a call is worth
    # $2.40 with delta 0.522, gamma 0.066, theta -4.31/year = -0.0118 per calendar day and
    # vega 12.1 per unit of vol = 0.121 per vol point.
    args = (49, 50, 20 / 52, 0.2, "C", 0.05)
    assert float(bs_price(*args)) == pytest.approx(2.40, abs=0.005)
    g = bs_greeks(*args)
    assert float(g.delta) == pytest.approx(0.522, abs=0.0005)
    assert float(g.gamma) == pytest.approx(0.066, abs=0.0005)
    assert float(g.theta) == pytest.approx(-0.0118, abs=0.00005)
    assert float(g.theta) * 365 == pytest.approx(-4.31, abs=0.005)
    assert float(g.vega) == pytest.approx(0.121, abs=0.0005)


def test_vectorised_over_arrays_and_rights():
    spot = np.array([95.0, 100.0, 105.0])
    right = np.array(["C", "P", "C"])
    out = bs_price(spot, 100.0, 0.1, 0.2, right)
    assert out.shape == (3,)
    one_by_one = [float(bs_price(s, 100.0, 0.1, 0.2, r)) for s, r in zip(spot, right, strict=True)]
    assert out == pytest.approx(one_by_one)


@settings(max_examples=200, deadline=None)
@given(spot=hs.floats(1, 2000), k_ratio=hs.floats(0.5, 1.5), t=hs.floats(1e-4, 3),
       vol=hs.floats(0.01, 2), rate=hs.floats(-0.02, 0.1))
def test_put_call_parity(spot, k_ratio, t, vol, rate):
    strike = spot * k_ratio
    c = float(bs_price(spot, strike, t, vol, "C", rate))
    p = float(bs_price(spot, strike, t, vol, "P", rate))
    assert c - p == pytest.approx(spot - strike * np.exp(-rate * t), abs=1e-9 * spot + 1e-9)
    assert c >= 0 and p >= 0


def test_intrinsic_at_expiry_and_without_vol():
    spot = np.array([90.0, 100.0, 110.0])
    for right in ("C", "P"):
        expected = intrinsic(spot, 100.0, right)
        assert bs_price(spot, 100.0, 0.0, 0.2, right) == pytest.approx(expected)
        assert bs_price(spot, 100.0, -0.01, 0.2, right) == pytest.approx(expected)
        assert bs_price(spot, 100.0, 0.5, 0.0, right) == pytest.approx(expected)
    assert intrinsic(spot, 100.0, "C") == pytest.approx([0, 0, 10])
    assert intrinsic(spot, 100.0, "P") == pytest.approx([10, 0, 0])
    g = bs_greeks(spot, 100.0, 0.0, 0.2, "C")
    assert g.delta == pytest.approx([0, 0, 1]) and not g.gamma.any() and not g.vega.any()


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="right"):
        bs_price(100, 100, 0.1, 0.2, "X")
    with pytest.raises(ValueError, match="positive"):
        bs_price(0, 100, 0.1, 0.2, "C")


@pytest.mark.parametrize("right", ["C", "P"])
@pytest.mark.parametrize("spot,strike,t,vol,rate", [
    (100, 100, 0.25, 0.2, 0.03), (645, 650, 1 / 252, 0.15, 0.0), (50, 40, 1.0, 0.5, 0.05),
])
def test_greeks_match_finite_differences(right, spot, strike, t, vol, rate):
    def price(s=spot, tt=t, v=vol):
        return float(bs_price(s, strike, tt, v, right, rate))

    g = bs_greeks(spot, strike, t, vol, right, rate)
    h = spot * 1e-5
    assert float(g.delta) == pytest.approx((price(spot + h) - price(spot - h)) / (2 * h),
                                           rel=1e-5, abs=1e-7)
    gamma = (price(spot + h) - 2 * price() + price(spot - h)) / h**2
    assert float(g.gamma) == pytest.approx(gamma, rel=1e-3, abs=1e-6)
    dv = 1e-5
    assert float(g.vega) == pytest.approx((price(v=vol + dv) - price(v=vol - dv)) / (2 * dv)
                                          * 0.01, rel=1e-5)
    dt_ = min(t / 10, 1e-5)
    theta_year = -(price(tt=t + dt_) - price(tt=t - dt_)) / (2 * dt_)
    assert float(g.theta) == pytest.approx(theta_year / 365, rel=1e-4)
    per_trading_day = bs_greeks(spot, strike, t, vol, right, rate, days_per_year=252)
    assert float(per_trading_day.theta) == pytest.approx(theta_year / 252, rel=1e-4)
