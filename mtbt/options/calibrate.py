"""Fit the synthetic chain's ``atm_iv_ratio``, ``skew`` and ``smile`` to recorded option trades.

Pure functions on DataFrames (``python -m mtbt options calibrate`` reads the files; see
:mod:`mtbt.cli.options`). The model is :mod:`mtbt.options.chain`'s, unchanged: Black-Scholes
mids on ``iv = atm * (1 - skew*z + smile*z**2)``, ``atm = atm_iv_ratio x prior VIX close``,
on the trading-time clock :func:`~mtbt.options.chain.years_to_close`.

Observations
------------
One per contract and minute with a trade (a row of the options bar store): the price is the
minute's VWAP (its close where the source has none), the time the middle of the minute, the
spot the underlying's bar of that minute (the mean of its open, high, low and close, the
best stand-in for the minute's average price a VWAP is compared with) or, where no underlying
minutes cover the session, the put-call parity forward (:mod:`mtbt.options.parity`); the VIX
is the prior session's close. Minutes at or after the session's close are dropped (the
chain's clock has no after-hours), and so are strikes whose moneyness in expected moves at
IV = VIX, ``z0 = ln(K/S) / (VIX/100 * sqrt(t))``, lies beyond ``band``. ``z0`` does not
depend on the fitted keys, so the same observations and buckets serve before and after.

Weights
-------
Least squares on prices, each residual ``model - trade`` divided by the trade's expected
error: a trade prints somewhere between bid and ask, so it misses the mid by about a
half-spread, which the chain models as ``max(half_spread_pct x price, tick)`` (the run's
values); a minute's VWAP of ``n`` trades averages that down by ``sqrt(n)``, with ``n`` capped
at 10 (prints of one minute are often one order swept through several). This is inverse-noise
weighting: relative errors for options above ``tick / half_spread_pct`` (33 cents by
default), absolute ones in ticks below, so neither the dollar-rich in-the-money options
(mostly intrinsic value, no IV information) nor the one-cent wings dominate. The loss is
``soft_l1`` with a scale of 2 (residuals beyond about two expected errors count linearly):
recorded trades include late and odd-lot prints far from the quote.

Bounds are the ``[options]`` keys' ranges in :class:`mtbt.config.Options`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from mtbt.config import Options
from mtbt.errors import MtbtError
from mtbt.options.chain import ChainModel, mid, years_to_close
from mtbt.options.parity import forward_at, parity_pairs, trade_price
from mtbt.sessions import Session, sessions

__all__ = ["FIT_KEYS", "MIN_OBSERVATIONS", "CalibrationError", "Fit", "SessionObservations",
           "error_table", "fit_bounds", "fit_chain", "model_prices", "session_observations",
           "weights"]

FIT_KEYS = ("atm_iv_ratio", "skew", "smile")
MIN_OBSERVATIONS = 30
INNER_EDGES = (-1.0, -0.25, 0.25, 1.0)
MAX_TRADES = 10
LOSS, LOSS_SCALE = "soft_l1", 2.0
START_RATIOS = (0.6, 0.9, 1.3)     # more starts for the ratio: the IV floor makes local minima


class CalibrationError(MtbtError):
    """The recorded data cannot calibrate the chain (no spot, too few observations)."""


@dataclass(frozen=True)
class SessionObservations:
    """One session's observations and what was dropped on the way.

    ``frame`` columns: day, time (naive New York minute start), contract, expiry, right,
    strike, price, trades, spot, vix, t (trading years), z0. ``spot_source`` is
    ``"underlying"`` or ``"parity"``; ``pairs`` and ``pair_strikes`` describe the parity
    estimates (0 and () for the underlying).
    """

    day: dt.date
    frame: pd.DataFrame
    spot_source: str
    traded: int
    after_close: int
    no_spot: int
    outside_band: int
    pairs: int = 0
    pair_strikes: tuple[float, ...] = ()


def session_observations(bars: pd.DataFrame, session: Session, vix: float,
                         spot: pd.Series | None = None, *, band: float = 2.0,
                         pair_minutes: int = 3,
                         max_gap_minutes: float = 30.0) -> SessionObservations:
    """The observations of one session's option bars (the store's columns).

    ``spot``: the underlying's price per minute (index: minute starts, tz-aware or naive New
    York); None, or no minute of this session, means the parity forward is used.
    Raises CalibrationError when neither gives a spot.
    """
    if not (vix > 0 and band > 0):
        raise ValueError(f"vix and band must be positive, got {vix} and {band}")
    when = _naive(bars["timestamp"])
    live = (when < pd.Timestamp(session.close)) & (when.normalize() == pd.Timestamp(session.date))
    rows, when = bars[np.asarray(live)], when[np.asarray(live)]
    own = _session_spot(spot, session.date)
    pairs = None
    if own is not None:
        s = own.reindex(when).to_numpy(dtype=float)
    else:
        pairs = parity_pairs(bars, pair_minutes)
        if pairs.empty:
            raise CalibrationError(
                f"session {session.date}: no spot: no underlying minutes cover it and no "
                f"strike has a call and a put traded within {pair_minutes} minute(s) of each "
                "other for put-call parity")
        s = forward_at(pairs, when + pd.Timedelta(seconds=30), max_gap_minutes)
    frame = pd.DataFrame({
        "day": session.date, "time": when, "contract": rows["contract"].to_numpy(),
        "expiry": rows["expiry"].to_numpy(), "right": rows["right"].to_numpy(),
        "strike": rows["strike"].to_numpy(dtype=float), "price": trade_price(rows),
        "trades": rows["trades"].to_numpy(dtype=float), "spot": s, "vix": float(vix)})
    has_spot = np.isfinite(s) & (s > 0)
    frame = frame[has_spot].reset_index(drop=True)
    frame["t"] = _years(frame["time"], frame["expiry"])
    frame["z0"] = np.log(frame["strike"] / frame["spot"]) / (vix / 100 * np.sqrt(frame["t"]))
    inside = (frame["t"] > 0) & (frame["z0"].abs() <= band)
    return SessionObservations(
        day=session.date, frame=frame[inside].reset_index(drop=True),
        spot_source="underlying" if pairs is None else "parity", traded=len(bars),
        after_close=int((~np.asarray(live)).sum()), no_spot=int((~has_spot).sum()),
        outside_band=int((~inside).sum()), pairs=0 if pairs is None else len(pairs),
        pair_strikes=() if pairs is None else tuple(sorted(set(pairs["strike"]))))


def _naive(times: pd.Series | pd.Index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(times)
    return idx.tz_convert("America/New_York").tz_localize(None) if idx.tz is not None else idx


def _session_spot(spot: pd.Series | None, day: dt.date) -> pd.Series | None:
    """The underlying's minutes of ``day`` (naive index), or None where it has none."""
    if spot is None or spot.empty:
        return None
    idx = _naive(spot.index)
    own = pd.Series(spot.to_numpy(dtype=float), index=idx)[idx.normalize() == pd.Timestamp(day)]
    return None if own.empty else own[~own.index.duplicated()]


def _years(times: pd.Series, expiries: pd.Series) -> np.ndarray:
    """Trading years from each minute's middle to its contract's expiry close."""
    keys = list(zip(times, expiries, strict=True))
    cache = {k: years_to_close(k[0].to_pydatetime() + dt.timedelta(seconds=30),
                               _expiry_close(_as_date(k[1]))) for k in set(keys)}
    return np.array([cache[k] for k in keys], dtype=float)


def _as_date(value: object) -> dt.date:
    return value if type(value) is dt.date else pd.Timestamp(value).date()


@lru_cache(maxsize=256)
def _expiry_close(expiry: dt.date) -> dt.datetime:
    """The close of the last session on or before ``expiry`` (old monthlies expired on
    Saturdays)."""
    found = sessions(expiry - dt.timedelta(days=10), expiry)
    if not found:
        raise CalibrationError(f"expiry {expiry}: no session on or before it")
    return found[max(found)].close


def model_prices(model: ChainModel, obs: pd.DataFrame) -> np.ndarray:
    """The chain's mid for each observation (its spot, t, VIX, right and strike)."""
    atm = np.maximum(model.iv_floor, model.atm_iv_ratio * obs["vix"].to_numpy(float) / 100.0)
    return np.asarray(mid(model, atm, obs["spot"].to_numpy(float), obs["t"].to_numpy(float),
                          obs["right"].to_numpy(), obs["strike"].to_numpy(float)))


def weights(obs: pd.DataFrame, model: ChainModel) -> np.ndarray:
    """1 / each trade's expected error (module docstring): ``sqrt(min(trades, 10)) /
    max(half_spread_pct x price, tick)``; a missing trade count counts as one."""
    n = np.nan_to_num(obs["trades"].to_numpy(float), nan=1.0)
    noise = np.maximum(model.half_spread_pct * obs["price"].to_numpy(float), model.tick)
    return np.sqrt(np.clip(n, 1.0, MAX_TRADES)) / noise


def fit_bounds() -> dict[str, tuple[float, float]]:
    """Each fitted key's (low, high), read from the ``[options]`` section's field ranges
    (an open bound ``> 0`` becomes 1e-6)."""
    out = {}
    for key in FIT_KEYS:
        lo, hi = -math.inf, math.inf
        for rule in Options.model_fields[key].metadata:
            ge, gt, le, lt = (getattr(rule, a, None) for a in ("ge", "gt", "le", "lt"))
            lo = ge if ge is not None else gt + 1e-6 if gt is not None else lo
            hi = le if le is not None else lt - 1e-6 if lt is not None else hi
        out[key] = (float(lo), float(hi))
    return out


@dataclass(frozen=True)
class Fit:
    """A calibration's result: the model before and after, the approximate standard error
    of each fitted key, the keys that ended on a bound, and the weighted loss before and
    after."""

    before: ChainModel
    after: ChainModel
    observations: int
    stderr: dict[str, float]
    at_bound: tuple[str, ...]
    loss_before: float
    loss_after: float
    message: str

    def values(self) -> dict[str, float]:
        return {k: float(getattr(self.after, k)) for k in FIT_KEYS}


def fit_chain(obs: pd.DataFrame, start: ChainModel,
              min_observations: int = MIN_OBSERVATIONS) -> Fit:
    """Weighted least squares of the chain's mids on the traded prices over ``FIT_KEYS``;
    the other settings stay ``start``'s.

    Fitted from ``start`` (clipped into the bounds) and from ``atm_iv_ratio`` in
    ``START_RATIOS``, keeping the lowest loss: where the ATM IV nears ``iv_floor`` the floor
    flattens the loss and a single start can stop in a local minimum. The lower bound of
    ``atm_iv_ratio`` is raised to ``iv_floor / the highest VIX``, below which no
    observation's price depends on it.
    """
    if len(obs) < min_observations:
        raise CalibrationError(f"{len(obs)} observation(s) near the money: too few to fit "
                               f"{len(FIT_KEYS)} parameters (the minimum is {min_observations})")
    bounds = fit_bounds()
    lo, hi = (np.array([bounds[k][i] for k in FIT_KEYS]) for i in (0, 1))
    # below iv_floor / the highest VIX every ATM IV is the floor: the ratio changes nothing
    lo[0] = max(lo[0], start.iv_floor / (obs["vix"].max() / 100.0))
    if lo[0] >= hi[0]:
        raise CalibrationError(f"iv_floor {start.iv_floor:g} is above every session's ATM IV "
                               f"at the largest atm_iv_ratio {hi[0]:g}: nothing to fit")
    x0 = np.clip([getattr(start, k) for k in FIT_KEYS], lo, hi)
    w, price = weights(obs, start), obs["price"].to_numpy(float)

    def residuals(x: np.ndarray) -> np.ndarray:
        return w * (model_prices(_with(start, x), obs) - price)

    starts = [x0, *(np.clip([r, x0[1], x0[2]], lo, hi) for r in START_RATIOS)]
    res = min((least_squares(residuals, x, bounds=(lo, hi), loss=LOSS, f_scale=LOSS_SCALE,
                             x_scale=np.maximum(np.abs(x), 0.05), method="trf")
               for x in starts), key=lambda r: r.cost)
    after = _with(start, res.x)
    span = hi - lo
    at_bound = tuple(k for k, x, a, b, s in zip(FIT_KEYS, res.x, lo, hi, span, strict=True)
                     if min(x - a, b - x) <= 1e-4 * min(s, 1.0))
    return Fit(before=start, after=after, observations=len(obs),
               stderr=_stderr(res, len(obs)), at_bound=at_bound,
               loss_before=_loss(residuals(np.asarray([getattr(start, k) for k in FIT_KEYS]))),
               loss_after=_loss(res.fun), message=str(res.message))


def _with(model: ChainModel, x: np.ndarray) -> ChainModel:
    return dataclasses.replace(model, **{k: float(v) for k, v in zip(FIT_KEYS, x, strict=True)})


def _loss(r: np.ndarray) -> float:
    """The soft_l1 loss per observation (what the fit minimises, divided by n)."""
    z = (r / LOSS_SCALE) ** 2
    return float(np.mean(2 * ((1 + z) ** 0.5 - 1)) * LOSS_SCALE**2 / 2)


def _stderr(res, n: int) -> dict[str, float]:
    """Gauss-Newton standard errors from the (loss-scaled) Jacobian: approximate."""
    p = len(FIT_KEYS)
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac) * (2 * res.cost / max(n - p, 1))
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        se = np.full(p, np.nan)
    return {k: float(v) for k, v in zip(FIT_KEYS, se, strict=True)}


def buckets(band: float) -> list[tuple[str, float, float]]:
    """The moneyness buckets (label, low, high) within ``band``: ``[-band,-1)``,
    ``[-1,-0.25)``, ``[-0.25,0.25]``, ``(0.25,1]``, ``(1,band]`` (edges beyond it dropped)."""
    edges = [-band, *(e for e in INNER_EDGES if abs(e) < band), band]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        left = "(" if lo >= 0.25 else "["
        right = "]" if hi > 0 else ")"
        out.append((f"{left}{lo:+.2f},{hi:+.2f}{right}", lo, hi))
    return out


def error_table(obs: pd.DataFrame, models: Mapping[str, ChainModel],
                band: float) -> pd.DataFrame:
    """Per moneyness bucket (z0) and overall: n, then for each named model the median
    ``|model - trade|`` in dollars per share and the median ``model / trade``."""
    z, price = obs["z0"].to_numpy(float), obs["price"].to_numpy(float)
    mids = {name: model_prices(m, obs) for name, m in models.items()}
    rows = []
    for label, lo, hi in [*buckets(band), ("all", -math.inf, math.inf)]:
        if label == "all":
            mask = np.ones(len(z), bool)
        else:
            mask = ((z >= lo) if lo < 0.25 else (z > lo)) & ((z <= hi) if hi > 0 else (z < hi))
        row: dict[str, object] = {"z0": label, "n": int(mask.sum())}
        for name, m in mids.items():
            err, ratio = m[mask] - price[mask], m[mask] / price[mask]
            row[f"{name} |err| $"] = float(np.median(np.abs(err))) if mask.any() else math.nan
            row[f"{name} model/trade"] = float(np.median(ratio)) if mask.any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows)
