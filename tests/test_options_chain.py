"""The synthetic chain: trading-time clock, IV skew and floor, quotes, and a real-chain check."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mtbt.options.chain import ChainModel, SyntheticChain, years_to_close

D = dt.datetime
YEAR_MINUTES = 252 * 390


def chain(spot=600.0, vix=15.0, now=None, close=None, **model):
    now, close = now or D(2024, 6, 3, 10), close or D(2024, 6, 3, 16)
    return SyntheticChain(ChainModel(**model), spot, vix, now, close)


def test_years_to_close_on_a_normal_day():
    assert years_to_close(D(2024, 6, 3, 9, 30), D(2024, 6, 3, 16)) == pytest.approx(1 / 252)
    assert years_to_close(D(2024, 6, 3, 8, 0), D(2024, 6, 3, 16)) == pytest.approx(1 / 252)
    assert years_to_close(D(2024, 6, 3, 15, 0), D(2024, 6, 3, 16)) == \
        pytest.approx(60 / YEAR_MINUTES)
    assert years_to_close(D(2024, 6, 3, 16, 0), D(2024, 6, 3, 16)) == 0.0
    assert years_to_close(D(2024, 6, 3, 17, 0), D(2024, 6, 3, 16)) == 0.0


def test_years_to_close_on_an_early_close():
    # 2024-11-29 (day after Thanksgiving) closes at 13:00: a 210-minute session
    assert years_to_close(D(2024, 11, 29, 9, 30), D(2024, 11, 29, 13)) == \
        pytest.approx(210 / YEAR_MINUTES)
    assert years_to_close(D(2024, 11, 29, 12, 0), D(2024, 11, 29, 13)) == \
        pytest.approx(60 / YEAR_MINUTES)


def test_years_to_close_for_a_later_expiry():
    # Fri 2025-08-29 10:00 -> Tue 2025-09-02 16:00 (weekend + Labor Day count nothing)
    assert years_to_close(D(2025, 8, 29, 10), D(2025, 9, 2, 16)) == \
        pytest.approx((360 + 390) / YEAR_MINUTES)
    # Wed 2024-11-27 15:00 -> Mon 2024-12-02: 60 + early-close Friday 210 + 390
    assert years_to_close(D(2024, 11, 27, 15), D(2024, 12, 2, 16)) == \
        pytest.approx((60 + 210 + 390) / YEAR_MINUTES)
    # from a Saturday: only Monday's session
    assert years_to_close(D(2024, 6, 1, 12), D(2024, 6, 3, 16)) == pytest.approx(1 / 252)


def test_iv_skew_and_floor():
    c = chain()
    assert c.atm_iv == pytest.approx(0.15)
    assert c.iv(600.0) == pytest.approx(0.15)
    em = c.expected_move()
    assert em == pytest.approx(600 * 0.15 * np.sqrt(c.t))
    below, above = c.iv(600 - em), c.iv(600 + em)
    assert below > 0.15 > above                     # put skew
    assert c.iv(600 - 2 * em) > below               # rising further below spot
    assert c.iv(600 + 4 * em) > c.iv(600 + 2 * em)  # the far call wing turns up (smile)
    assert np.all(np.diff(c.iv(c.strikes(30))[:31]) <= 0)  # non-increasing up to spot
    low = chain(vix=5.0)
    assert low.atm_iv == pytest.approx(0.08)
    assert np.min(low.iv(low.strikes(40))) >= 0.08
    assert chain(skew=0.0, smile=0.0).iv(610.0) == pytest.approx(0.15)


def test_quotes_bracket_mid_by_at_least_a_tick():
    c = chain()
    ks = c.strikes(25)
    assert len(ks) == 51 and ks[25] == 600.0 and np.all(np.diff(ks) == 1.0)
    for right in ("C", "P"):
        bid, mid, ask = c.bid(right, ks), c.mid(right, ks), c.ask(right, ks)
        assert np.all(bid >= 0)
        assert np.all(bid <= mid) and np.all(mid <= ask)
        assert np.all(ask - bid >= 0.01 - 1e-12)
        assert np.allclose(np.round(bid * 100), bid * 100)
        assert np.allclose(np.round(ask * 100), ask * 100)
    mid = c.mid("C", 600.0)
    assert c.ask("C", 600.0) - mid >= 0.03 * mid          # half spread of 3% of mid
    assert c.fill("C", 600.0, 2) == c.ask("C", 600.0)
    assert c.fill("C", 600.0, -1) == c.bid("C", 600.0)
    with pytest.raises(ValueError):
        c.fill("C", 600.0, 0)


def test_chain_basics():
    c = chain(now=D(2024, 6, 3, 15, 59))
    assert c.t == pytest.approx(1 / YEAR_MINUTES)
    assert c.mid("C", 590.0) == pytest.approx(10.0, abs=1e-6)
    assert chain(now=D(2024, 6, 3, 16, 30)).mid("P", 610.0) == 10.0   # expired: intrinsic
    assert c.expiry == dt.date(2024, 6, 3)
    assert c.nearest_strike(600.4) == 600.0 and c.nearest_strike(600.6) == 601.0
    with pytest.raises(ValueError):
        ChainModel(strike_step=0)
    with pytest.raises(ValueError):
        chain(vix=0)


# -- real-chain comparison -------------------------------------------------------------------
OPTIONS = "spy_options_1m_2025-08-29_exp2025-09-02.parquet"
EXPIRY_CLOSE = D(2025, 9, 2, 16)
VIX_PRIOR = D(2025, 8, 28)
TIMES = [D(2025, 8, 29, h, m) for h, m in ((10, 0), (11, 0), (12, 0), (15, 0), (15, 30))]
NEAR = 15.0          # "near the money": |K - S| <= $15 (the file has no closer strikes)
WINDOW = pd.Timedelta(minutes=5)
MEDIAN_BOUND = 0.35  # dollars per share; see mtbt.options.chain's docstring


def _real_comparison(shared_data) -> pd.DataFrame:
    opt = pd.read_parquet(shared_data / OPTIONS)
    opt["time"] = opt["timestamp"].dt.tz_convert("America/New_York").dt.tz_localize(None)
    vix = pd.read_parquet(shared_data / "vix_1d_1990_2026.parquet")
    vix_dates = vix["timestamp"].dt.tz_convert("America/New_York").dt.tz_localize(None)
    prior_vix = float(vix.loc[vix_dates == VIX_PRIOR, "close"].iloc[0])
    # the underlying from put-call parity at 625 (r ~ 0 over 4 days): S = C - P + K,
    # from the volume-weighted prices of minutes in which both traded
    leg = {r: opt[(opt.right == r) & (opt.strike == 625)].set_index("time")["vwap"]
           for r in ("C", "P")}
    parity = (leg["C"] - leg["P"] + 625.0).dropna()
    rows = []
    for want in TIMES:
        now = parity.index[np.argmin(np.abs(parity.index - want))]
        spot = float(parity[now])
        ch = SyntheticChain(ChainModel(), spot, prior_vix, now, EXPIRY_CLOSE)
        for (right, strike), g in opt.groupby(["right", "strike"]):
            gap = (g["time"] - now).abs()       # the 625 pair gives the spot: not compared
            if abs(strike - spot) > NEAR or gap.min() > WINDOW or (right, strike) == ("C", 625):
                continue
            trade = g.loc[gap.idxmin()]
            rows.append(dict(time=now, spot=spot, contract=f"{right}{strike:g}",
                             trade=float(trade["vwap"]), model=ch.mid(right, strike),
                             iv=ch.iv(strike)))
    out = pd.DataFrame(rows)
    out["error"] = out["model"] - out["trade"]
    out["ratio"] = out["model"] / out["trade"]
    return out


def test_model_mids_against_real_spy_trades(shared_data):
    cmp = _real_comparison(shared_data)
    with pd.option_context("display.width", 120, "display.float_format", "{:.3f}".format):
        print("\nmodel mid vs real trade (VWAP of the nearest minute), SPY exp 2025-09-02:")
        print(cmp.to_string(index=False))
    abs_err = cmp["error"].abs()
    print(f"near the money (|K-S| <= {NEAR:g}): n={len(cmp)} median |error| "
          f"${abs_err.median():.3f}, mean ${abs_err.mean():.3f}, max ${abs_err.max():.3f}")
    otm = cmp[cmp["contract"].isin(["C655", "P635"])]
    print(f"out of the money (C655, P635): model/trade median {otm['ratio'].median():.2f}x, "
          f"signed error mean ${otm['error'].mean():+.3f}")
    assert len(cmp) >= 10 and cmp["time"].nunique() == len(TIMES)
    assert abs_err.median() <= MEDIAN_BOUND
    assert abs_err.max() < 1.0


def test_one_contract_fast_path_equals_the_vectorised_quotes():
    from mtbt.options.chain import mid, quotes

    c = chain(spot=512.37, vix=21.0, now=D(2024, 6, 3, 15, 59))
    strikes = np.arange(480.0, 545.0, 1.0)
    for right in ("C", "P"):
        one = [c.mid(right, k) for k in strikes]
        assert one == pytest.approx(mid(c.model, c.atm_iv, c.spot, c.t, right, strikes),
                                    rel=1e-12, abs=1e-12)
        bid, ask = quotes(c.model, c.vix, c.spot, c.t, right, strikes)
        assert [c.bid(right, k) for k in strikes] == list(bid)
        assert [c.ask(right, k) for k in strikes] == list(ask)
    at_expiry = chain(now=D(2024, 6, 3, 16), spot=600.0)
    assert at_expiry.mid("C", 590.0) == 10.0 and at_expiry.mid("P", 600.0) == 0.0
