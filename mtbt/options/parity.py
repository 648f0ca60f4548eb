"""The underlying's forward inferred from option trades by put-call parity.

At a zero rate and no dividends before expiry (the chain's own assumptions) a European call
and put of one strike and expiry satisfy ``C - P = F - K``, and the forward ``F`` equals the
spot. Recorded bars carry trades, not quotes, so one estimate needs a call trade and a put
trade of the same strike and expiry close together in time:

* **Pairs.** For each strike and expiry traded both ways, each minute of the less-traded
  right is paired with the nearest minute of the other right, if that lies at most
  ``pair_minutes`` away; ``F = C - P + K`` with each leg's minute VWAP (its close where the
  source has no VWAP), stamped at the middle of the two minutes.
* **Curve.** Estimates of one minute (several strikes or expiries) are combined by their
  median; between estimate times the forward is interpolated linearly, and a time farther
  than ``max_gap_minutes`` from every estimate gets none (NaN).

The error of an estimate is about a half-spread of each leg plus the underlying's move over
the gap between the two trades (tens of cents on SPY), so a parity spot is rougher than the
underlying's own bars: use those where they exist.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["forward_at", "parity_pairs", "trade_price"]

_MINUTE_NS = 60 * 10**9


def trade_price(bars: pd.DataFrame) -> np.ndarray:
    """Each bar's traded price: its VWAP, or its close where the VWAP is missing."""
    vwap = bars["vwap"].to_numpy(dtype=float)
    return np.where(np.isnan(vwap), bars["close"].to_numpy(dtype=float), vwap)


def parity_pairs(bars: pd.DataFrame, pair_minutes: int = 3) -> pd.DataFrame:
    """Forward estimates from one session's option bars (the store's columns).

    Returns a frame with one row per pair: ``time`` (naive New York, the middle of the two
    minutes), ``expiry``, ``strike``, ``call``, ``put``, ``gap`` (minutes between the two
    trades) and ``forward`` (``call - put + strike``), sorted by time.
    """
    if pair_minutes < 0:
        raise ValueError("pair_minutes must be >= 0")
    frame = pd.DataFrame({"ns": _naive_ns(bars["timestamp"]), "expiry": bars["expiry"].to_numpy(),
                          "strike": bars["strike"].to_numpy(dtype=float),
                          "right": bars["right"].astype(str).str.upper().to_numpy(),
                          "price": trade_price(bars)})
    rows = [_pairs(g, float(strike), expiry, pair_minutes)
            for (expiry, strike), g in frame.groupby(["expiry", "strike"], sort=True)]
    rows = [r for r in rows if len(r)]
    if not rows:
        return pd.DataFrame({"time": pd.Series(dtype="datetime64[ns]"), "expiry": [],
                             "strike": [], "call": [], "put": [], "gap": [], "forward": []})
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def _pairs(g: pd.DataFrame, strike: float, expiry: object, pair_minutes: int) -> pd.DataFrame:
    g = g.sort_values("ns", kind="stable")
    calls, puts = g[g["right"] == "C"], g[g["right"] == "P"]
    if calls.empty or puts.empty:
        return pd.DataFrame()
    anchor, other = (calls, puts) if len(calls) <= len(puts) else (puts, calls)
    a_ns, o_ns = anchor["ns"].to_numpy(), other["ns"].to_numpy()
    j = _nearest(o_ns, a_ns)
    gap = np.abs(o_ns[j] - a_ns) / _MINUTE_NS
    keep = gap <= pair_minutes + 1e-9
    a_price, o_price = anchor["price"].to_numpy()[keep], other["price"].to_numpy()[j[keep]]
    call, put = (a_price, o_price) if anchor is calls else (o_price, a_price)
    middle = (a_ns[keep] + o_ns[j[keep]]) // 2 + _MINUTE_NS // 2
    return pd.DataFrame({"time": pd.to_datetime(middle), "expiry": expiry, "strike": strike,
                         "call": call, "put": put, "gap": gap[keep],
                         "forward": call - put + strike})


def forward_at(pairs: pd.DataFrame, times: pd.DatetimeIndex | pd.Series,
               max_gap_minutes: float = 30.0) -> np.ndarray:
    """The parity forward at ``times`` (naive New York): the per-minute median of the
    estimates, interpolated linearly; NaN farther than ``max_gap_minutes`` from any."""
    when = _naive_ns(times)
    if pairs.empty:
        return np.full(len(when), np.nan)
    curve = pairs.groupby("time")["forward"].median()
    at = curve.index.as_unit("ns").asi8
    out = np.interp(when, at, curve.to_numpy(dtype=float))
    near = np.abs(at[_nearest(at, when)] - when) <= max_gap_minutes * _MINUTE_NS
    return np.where(near, out, np.nan)


def _nearest(sorted_ns: np.ndarray, query_ns: np.ndarray) -> np.ndarray:
    """Index into ``sorted_ns`` (ascending, non-empty) of the value nearest each query."""
    right = np.clip(np.searchsorted(sorted_ns, query_ns), 0, len(sorted_ns) - 1)
    left = np.clip(right - 1, 0, len(sorted_ns) - 1)
    return np.where(np.abs(sorted_ns[left] - query_ns) <= np.abs(sorted_ns[right] - query_ns),
                    left, right)


def _naive_ns(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Nanoseconds of naive New York wall-clock times (tz-aware input is converted)."""
    idx = pd.DatetimeIndex(times)
    if idx.tz is not None:
        idx = idx.tz_convert("America/New_York").tz_localize(None)
    return idx.as_unit("ns").asi8
