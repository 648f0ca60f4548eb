"""SYNTHETIC SPY-like 1-minute bars and a matching daily VIX series, for demos and tests.

This is NOT market data. It is generated at call time from ``numpy.random.default_rng(seed)``,
deterministically (same seed, same bytes), and is the embedded default data of mtbt, so a run
works with no files. Every report made on it is labelled "synthetic" (the labelling is done by
the code that writes reports, not here).

The sessions are the last ``n_sessions`` XNYS sessions ending 2023-11-30 (so the 2023-11-24
early close is in), split into consecutive stretches so that a volatility regime filter
("trade only when 13 <= VIX <= 30 and daily ATR(14) >= 0.5% of the prior close") sees every
state:

==============  =====  ===========  ============================  ======================
stretch         share  VIX          daily high-low range          price
==============  =====  ===========  ============================  ======================
uptrend         30%    ~15-19       ~0.9-1.3%                     rising
low-vol range   15%    11-12.7      ~0.3-0.45%                    range-bound
sell-off        20%    17 -> 30+    ~1.4% rising to 2-3%          falling, several days
                                                                  with VIX above 30
range           15%    17-23        ~1.0-1.6%                     range-bound
recovery        rest   14-18        ~0.8-1.2%                     rising
==============  =====  ===========  ============================  ======================

The VIX follows a smooth path per stretch plus autocorrelated noise, and each day's range is
set from that day's VIX, so implied and realised volatility move together. Intraday, each
1-minute bar is built from a few sub-minute steps (so OHLC are consistent); volatility and
volume are U-shaped over the session, and a slowly varying drift makes waves of tens of
minutes with pullbacks. Prices are in cents, starting at 447 and staying roughly in 410-475.

Note: the low-vol stretch is short, so a 14-day ATR only falls to about 0.6% of the price
there (its VIX below 13 is what blocks trading); no stretch drives ATR(14) below 0.5%.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtbt.sessions import NY, Session, sessions

LAST_SESSION = dt.date(2023, 11, 30)
START_PRICE = 447.0
SUBSTEPS = 4            # sub-minute price steps per 1-minute bar
TREND = 0.1             # weight of the slowly varying intraday drift against the noise
TREND_MINUTES = 25.0    # correlation time of that drift


@dataclass(frozen=True)
class Stretch:
    """A run of consecutive synthetic sessions in one market regime."""

    name: str
    share: float                                 # share of the sessions
    vix_knots: tuple[tuple[float, float], ...]   # (position 0..1 in the stretch, VIX level)
    vix_band: tuple[float, float]                # the VIX is kept inside this band
    vix_noise: float                             # VIX noise, in points
    day_range: tuple[float, float]               # daily (high - low) / price, lowest..highest
    drift: float                                 # mean open-to-close move, share of the range
    revert: float                                # pull back towards the stretch's first open


STRETCHES: tuple[Stretch, ...] = (
    Stretch("uptrend", 0.30, ((0, 17.6), (0.6, 16.4), (1, 15.2)), (14.8, 19.0), 0.6,
            (0.009, 0.013), 0.12, 0.0),
    Stretch("low-vol range", 0.15, ((0, 12.6), (1, 11.5)), (11.0, 12.7), 0.25,
            (0.003, 0.0045), 0.0, 0.6),
    Stretch("sell-off", 0.20, ((0, 17.5), (0.5, 34.0), (0.85, 34.5), (1, 26.5)), (16.0, 38.0),
            1.0, (0.014, 0.0285), -0.12, 0.0),
    Stretch("range", 0.15, ((0, 22.5), (1, 18.5)), (17.0, 23.0), 0.8, (0.010, 0.016), 0.0, 0.6),
    Stretch("recovery", 0.20, ((0, 17.6), (1, 14.8)), (14.0, 18.0), 0.5, (0.008, 0.012),
            0.35, 0.0),
)


def stretch_bounds(n_sessions: int) -> list[tuple[Stretch, slice]]:
    """Each stretch with the slice of session positions (0-based) it covers."""
    ends = np.rint(np.cumsum([s.share for s in STRETCHES]) * n_sessions).astype(int)
    ends[-1] = n_sessions
    starts = np.concatenate(([0], ends[:-1]))
    return [(s, slice(int(a), int(b))) for s, a, b in zip(STRETCHES, starts, ends, strict=True)]


def _sample_sessions(n_sessions: int) -> list[Session]:
    """The last ``n_sessions + 1`` XNYS sessions up to LAST_SESSION (one before the first)."""
    if n_sessions < 1:
        raise ValueError(f"n_sessions must be at least 1, not {n_sessions}")
    span = int(n_sessions * 1.5) + 20
    while True:
        found = sessions(LAST_SESSION - dt.timedelta(days=span), LAST_SESSION)
        if len(found) > n_sessions:
            return list(found.values())[-(n_sessions + 1):]
        span *= 2


@dataclass(frozen=True)
class _Plan:
    """The daily draws: VIX for the prior session + each session, the rest per session."""

    vix: np.ndarray
    stretch: np.ndarray      # stretch number per session
    day_range: np.ndarray
    move_noise: np.ndarray
    gap_noise: np.ndarray


def _daily_plan(rng: np.random.Generator, n: int) -> _Plan:
    stretch = np.zeros(n + 1, dtype=int)      # entry 0: the prior session (first stretch)
    pos = np.zeros(n + 1)
    for k, (_, sl) in enumerate(stretch_bounds(n)):
        length = sl.stop - sl.start
        stretch[sl.start + 1 : sl.stop + 1] = k
        pos[sl.start + 1 : sl.stop + 1] = np.arange(length) / max(length - 1, 1)
    z = np.empty(n + 1)
    z[0] = rng.standard_normal()
    for t, e in enumerate(rng.standard_normal(n), start=1):
        z[t] = 0.5 * z[t - 1] + np.sqrt(0.75) * e
    vix = np.empty(n + 1)
    q = np.empty(n + 1)
    q_noise = rng.standard_normal(n + 1)
    for t in range(n + 1):
        st = STRETCHES[stretch[t]]
        knots = np.array(st.vix_knots)
        base = np.interp(pos[t], knots[:, 0], knots[:, 1])
        taper = 0.4 + 0.6 * np.sin(np.pi * pos[t])   # calmer noise at stretch edges
        lo, hi = st.vix_band
        vix[t] = round(float(np.clip(base + st.vix_noise * taper * z[t], lo, hi)), 2)
        q[t] = np.clip((vix[t] - lo) / (hi - lo) + 0.08 * q_noise[t], 0.0, 1.0)
    bands = np.array([STRETCHES[k].day_range for k in stretch])
    day_range = bands[:, 0] + (bands[:, 1] - bands[:, 0]) * q
    return _Plan(vix, stretch[1:], day_range[1:], rng.standard_normal(n), rng.standard_normal(n))


def _kernel() -> np.ndarray:
    """Exponential smoothing kernel (unit gain in variance) for the intraday drift."""
    tau = TREND_MINUTES * SUBSTEPS
    k = np.exp(-np.arange(int(5 * tau)) / tau)
    return k / np.sqrt(np.sum(k * k))


def _scale_to_range(b: np.ndarray, line: np.ndarray, target: float) -> float:
    """The factor s for which ``s * b + line`` spans exactly ``target`` (bisection)."""
    lo, hi = 0.0, (target + abs(line[-1])) / max(float(np.ptp(b)), 1e-12)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if np.ptp(mid * b + line) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _day_path(rng: np.random.Generator, minutes: int, day_range: float, move: float,
              kernel: np.ndarray) -> np.ndarray:
    """Log-price moves from the day's reference open at each sub-step (minutes * SUBSTEPS)."""
    n = minutes * SUBSTEPS
    tau = np.arange(1, n + 1) / SUBSTEPS
    u_shape = 1 + 1.5 * np.exp(-tau / 30) + 0.7 * np.exp(-(minutes - tau) / 25)
    drift = np.convolve(rng.standard_normal(n + len(kernel) - 1), kernel, mode="valid")
    walk = np.cumsum(u_shape * (rng.standard_normal(n) + TREND * drift))
    line = np.arange(1, n + 1) / n
    bridge = walk - line * walk[-1]                 # ends where it starts
    line = line * move
    return _scale_to_range(bridge, line, day_range) * bridge + line


def _day_volume(rng: np.random.Generator, o: np.ndarray, c: np.ndarray,
                day_range: float) -> np.ndarray:
    minutes = len(o)
    t = np.arange(minutes)
    base = 50e3 + 190e3 * np.exp(-t / 18) + 100e3 * np.exp(-(minutes - 1 - t) / 12)
    move = np.abs(np.log(c / o))
    activity = np.clip(move / max(float(move.mean()), 1e-12), 0, 3)
    vol = base * (day_range / 0.011) ** 0.25 * rng.lognormal(0.0, 0.2, minutes)
    return np.rint(vol * (0.8 + 0.2 * activity))


def _day_bars(rng: np.random.Generator, sess: Session, open_ref: float, day_range: float,
              move: float, kernel: np.ndarray) -> pd.DataFrame:
    minutes = int((sess.close - sess.open).total_seconds() // 60)
    path = _day_path(rng, minutes, day_range, move, kernel)
    pts = np.round(open_ref * np.exp(path), 2).reshape(minutes, SUBSTEPS)
    o, c = pts[:, 0], pts[:, -1]
    start = np.datetime64(sess.open, "ns") + np.arange(minutes) * np.timedelta64(60, "s")
    return pd.DataFrame(
        {"open": o, "high": pts.max(axis=1), "low": pts.min(axis=1), "close": c,
         "volume": _day_volume(rng, o, c, day_range)},
        index=pd.DatetimeIndex(start),
    )


def sample_bars(seed: int = 7, n_sessions: int = 63) -> pd.DataFrame:
    """SYNTHETIC SPY-like 1-minute regular-session bars, in ``read_bars`` form.

    Parameters
    ----------
    seed : seed of ``numpy.random.default_rng``; the same seed gives the same bars.
    n_sessions : how many XNYS sessions, the last of them 2023-11-30.

    Returns
    -------
    DataFrame indexed by tz-aware America/New_York ``timestamp`` (bar start), float64 open,
    high, low, close, volume; 09:30..15:59 (12:59 on early-close days).
    """
    rng = np.random.default_rng(seed)
    days = _sample_sessions(n_sessions)[1:]
    plan = _daily_plan(rng, n_sessions)
    kernel = _kernel()
    first_of_stretch = {sl.start for _, sl in stretch_bounds(n_sessions)}
    frames, close, anchor = [], START_PRICE, START_PRICE
    for i, sess in enumerate(days):
        st, r = STRETCHES[plan.stretch[i]], plan.day_range[i]
        gap = 0.0 if i == 0 else float(np.clip(0.15 * r * plan.gap_noise[i], -0.4 * r, 0.4 * r))
        open_ref = close * np.exp(gap)
        anchor = open_ref if i in first_of_stretch else anchor
        pull = np.clip(-st.revert * np.log(open_ref / anchor), -0.5 * r, 0.5 * r)
        move = np.clip(st.drift * r + pull + 0.3 * r * plan.move_noise[i], -0.8 * r, 0.8 * r)
        frame = _day_bars(rng, sess, open_ref, r, float(move), kernel)
        close = float(frame["close"].iloc[-1])
        frames.append(frame)
    bars = pd.concat(frames)
    bars.index = bars.index.tz_localize(NY).as_unit("ns").rename("timestamp")
    return bars.astype("float64")


def sample_vix(seed: int = 7, n_sessions: int = 63) -> pd.Series:
    """SYNTHETIC daily VIX closes matching ``sample_bars(seed, n_sessions)``.

    One value per sample session plus the session before the first, in ``read_daily`` form:
    float64 Series named "close", indexed by tz-naive dates named "date".
    """
    rng = np.random.default_rng(seed)
    days = _sample_sessions(n_sessions)
    plan = _daily_plan(rng, n_sessions)
    index = pd.DatetimeIndex([pd.Timestamp(s.date) for s in days]).as_unit("ns")
    return pd.Series(plan.vix, index=index.rename("date"), name="close", dtype="float64")
